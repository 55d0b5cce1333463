/** `dtActor` — a Decision Transformer acting in an env, conditioned on a return-to-go target. */
import type { Actor } from '../actor.ts';
import type { Start } from '../data.ts';
import type { DecisionTransformer } from './decision-transformer.ts';
import { type StateNorm, normalizeState } from './dt-batch.ts';
import { DtHistory, selectDtActions } from './generate.ts';

/**
 * An `Actor` over a Decision Transformer, conditioned on a return-to-go target (ODT's acting):
 * each row starts a group with R̂_0 = `targetReturn`, sees the last K (R̂·scale, s, a) steps, and
 * after each step lowers its target by the reward received, R̂_{t+1} = R̂_t − r_t. The targets
 * the rows acted on are what `targets()` reports, so trajectories carry the *intended*
 * returns-to-go (never the achieved ones, unless a pipeline relabels them explicitly).
 * The DT sees fround(R̂)·scale (the recorded float32 target, scaled) and, with `stateNorm`,
 * (s − mean)/std — exactly what `dtBatchOf` rebuilds from the trajectory.
 */
export function dtActor(
  dt: DecisionTransformer,
  cfg: {
    /** R̂_0 of a group; a function of the start lets a mid-episode snapshot start use its remaining target. */
    targetReturn: number | ((start: Start) => number);
    scale?: number;
    contextLength?: number;
    /** State normalisation (ODT: the offline dataset's mean and std). */
    stateNorm?: StateNorm;
    version: () => number;
  },
): Actor {
  const scale = cfg.scale ?? 1;
  let histories: DtHistory[] = [];
  let rtg = new Float64Array(0);
  return {
    version: cfg.version,
    begin(n, start) {
      // Timesteps continue from a snapshot start's env time, as the trajectory's `timesteps` do.
      const t0 = start.kind === 'snapshot' ? start.t : 0;
      histories = Array.from({ length: n }, () => new DtHistory(dt.stateDim, dt.actDim, t0));
      rtg = new Float64Array(n).fill(typeof cfg.targetReturn === 'number' ? cfg.targetReturn : cfg.targetReturn(start));
    },
    beginRows(starts) {
      histories = starts.map((start) => new DtHistory(dt.stateDim, dt.actDim, start.kind === 'snapshot' ? start.t : 0));
      rtg = Float64Array.from(starts, (start) => (typeof cfg.targetReturn === 'number' ? cfg.targetReturn : cfg.targetReturn(start)));
    },
    act(observations, n, rng, deterministic) {
      if (histories.length !== n) throw new Error(`dtActor: begin(${n}) was not called for this group`);
      for (let i = 0; i < n; i++) {
        const s = observations.subarray(i * dt.stateDim, (i + 1) * dt.stateDim);
        histories[i]!.observe(cfg.stateNorm ? normalizeState(s, cfg.stateNorm) : s, Math.fround(rtg[i]!) * scale);
      }
      return selectDtActions(dt, histories, rng, { deterministic: deterministic ?? false, ...(cfg.contextLength ? { contextLength: cfg.contextLength } : {}) });
    },
    targets: () => Float32Array.from(rtg),
    observe(rewards) {
      for (let i = 0; i < rtg.length; i++) rtg[i] = rtg[i]! - rewards[i]!;
    },
  };
}
