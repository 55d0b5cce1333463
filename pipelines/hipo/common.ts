/**
 * What the HIPO family (`sft`, `hipo`, `grpo-lm`) shares: the config sections of the task suite,
 * the model and the base model; building the suite and the causal LM; the base model (loaded from
 * an `sft` run or trained in-process); the prompt starts of an iteration (aligned and conflicting
 * train prompts mixed); and the greedy evaluation on the suite's held-out (and in-distribution)
 * splits, as a pass-through operator.
 *
 * Evaluation metrics (greedy decoding, the first `evaluation.prompts` prompts of each split):
 *
 *   eval/compliance/conflict   mean prompt-level compliance on heldOut.conflicting
 *   eval/compliance/aligned    mean prompt-level compliance on heldOut.aligned
 *   eval/utility/aligned       mean utility on heldOut.aligned
 *   eval/utility/conflict      mean utility on heldOut.conflicting
 *   eval/in_dist/…             the same four on eval.conflicting / eval.aligned (`inDistribution`)
 *
 * ```ts
 * const suite = makeSuite(cfg.suite);
 * const lm = makeLm(cfg.model, suite, seed);
 * const m = evaluateHierarchy(lm, suite, { prompts: 64, inDistribution: true });
 * ```
 */
import * as t from 'io-ts';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { lastValueFrom, map, of, type OperatorFunction } from 'rxjs';
import { NonNegativeInt, PositiveInt, PositiveNumber, Uint32, UnitInterval, oneOf } from '../../lib/codec.ts';
import type { Batch } from '../../lib/data.ts';
import { CausalLM } from '../../lib/models/lm.ts';
import { generate } from '../../lib/models/generate.ts';
import { Rng } from '../../lib/random.ts';
import { makeHierarchySuite, type GeneratedPrompt, type HierarchySuite } from '../../lib/tasks/hierarchy/index.ts';
import type { StartsBatch } from '../../operators/rollout.ts';
import { lmLearner, sftUpdate, type LmLearner } from '../../operators/sftUpdate.ts';
import { firstDifference } from '../../lib/io/checkpoint.ts';
import { ConfigError } from '../config.ts';

/** The task suite's generator knobs (`makeHierarchySuite`); its own seed, so RL seeds share one task. */
export const SuiteSection = t.strict(
  {
    seed: Uint32,
    trainSize: PositiveInt,
    evalSize: PositiveInt,
    heldOutSize: PositiveInt,
    conflictFraction: UnitInterval,
    heldOutPairs: NonNegativeInt,
    maxPromptTokens: PositiveInt,
    maxAnswerTokens: PositiveInt,
  },
  'suite',
);
export type SuiteSection = t.TypeOf<typeof SuiteSection>;

/** A Llama-, Qwen2- or Phi-style causal LM (`width` = d_model, `heads` query = key/value heads). */
export const ModelSection = t.strict({ arch: oneOf(['llama', 'qwen2', 'phi']), width: PositiveInt, layers: PositiveInt, heads: PositiveInt }, 'model');
export type ModelSection = t.TypeOf<typeof ModelSection>;

/** Greedy evaluation: every `every` iterations (from iteration 0), `prompts` per split; the summary has a final one. */
export const EvaluationSection = t.strict({ every: PositiveInt, prompts: PositiveInt, inDistribution: t.boolean }, 'evaluation');
export type EvaluationSection = t.TypeOf<typeof EvaluationSection>;

/** The SFT recipe of the base model: `batch` train prompts per step, Adam at `learningRate`. */
export const SftRecipe = { batch: PositiveInt, learningRate: PositiveNumber, maxGradNorm: PositiveNumber };

/** The base model of an RL run: an `sft` run directory or checkpoint, or (null) SFT in-process with this recipe. */
export const BaseSection = t.strict({ checkpoint: t.union([t.string, t.null]), iterations: PositiveInt, ...SftRecipe }, 'base');
export type BaseSection = t.TypeOf<typeof BaseSection>;

export const SUITE_DEFAULTS: SuiteSection = {
  seed: 0,
  trainSize: 2000,
  evalSize: 200,
  heldOutSize: 200,
  conflictFraction: 0.5,
  heldOutPairs: 4,
  maxPromptTokens: 48,
  maxAnswerTokens: 16,
};
export const MODEL_DEFAULTS: ModelSection = { arch: 'llama', width: 64, layers: 2, heads: 4 };
export const EVALUATION_DEFAULTS: EvaluationSection = { every: 10, prompts: 100, inDistribution: true };
export const BASE_DEFAULTS: BaseSection = { checkpoint: null, iterations: 300, batch: 32, learningRate: 3e-3, maxGradNorm: 1 };

