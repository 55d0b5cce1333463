// `lmRollout`: prompts → groups of G sampled completions — documented on the exported `lmRollout` (hover it).
import { concatMap, defer, of, type OperatorFunction } from 'rxjs';
import type { Batch, Group, PromptStart, Trajectory } from '../lib/data.ts';
import type { Rng } from '../lib/random.ts';
import type { CausalLM } from '../lib/models/lm.ts';
import { generate, type GenerateResult, type SamplingOptions } from '../lib/models/generate.ts';
import type { StartsBatch } from './rollout.ts';
import { moments } from '../lib/stats.ts';

export interface CompletionScore {
  reward: number;
  cost?: number;
  scores?: Record<string, number>;
}

export interface LmRolloutConfig {
  lm: CausalLM;
  /** G: completions per prompt. */
  groupSize: number;
  rng: Rng;
  sampling: SamplingOptions;
  /** The policy version that samples now. */
  version: () => number;
  score: (start: PromptStart, completion: Int32Array) => CompletionScore;
  /**
   * Sample the G × P completions of a whole batch in one `generate` call (one KV cache, one
   * forward per step for every row) instead of one call per prompt. Default false (one call per
   * group; the random stream is consumed in a different order, so the samples differ).
   */
  batchPrompts?: boolean;
}

export function lmRolloutGroup(cfg: LmRolloutConfig, start: PromptStart, groupId: string): Group {
  const G = cfg.groupSize;
  const prompts = Array.from({ length: G }, () => start.tokens);
  return groupOf(cfg, start, groupId, generate(cfg.lm, prompts, cfg.rng, cfg.sampling), 0);
}

/**
 * Several prompts' groups sampled in one `generate` call, group j drawing from its own `rng`, so
 * each group is what `lmRolloutGroup` gives for it alone (an actor holding several tasks; the
 * tokens match exactly, the log-probs to float rounding: a left-padded row sees the same
 * positions, its padding masked).
 */
export function lmRolloutGroups(
  cfg: Omit<LmRolloutConfig, 'rng'>,
  items: readonly { readonly start: PromptStart; readonly groupId: string; readonly rng: Rng }[],
): Group[] {
  const G = cfg.groupSize;
  const prompts = items.flatMap((it) => Array.from({ length: G }, () => it.start.tokens));
  const rowRng = (row: number) => items[Math.floor(row / G)]!.rng;
  const out = generate(cfg.lm, prompts, items[0]?.rng as Rng, { ...cfg.sampling, rowRng });
  return items.map((it, j) => groupOf({ ...cfg, rng: it.rng }, it.start, it.groupId, out, j * G));
}

/** The G rows `from … from + G − 1` of a generate result as one group. */
function groupOf(cfg: LmRolloutConfig, start: PromptStart, groupId: string, out: GenerateResult, from: number): Group {
  const G = cfg.groupSize;
  const version = cfg.version();
  const trajectories = out.tokens.slice(from, from + G).map((y, k): Trajectory => {
    const i = from + k;
    const T = y.length;
    const s = cfg.score(start, y);
    if (!Number.isFinite(s.reward) || (s.cost !== undefined && !Number.isFinite(s.cost))) {
      throw new RangeError(`lmRollout: score of prompt ${start.promptId} completion ${k} is not finite (reward ${s.reward}, cost ${s.cost})`);
    }
    const rewards = new Float32Array(T);
    const costs = new Float32Array(T);
    if (T > 0) {
      rewards[T - 1] = s.reward;
      costs[T - 1] = s.cost ?? 0;
    }
    const tr: Trajectory = {
      length: T,
      obsDim: 0,
      actDim: 1,
      observations: new Float32Array(0),
      actions: y,
      logProbs: out.logProbs[i]!,
      rewards,
      costs,
      terminated: out.stopped[i]!,
      truncated: !out.stopped[i],
      policyVersion: version,
      groupId,
      start,
    };
    return s.scores ? { ...tr, scores: s.scores } : tr;
  });
  return { groupId, start, trajectories };
}

/**
 * The rollout metrics of groups of completions: `rollout/tokens`, `rollout/episodes`,
 * `length/mean`, then `extra`, then `score/<name>/mean` of every named score (what `lmRollout`
 * emits; a learner fed by actors computes the same from the groups it consumed).
 */
