/**
 * `dpo` — Direct Preference Optimisation on the model's OWN samples, the preference baseline of
 * HIPO, on the same base model, prompts and budget of sampled completions as `hipo`. Per iteration i:
 *
 *   P train prompts → lmRollout: G completions each, sampled from the frozen BASE model
 *     (`onPolicy: false`, the default: offline DPO on base samples, fresh ones every iteration)
 *     or from the CURRENT model (`onPolicy: true`: iterative, on-policy DPO)
 *   → at most one pair per group (x, y_w ≻ y_l):
 *        y_w (chosen)   = the compliant completion with the highest utility (first on ties);
 *                         no pair when no completion of the group is compliant
 *        y_l (rejected) = the lowest-ranked other completion in the order (compliance, utility)
 *                         (non-compliant before compliant, then lower utility; first on ties),
 *                         provided it is strictly worse than y_w: non-compliant, or compliant
 *                         with lower utility; no pair when every completion ties with y_w
 *        (empty completions are never paired)
 *   → dpoUpdate with π_ref = the base model (β, cDPO ε, epochs × minibatches)
 *   → evaluation (greedy, as the others)
 *
 * Metrics: `dpo/pairs`, `dpo/pair_frac` (pairs / P), dpoUpdate's `dpo/loss`, `dpo/accuracy`,
 * `dpo/reward_margin`, `dpo/chosen_reward`, `dpo/rejected_reward`, `grad_norm`, the rollout's
 * `score/utility/mean`, `score/compliance/mean` (of the samples the pairs come from), the evaluation.
 *
 * ```ts
 * const r = await runDpo({ iterations: 20, algorithm: { beta: 0.1, onPolicy: false } });
 * ```
 */
import * as t from 'io-ts';
import { map, of } from 'rxjs';
import { NonNegativeInt, NonNegativeNumber, PositiveInt, PositiveNumber, Uint32, decodeOrThrow, oneOf } from '../../lib/codec.ts';
import type { Batch, Group, MetricsRecord } from '../../lib/data.ts';
import { DPO_UPDATE_DEFAULTS, dpoUpdate, type DpoLearner, type PreferencePair } from '../../operators/dpoUpdate.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { deepPartial, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext } from '../context.ts';
import { StopRule, stopRule } from '../loop.ts';
import {
  BASE_DEFAULTS,
  BaseSection,
  EVALUATION_DEFAULTS,
  EvaluationSection,
  HIERARCHY_EVAL_METRICS,
  MODEL_DEFAULTS,
  ModelSection,
  SUITE_DEFAULTS,
  SuiteSection,
} from './common.ts';
import { SAMPLE_DEFAULTS, SAMPLE_METRICS, SampleProps, checkSampling, promptTokens, scoresOf } from './rft.ts';
import { runLmRl, type LmRlResult } from './rl.ts';

export const DpoConfig = t.strict(
  {
    pipeline: oneOf(['dpo']),
    seed: Uint32,
    iterations: PositiveInt,
    suite: SuiteSection,
    model: ModelSection,
    base: BaseSection,
    algorithm: t.strict(
      {
        ...SampleProps,
        /** false: pairs from the frozen base model's samples; true: from the current model's. */
        onPolicy: t.boolean,
        /** β of DPO (the implicit KL strength to the base model). */
        beta: PositiveNumber,
        /** ε of conservative DPO, in [0, 0.5). */
        labelSmoothing: NonNegativeNumber,
        epochs: PositiveInt,
        minibatches: PositiveInt,
        maxGradNorm: PositiveNumber,
      },
      'algorithm',
    ),
    evaluation: EvaluationSection,
    stop: t.union([t.null, StopRule]),
    checkpointEvery: NonNegativeInt,
  },
  'dpo',
);
export type DpoConfig = t.TypeOf<typeof DpoConfig>;
export const DpoFile = deepPartial(DpoConfig);

export const DPO_DEFAULTS: DpoConfig = {
  pipeline: 'dpo',
  seed: 0,
  iterations: 40,
  suite: SUITE_DEFAULTS,
  model: MODEL_DEFAULTS,
  base: BASE_DEFAULTS,
  algorithm: {
    ...SAMPLE_DEFAULTS,
    onPolicy: false,
    beta: DPO_UPDATE_DEFAULTS.beta,
    labelSmoothing: 0,
    epochs: 1,
    minibatches: 1,
    maxGradNorm: DPO_UPDATE_DEFAULTS.maxGradNorm,
  },
  evaluation: EVALUATION_DEFAULTS,
  stop: null,
  checkpointEvery: 10,
};