/** The evaluation metric names (docs/metrics.md). */
export const HIERARCHY_EVAL_METRICS: readonly string[] = ['', 'in_dist/'].flatMap((p) =>
  ['compliance/conflict', 'compliance/aligned', 'utility/aligned', 'utility/conflict'].map((m) => `eval/${p}${m}`),
);

/** Cross-field checks of the shared sections, as `path: problem` lines. */
export function checkShared(cfg: { model: ModelSection; suite: SuiteSection; evaluation: EvaluationSection }): string[] {
  const out: string[] = [];
  if (cfg.model.width % cfg.model.heads !== 0) out.push(`model.heads: must divide model.width (${cfg.model.width}), got ${cfg.model.heads}`);
  if (cfg.model.arch === 'phi' && (cfg.model.width / cfg.model.heads) % 4 !== 0)
    out.push(`model.heads: phi rotates part of each head; width / heads must be a multiple of 4, got ${cfg.model.width / cfg.model.heads}`);
  if (cfg.suite.conflictFraction <= 0 || cfg.suite.conflictFraction >= 1)
    out.push(`suite.conflictFraction: must be strictly between 0 and 1 (training mixes both kinds), got ${cfg.suite.conflictFraction}`);
  return out;
}

export function makeSuite(s: SuiteSection): HierarchySuite {
  const { seed, ...rest } = s;
  return makeHierarchySuite({ seed, ...rest });
}

/** A fresh causal LM over the suite's vocabulary, long enough for a prompt and an answer. */
export function makeLm(m: ModelSection, suite: HierarchySuite, seed: number): CausalLM {
  return new CausalLM(
    {
      arch: m.arch,
      vocabSize: suite.tokenizer.vocabSize,
      dModel: m.width,
      nLayers: m.layers,
      nHeads: m.heads,
      nKvHeads: m.heads,
      maxPositions: suite.config.maxPromptTokens + suite.config.maxAnswerTokens + 1,
    },
    { seed },
  );
}

/** `batch` train prompts drawn uniformly, with their user-following answers as SFT targets. */
function sftBatch(suite: HierarchySuite, rng: Rng, iteration: number, batch: number) {
  const examples = Array.from({ length: batch }, () => {
    const p = suite.train[rng.int(suite.train.length)]!;
    return { prompt: p.tokens, completion: suite.answerTokens(p.userFollowing) };
  });
  return { iteration, examples };
}

/** One SFT step of `recipe` on user-following targets, as a stream (the `sft` pipeline's core). */
export function sftStep(suite: HierarchySuite, learner: LmLearner, rng: Rng, recipe: { batch: number; maxGradNorm: number }) {
  const update = sftUpdate(learner, { epochs: 1, minibatches: 1, maxGradNorm: recipe.maxGradNorm });
  return (i: number) =>
    of(i).pipe(
      map((it) => sftBatch(suite, rng, it, recipe.batch)),
      update,
      map(({ iteration, metrics }): Batch<never> => ({ iteration, groups: [], metrics })),
    );
}

/** Trains `lm` in-process with the base recipe (what `sft` does, without the loop); deterministic in `seed`. */
export async function trainBase(lm: CausalLM, suite: HierarchySuite, base: BaseSection, seed: number): Promise<void> {
  const learner = lmLearner(lm, { learningRate: base.learningRate, seed, key: 'sft/minibatch' });
  const step = sftStep(suite, learner, new Rng(seed, 'sft/prompts'), base);
  try {
    for (let i = 0; i < base.iterations; i++) await lastValueFrom(step(i));
  } finally {
    learner.optimizer.dispose();
  }
}

/** The file inside an `sft` run directory that holds its final checkpoint (the runner's name). */
const RUN_CHECKPOINT = 'checkpoint.safetensors';

/**
 * Loads the base weights into `lm` from an `sft` run directory or checkpoint file. The checkpoint's
 * `model` and `suite` must equal this run's (another model or task is an error naming the key).
 */
export async function loadBase(lm: CausalLM, path: string, expect: { model: ModelSection; suite: SuiteSection }): Promise<void> {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, RUN_CHECKPOINT) : path;
  if (!existsSync(file)) throw new ConfigError(`base.checkpoint: no such file: ${file}`);
  const { readCheckpoint, loadCheckpoint } = await import('../../lib/io/checkpoint.ts');
  const ck = await readCheckpoint(file);
  const cfg = (ck.config ?? {}) as Record<string, unknown>;
  for (const key of ['model', 'suite'] as const) {
    const d = firstDifference(cfg[key], expect[key]);
    if (d)
      throw new ConfigError(
        `base.checkpoint: ${file} was trained with another ${key} (${d.path === '(root)' ? key : `${key}.${d.path}`}: ${JSON.stringify(d.a)} there vs ${JSON.stringify(d.b)} here); set ${key} to the base run's`,
      );
  }
  await loadCheckpoint(file, { params: lm.params.map, strict: true });
}

