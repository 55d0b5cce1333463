/**
 * D4RL normalised scores: normalized = 100 · (return − random) / (expert − random), with the
 * reference returns D4RL publishes for the locomotion tasks (Fu et al. 2020).
 */
export const D4RL_REFERENCE_SCORES: Readonly<Record<string, { random: number; expert: number }>> = {
  'Hopper-v4': { random: -20.272305, expert: 3234.3 },
  'HalfCheetah-v4': { random: -280.178953, expert: 12135.0 },
  'Walker2d-v4': { random: 1.629008, expert: 4592.3 },
};

/** The D4RL-normalised score of an episode return, or undefined where the env has no reference. */
export function d4rlNormalizedScore(envId: string, episodeReturn: number): number | undefined {
  const ref = D4RL_REFERENCE_SCORES[envId];
  if (!ref) return undefined;
  return (100 * (episodeReturn - ref.random)) / (ref.expert - ref.random);
}