export const DPO_METRICS: readonly string[] = [
  ...SAMPLE_METRICS,
  ...['dpo/pairs', 'dpo/pair_frac', 'dpo/loss', 'dpo/accuracy', 'dpo/reward_margin', 'dpo/chosen_reward', 'dpo/rejected_reward', 'grad_norm'],
  ...HIERARCHY_EVAL_METRICS,
];

export function resolveDpo(partial: DeepPartial<DpoConfig> = {}): DpoConfig {
  return decodeOrThrow(DpoConfig, resolve(DPO_DEFAULTS, partial), 'dpo config');
}

export function checkDpo(cfg: DpoConfig): string[] {
  const out = checkSampling('dpo', cfg, DPO_METRICS);
  if (cfg.algorithm.labelSmoothing >= 0.5) out.push(`algorithm.labelSmoothing: must be in [0, 0.5), got ${cfg.algorithm.labelSmoothing}`);
  return out;
}

/** The preference pair of one group, or null (the rule of the module comment). */
export function groupPair(group: Group): PreferencePair | null {
  const rows = group.trajectories.filter((tr) => tr.length > 0).map((tr) => ({ tr, ...scoresOf(tr) }));
  let chosen: (typeof rows)[number] | undefined;
  for (const r of rows) if (r.compliance === 1 && (!chosen || r.utility > chosen.utility)) chosen = r;
  if (!chosen) return null;
  let rejected: (typeof rows)[number] | undefined;
  for (const r of rows) {
    if (r === chosen) continue;
    if (!rejected || r.compliance < rejected.compliance || (r.compliance === rejected.compliance && r.utility < rejected.utility)) rejected = r;
  }
  if (!rejected || (rejected.compliance === 1 && rejected.utility >= chosen.utility)) return null;
  return { prompt: promptTokens(group), chosen: Int32Array.from(chosen.tr.actions), rejected: Int32Array.from(rejected.tr.actions) };
}

/** Runs the `dpo` pipeline (see the module comment). */
export async function runDpo(
  partial: DeepPartial<DpoConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<LmRlResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveDpo(rest);
  const problems = checkDpo(cfg);
  if (problems.length > 0) throw new RangeError(`dpo config: ${problems.join('; ')}`);
  const alg = cfg.algorithm;
  return runLmRl(
    cfg,
    {
      score: ({ utility, compliance }) => ({ reward: utility, cost: 1 - compliance }),
      reference: true,
      summaryKeys: ['dpo/pair_frac', 'dpo/loss', 'dpo/accuracy'],
      iteration: ({ starts, rollout, rolloutOf, learner, ref, evaluation }) => {
        if (!ref) throw new Error('dpo: the frozen base model is missing');
        // dpoUpdate's learner: the shared optimizer, counters and minibatch stream, with π_ref = the base.
        const dpoLearner: DpoLearner = {
          lm: learner.lm,
          optimizer: learner.optimizer,
          rng: learner.rng,
          ref,
          get version() {
            return learner.version;
          },
          set version(v) {
            learner.version = v;
          },
          get step() {
            return learner.step;
          },
          set step(v) {
            learner.step = v;
          },
        };
        const sample = alg.onPolicy ? rollout : rolloutOf(ref);
        const update = dpoUpdate(dpoLearner, pickDpo(alg));
        /** One DPO round: sample, pair, optimise. */
        return (i: number) =>
          of(i).pipe(
            map(starts),
            sample,
            map((b) => {
              const pairs = b.groups.map(groupPair).filter((p): p is PreferencePair => p !== null);
              const metrics = { ...b.metrics, 'dpo/pairs': pairs.length, 'dpo/pair_frac': pairs.length / Math.max(1, b.groups.length) };
              return { iteration: b.iteration, pairs, metrics };
            }),
            update,
            map((b): Batch<never> => ({ iteration: b.iteration, groups: [], metrics: b.metrics })),
            evaluation,
          );
      },
      stop: stopWhen ?? stopRule(cfg.stop),
    },
    sinks,
    ctx,
  );
}

const pickDpo = (a: DpoConfig['algorithm']) => ({
  beta: a.beta,
  labelSmoothing: a.labelSmoothing,
  epochs: a.epochs,
  minibatches: a.minibatches,
  maxGradNorm: a.maxGradNorm,
});