export function completionMetrics(groups: readonly Group[], extra: Readonly<Record<string, number>> = {}): Record<string, number> {
  const trs = groups.flatMap((g) => g.trajectories);
  const metrics: Record<string, number> = {
    'rollout/tokens': trs.reduce((a, t) => a + t.length, 0),
    'rollout/episodes': trs.length,
    'length/mean': moments(trs.map((t) => t.length)).mean,
    ...extra,
  };
  const names = new Set(trs.flatMap((t) => Object.keys(t.scores ?? {})));
  for (const n of names) metrics[`score/${n}/mean`] = moments(trs.map((t) => t.scores?.[n] ?? 0)).mean;
  return metrics;
}

/**
 * `lmRollout` — prompts → groups of G completions sampled from a language model.
 *
 * In: `StartsBatch` of prompt starts; out: `Batch<Group>`, one group of G completions per prompt
 * (`rollout` does the same for env starts). The G copies of each prompt are sampled in one batched
 * `generate` call with a KV cache; each completion is a trajectory whose actions are its tokens,
 * whose behaviour log-probs are log π_θold(y_k | x, y_<k) at temperature 1 (what `lmPolicy`
 * recomputes, so the importance ratio starts at exactly 1 — the convention of GRPO trainers that
 * recompute old log-probs with the policy; with temperature ≠ 1 or top-k/top-p the tokens come from
 * the modified sampler, whose own log-probs `generate` also returns as `samplingLogProbs`, so
 * that ratio is not a true importance weight for the sampler), and whose reward and cost are
 * episode-level: `score(start, completion)` returns them and they are placed on the last token
 * (r_T = reward, c_T = cost, zeros before), so `returns` with γ = 1 gives every token the
 * completion's score. Named scores (`utility`, `compliance`, ...) go to `scores`.
 * `terminated` = the completion ended on a stop token; `truncated` = it hit `maxNewTokens`.
 * Emits `rollout/tokens`, `rollout/episodes`, `length/mean`, `policy_version`, `score/<name>/mean`.
 *
 * @param cfg The `CausalLM`, the group size G, the sampling `Rng` and `SamplingOptions`, the `version` callback and the `score` function (fields described on {@link LmRolloutConfig}).
 * @returns An operator from each `StartsBatch` of prompt starts to a `Batch<Group>` with one group of G completions per prompt.
 * @example
 * ```ts
 * prompts$.pipe(
 *   lmRollout({ lm, groupSize: 8, rng, version: () => learner.version, sampling: { maxNewTokens: 32, stopTokens: [eos] },
 *     score: (start, y) => ({ reward: utility(start, y), cost: violates(start, y) ? 1 : 0 }) }),
 *   returns(), groupAdvantages());
 * ```
 */
export function lmRollout(cfg: LmRolloutConfig): OperatorFunction<StartsBatch, Batch<Group>> {
  if (!Number.isInteger(cfg.groupSize) || cfg.groupSize < 1) throw new RangeError(`lmRollout: groupSize: expected a positive integer, got ${cfg.groupSize}`);
  return concatMap((sb) =>
    defer(() => {
      const starts = sb.starts.map((s, j) => {
        if (s.kind !== 'prompt') throw new TypeError(`lmRollout: start ${j} of iteration ${sb.iteration} is a ${s.kind} start; use rollout for env starts`);
        return s;
      });
      const G = cfg.groupSize;
      let groups: Group[];
      if (cfg.batchPrompts) {
        const out = generate(
          cfg.lm,
          starts.flatMap((s) => Array.from({ length: G }, () => s.tokens)),
          cfg.rng,
          cfg.sampling,
        );
        groups = starts.map((s, j) => groupOf(cfg, s, `${sb.iteration}/${s.promptId}`, out, j * G));
      } else groups = starts.map((s) => lmRolloutGroup(cfg, s, `${sb.iteration}/${s.promptId}`));
      return of({ iteration: sb.iteration, groups, metrics: { ...sb.metrics, ...completionMetrics(groups, { policy_version: cfg.version() }) } });
    }),
  );
}