/** The base model: loaded from `base.checkpoint`, or trained by SFT in-process. */
export async function makeBase(cfg: { base: BaseSection; model: ModelSection; suite: SuiteSection; seed: number }, suite: HierarchySuite): Promise<CausalLM> {
  const lm = makeLm(cfg.model, suite, cfg.seed);
  try {
    if (cfg.base.checkpoint !== null) await loadBase(lm, cfg.base.checkpoint, cfg);
    else await trainBase(lm, suite, cfg.base, cfg.seed);
    return lm;
  } catch (e) {
    lm.dispose();
    throw e;
  }
}

/** A copy of `lm` (same config, same weights), e.g. the frozen KL reference. */
export function cloneLm(lm: CausalLM): CausalLM {
  const copy = new CausalLM(lm.config, { seed: 0 });
  copy.params.copyFrom(lm.params);
  return copy;
}

/**
 * The prompt starts of iteration i: `n` train prompts, each conflicting with probability
 * `conflictShare` (else aligned), drawn uniformly within its kind.
 */
export function promptStarts(suite: HierarchySuite, rng: Rng, n: number, conflictShare: number): (iteration: number) => StartsBatch {
  const conflicting = suite.train.filter((p) => p.conflict);
  const aligned = suite.train.filter((p) => !p.conflict);
  return (iteration) => ({
    iteration,
    starts: Array.from({ length: n }, () => {
      const pool = rng.uniform() < conflictShare ? conflicting : aligned;
      return suite.toStart(pool[rng.int(pool.length)]!);
    }),
  });
}

/** Mean utility and compliance of greedy answers to `prompts`, in batches of `chunk`. */
function greedyScores(lm: CausalLM, suite: HierarchySuite, prompts: readonly GeneratedPrompt[], chunk = 64): { utility: number; compliance: number } {
  let u = 0;
  let c = 0;
  const rng = new Rng(0, 'eval/greedy');
  for (let i = 0; i < prompts.length; i += chunk) {
    const part = prompts.slice(i, i + chunk);
    const out = generate(
      lm,
      part.map((p) => p.tokens),
      rng,
      { maxNewTokens: suite.config.maxAnswerTokens, temperature: 0, stopTokens: [suite.stopToken] },
    );
    part.forEach((p, k) => {
      const s = suite.score(p, out.tokens[k]!);
      u += s.utility;
      c += s.compliance;
    });
  }
  const n = Math.max(1, prompts.length);
  return { utility: u / n, compliance: c / n };
}

/** The evaluation metrics of `lm` (see the module comment). */
export function evaluateHierarchy(lm: CausalLM, suite: HierarchySuite, opts: { prompts: number; inDistribution: boolean }): Record<string, number> {
  const out: Record<string, number> = {};
  const splits = [['', suite.heldOut] as const, ...(opts.inDistribution ? [['in_dist/', suite.eval] as const] : [])];
  for (const [prefix, split] of splits) {
    const conflict = greedyScores(lm, suite, split.conflicting.slice(0, opts.prompts));
    const aligned = greedyScores(lm, suite, split.aligned.slice(0, opts.prompts));
    out[`eval/${prefix}compliance/conflict`] = conflict.compliance;
    out[`eval/${prefix}compliance/aligned`] = aligned.compliance;
    out[`eval/${prefix}utility/aligned`] = aligned.utility;
    out[`eval/${prefix}utility/conflict`] = conflict.utility;
  }
  return out;
}

/** Pass-through operator: adds the evaluation metrics on iterations i % every = 0. */
export function hierarchyEvaluation<B extends Pick<Batch<unknown>, 'iteration' | 'metrics'>>(
  lm: CausalLM,
  suite: HierarchySuite,
  cfg: EvaluationSection,
): OperatorFunction<B, B> {
  return map((batch) => {
    // Not on a run's last iteration: that depends on where a resumed run stopped (the summary has the final evaluation).
    if (batch.iteration % cfg.every !== 0) return batch;
    return { ...batch, metrics: { ...batch.metrics, ...evaluateHierarchy(lm, suite, cfg) } };
  });
}
