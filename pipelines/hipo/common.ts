/**
 * What the HIPO family (`sft`, `hipo`, `grpo-lm`, `rft`, `dpo`) shares: the config sections of the task suite,
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
 *   eval/sampled/…             the same four on the held-out splits, sampled at temperature 1
 *                              (a fixed random stream: the same weights give the same numbers)
 *   eval/in_dist/…             the same four on eval.conflicting / eval.aligned (`inDistribution`)
 *   eval/attention/…           system_share, system_share/layer_<i>, chance (lib/analysis/attention.ts)
 *                              of the greedy responses to the heldOut.conflicting prompts
 *
 * The task is a `HierarchyTask` view of the synthetic suite or (suite.kind `text`) of the text
 * suite on a local HF model (`makeTaskAndBase`). Files (a base run, an HF folder) are read through
 * `#platform/files`: the disk under Node; in a browser the bytes the page provided (`provideFiles`),
 * where the synthetic suite with `base.checkpoint: null` needs none and the text suite is refused.
 *
 * ```ts
 * const suite = makeSuite(cfg.suite);
 * const lm = makeLm(cfg.model, suite, seed);
 * const m = evaluateHierarchy(lm, suite, { prompts: 64, inDistribution: true });
 * ```
 */
import * as t from 'io-ts';
import { lastValueFrom, map, of, type OperatorFunction } from 'rxjs';
import { NonNegativeInt, PositiveInt, PositiveNumber, Uint32, UnitInterval, oneOf } from '../../lib/codec.ts';
import type { Batch } from '../../lib/data.ts';
import { CausalLM } from '../../lib/models/lm.ts';
import { generate } from '../../lib/models/generate.ts';
import { Rng } from '../../lib/random.ts';
import { makeHierarchySuite, type GeneratedPrompt, type HierarchySuite } from '../../lib/tasks/hierarchy/index.ts';
import type { TextHierarchySuite, TextPrompt } from '../../lib/tasks/text-rules.ts';
import type { PromptStart } from '../../lib/data.ts';
import { attentionShareMetrics, systemAttentionShare } from '../../lib/analysis/attention.ts';
import type { StartsBatch } from '../../operators/rollout.ts';
import { lmLearner, sftUpdate, type LmLearner } from '../../operators/sftUpdate.ts';
import { firstDifference, loadCheckpointBytes, readCheckpointBytes } from '../../lib/io/checkpoint-codec.ts';
import { FILE_SOURCE, joinPath, loadHfModel, pathKind, readCheckpointFile } from '#platform/files';
import { ConfigError } from '../config.ts';

/** The task suite's generator knobs (`makeHierarchySuite`); its own seed, so RL seeds share one task. */
export const SuiteSection = t.strict(
  {
    /** `synthetic`: the suite of lib/tasks/hierarchy; `text`: IFEval-style text rules on the HF model at `model`. */
    kind: oneOf(['synthetic', 'text']),
    /** `text` only: a local Hugging Face model folder (config.json, safetensors, tokenizer.json); the policy and base. */
    model: t.union([t.string, t.null]),
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

/**
 * The SFT recipe of the base model: `batch` train prompts per step, Adam at `learningRate`, and its
 * targets: `user-following` (the full answer to the user on every prompt, whatever the system says)
 * or `aligned-best` (on aligned prompts, where one answer satisfies both, the best answer — it keeps
 * a required prefix, suffix or separator; on conflicting prompts the user-following answer). Both
 * make a hierarchy-unaware base: on a conflict it obeys the user.
 */
export const SftRecipe = {
  batch: PositiveInt,
  learningRate: PositiveNumber,
  maxGradNorm: PositiveNumber,
  targets: oneOf(['user-following', 'aligned-best']),
  /**
   * Share of SFT examples whose system rules are moved into the USER turn (the system turn left
   * empty), with the best answer as target: the base learns what the rules mean and how to keep them
   * when the user states them, while rules in the system turn stay ignored (on a conflict it still
   * obeys the user) — the capability real chat models bring to HIPO. 0: none.
   */
  userRules: UnitInterval,
};

/** The base model of an RL run: an `sft` run directory or checkpoint, or (null) SFT in-process with this recipe. */
export const BaseSection = t.strict({ checkpoint: t.union([t.string, t.null]), iterations: PositiveInt, ...SftRecipe }, 'base');
export type BaseSection = t.TypeOf<typeof BaseSection>;

export const SUITE_DEFAULTS: SuiteSection = {
  kind: 'synthetic',
  model: null,
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
export const BASE_DEFAULTS: BaseSection = {
  checkpoint: null,
  iterations: 300,
  batch: 32,
  learningRate: 3e-3,
  maxGradNorm: 1,
  targets: 'user-following',
  userRules: 0,
};

/** The evaluation metric names (docs/metrics.md). */
export const HIERARCHY_EVAL_METRICS: readonly string[] = ['', 'sampled/', 'in_dist/']
  .flatMap((p) => ['compliance/conflict', 'compliance/aligned', 'utility/aligned', 'utility/conflict'].map((m) => `eval/${p}${m}`))
  .concat(['eval/attention/system_share', 'eval/attention/chance']);

/** Cross-field checks of the shared sections, as `path: problem` lines. */
export function checkShared(cfg: { model: ModelSection; suite: SuiteSection; evaluation: EvaluationSection; base?: { checkpoint: string | null } }): string[] {
  const out: string[] = [];
  if (cfg.model.width % cfg.model.heads !== 0) out.push(`model.heads: must divide model.width (${cfg.model.width}), got ${cfg.model.heads}`);
  if (cfg.model.arch === 'phi' && (cfg.model.width / cfg.model.heads) % 4 !== 0)
    out.push(`model.heads: phi rotates part of each head; width / heads must be a multiple of 4, got ${cfg.model.width / cfg.model.heads}`);
  if (cfg.suite.kind === 'text' && FILE_SOURCE !== 'disk')
    out.push(`suite.kind: the 'text' suite loads a Hugging Face model folder (suite.model), which runs under Node only; use 'synthetic' here`);
  if (cfg.suite.kind === 'text' && cfg.suite.model === null) out.push(`suite.model: the 'text' suite needs a local Hugging Face model folder, got null`);
  if (cfg.suite.kind === 'text' && cfg.base?.checkpoint != null)
    out.push(
      `base.checkpoint: the 'text' suite's base model is the folder suite.model; base.checkpoint must be null, got ${JSON.stringify(cfg.base.checkpoint)}`,
    );
  if (cfg.suite.kind === 'synthetic' && cfg.suite.model !== null)
    out.push(`suite.model: only the 'text' suite loads a model folder (kind is 'synthetic'), got ${JSON.stringify(cfg.suite.model)}`);
  if (cfg.suite.conflictFraction <= 0 || cfg.suite.conflictFraction >= 1)
    out.push(`suite.conflictFraction: must be strictly between 0 and 1 (training mixes both kinds), got ${cfg.suite.conflictFraction}`);
  return out;
}

/**
 * The synthetic task suite of a `suite` section (its own seed; `kind` and `model` aside).
 * @param s The pipeline's `suite` section.
 * @returns The suite, deterministic in `s`.
 */
export function makeSuite(s: SuiteSection): HierarchySuite {
  const { seed, kind: _kind, model: _model, ...rest } = s;
  return makeHierarchySuite({ seed, ...rest });
}

/**
 * A fresh causal LM over the suite's vocabulary, long enough for a prompt and an answer.
 * @param m The pipeline's `model` section.
 * @param suite The task suite (vocabulary, lengths).
 * @param seed Initialisation seed.
 * @returns The model (dispose it).
 */
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

/** The SFT target of a train prompt under `targets` (see `SftRecipe`). */
export function sftTarget(p: GeneratedPrompt, targets: 'user-following' | 'aligned-best') {
  return targets === 'aligned-best' && p.best.utility === 1 ? p.best : p.userFollowing;
}

/** The prompt's tokens with its system rules moved into the user turn and the system turn left empty. */
export function userRulesPrompt(suite: HierarchySuite, p: GeneratedPrompt): Int32Array {
  const words = suite.template.render([
    { role: 'system', content: [] },
    { role: 'user', content: [...p.systemText, ...p.userText] },
  ]);
  return suite.tokenizer.encode(words);
}

type SftTargets = { batch: number; targets: 'user-following' | 'aligned-best'; userRules: number };

/** `batch` train prompts drawn uniformly, with their SFT targets (a `userRules` share with the rules in the user turn). */
function sftBatch(suite: HierarchySuite, rng: Rng, iteration: number, recipe: SftTargets) {
  const examples = Array.from({ length: recipe.batch }, () => {
    const p = suite.train[rng.int(suite.train.length)]!;
    // No draw when the share is 0, so such runs keep their prompt stream.
    if (recipe.userRules > 0 && rng.uniform() < recipe.userRules) return { prompt: userRulesPrompt(suite, p), completion: suite.answerTokens(p.best) };
    return { prompt: p.tokens, completion: suite.answerTokens(sftTarget(p, recipe.targets)) };
  });
  return { iteration, examples };
}

/** One SFT step of `recipe`, as a stream (the `sft` pipeline's core). */
export function sftStep(suite: HierarchySuite, learner: LmLearner, rng: Rng, recipe: SftTargets & { maxGradNorm: number }) {
  const update = sftUpdate(learner, { epochs: 1, minibatches: 1, maxGradNorm: recipe.maxGradNorm });
  return (i: number) =>
    of(i).pipe(
      map((it) => sftBatch(suite, rng, it, recipe)),
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
  const file = pathKind(path) === 'directory' ? joinPath(path, RUN_CHECKPOINT) : path;
  if (pathKind(file) === 'missing') throw new ConfigError(`base.checkpoint: no such file: ${file}`);
  const bytes = await readCheckpointFile(file);
  const ck = await readCheckpointBytes(bytes, { label: file });
  const cfg = (ck.config ?? {}) as Record<string, unknown>;
  for (const key of ['model', 'suite'] as const) {
    const d = firstDifference(cfg[key], expect[key]);
    if (d)
      throw new ConfigError(
        `base.checkpoint: ${file} was trained with another ${key} (${d.path === '(root)' ? key : `${key}.${d.path}`}: ${JSON.stringify(d.a)} there vs ${JSON.stringify(d.b)} here); set ${key} to the base run's`,
      );
  }
  await loadCheckpointBytes(bytes, { params: lm.params.map, strict: true, label: file });
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

/**
 * The task and the base model of an RL run. `synthetic`: the suite and `makeBase`. `text`: the
 * policy, its tokenizer and chat template from the local HF folder `suite.model` (the base is the
 * model as loaded; `base` and `model` are unused), prompts from makeTextHierarchySuite.
 * `untrained`: a synthetic suite's model is only built, not trained or loaded (an actor, whose
 * weights come from the learner).
 */
export async function makeTaskAndBase(
  cfg: {
    base: BaseSection;
    model: ModelSection;
    suite: SuiteSection;
    seed: number;
  },
  opts: { untrained?: boolean } = {},
): Promise<{ task: HierarchyTask; base: CausalLM }> {
  const s = cfg.suite;
  if (s.kind === 'synthetic') {
    const suite = makeSuite(s);
    return { task: taskOfSuite(suite), base: opts.untrained ? makeLm(cfg.model, suite, cfg.seed) : await makeBase(cfg, suite) };
  }
  const folder = s.model;
  if (folder === null) throw new ConfigError(`suite.model: the 'text' suite needs a local Hugging Face model folder, got null`);
  if (pathKind(folder) !== 'directory')
    throw new ConfigError(`suite.model: no such model folder: ${folder} (a local Hugging Face folder with config.json, *.safetensors and tokenizer.json)`);
  const { makeTextHierarchySuite } = await import('../../lib/tasks/text-rules.ts');
  const hf = await loadHfModel(folder);
  try {
    const tok = hf.tokenizer;
    if (!tok)
      throw new ConfigError(`suite.model: ${folder} has no tokenizer.json (the text suite renders prompts with the model's tokenizer and chat template)`);
    const conflicting = Math.round(s.trainSize * s.conflictFraction);
    const text = makeTextHierarchySuite({
      seed: s.seed,
      tokenizer: tok,
      alignedSize: s.trainSize - conflicting + s.heldOutSize,
      conflictingSize: conflicting + s.heldOutSize,
    });
    const task = taskOfTextSuite(text, s, tok.padTokenId ?? tok.eosTokenId ?? 0);
    const longest = Math.max(...[...text.aligned, ...text.conflicting].map((p) => p.tokens.length));
    if (hf.config.positionEmbedding === 'learned' && longest + s.maxAnswerTokens > hf.config.maxPositions)
      throw new ConfigError(
        `suite.maxAnswerTokens: the longest prompt (${longest} tokens) + ${s.maxAnswerTokens} exceeds the model's ${hf.config.maxPositions} positions`,
      );
    return { task, base: hf.lm };
  } catch (e) {
    hf.lm.dispose();
    throw e;
  }
}

/** A copy of `lm` (same config, same weights), e.g. the frozen KL reference. */
export function cloneLm(lm: CausalLM): CausalLM {
  const copy = new CausalLM(lm.config, { seed: 0 });
  copy.params.copyFrom(lm.params);
  return copy;
}

/** One prompt of a task, whatever the suite: its tokens, system-prompt length, rollout start and verifier. */
export interface TaskPrompt {
  readonly id: string;
  readonly tokens: Int32Array;
  /** Leading prompt tokens that belong to the system prompt (the attention analysis's 𝒮). */
  readonly systemTokens: number;
  readonly start: PromptStart;
  /** Prompt-level compliance ∈ {0, 1} and utility ∈ [0, 1] of generated token ids. */
  score(completion: Int32Array): { utility: number; compliance: number };
}

interface Split {
  readonly aligned: readonly TaskPrompt[];
  readonly conflicting: readonly TaskPrompt[];
}

/**
 * What the HIPO pipelines see of a task suite (synthetic or text): train prompts by kind, the
 * held-out splits (and in-distribution ones, when the suite has them), sampling limits, the verifier.
 */
export interface HierarchyTask {
  readonly train: Split;
  readonly heldOut: Split;
  readonly eval: Split | null;
  readonly stopTokens: readonly number[];
  readonly padToken: number;
  readonly maxAnswerTokens: number;
  /** A train prompt by id (what a rollout start names). */
  byId(id: string): TaskPrompt;
}

function taskOf(
  train: readonly TaskPrompt[],
  heldOut: Split,
  evalSplit: Split | null,
  rest: Pick<HierarchyTask, 'stopTokens' | 'padToken' | 'maxAnswerTokens'>,
): HierarchyTask {
  const ids = new Map(train.map((p) => [p.id, p]));
  return {
    train: { aligned: train.filter((p) => !p.start.meta?.conflict), conflicting: train.filter((p) => p.start.meta?.conflict) },
    heldOut,
    eval: evalSplit,
    ...rest,
    byId: (id) => {
      const p = ids.get(id);
      if (!p) throw new RangeError(`hipo: prompt ${id} is not a train prompt of the suite`);
      return p;
    },
  };
}

/** The synthetic suite as a task. */
export function taskOfSuite(suite: HierarchySuite): HierarchyTask {
  const view = (p: GeneratedPrompt): TaskPrompt => {
    const start = suite.toStart(p);
    return { id: p.id, tokens: p.tokens, systemTokens: start.systemTokens ?? 0, start, score: (y) => suite.score(p, y) };
  };
  const split = (s: HierarchySuite['eval']): Split => ({ aligned: s.aligned.map(view), conflicting: s.conflicting.map(view) });
  return taskOf(suite.train.map(view), split(suite.heldOut), split(suite.eval), {
    stopTokens: [suite.stopToken],
    padToken: 0,
    maxAnswerTokens: suite.config.maxAnswerTokens,
  });
}

/**
 * The text suite (lib/tasks/text-rules.ts) as a task: `trainSize + heldOutSize` prompts of each
 * kind from one seeded suite, the first `heldOutSize` of each kind held out; no in-distribution split.
 */
export function taskOfTextSuite(text: TextHierarchySuite, s: Pick<SuiteSection, 'heldOutSize' | 'maxAnswerTokens'>, padToken: number): HierarchyTask {
  const view = (p: TextPrompt): TaskPrompt => {
    const start = text.toStart(p);
    return { id: p.id, tokens: p.tokens, systemTokens: p.systemTokens, start, score: (y) => text.scoreCompletion(start, y) };
  };
  const n = s.heldOutSize;
  const held: Split = { aligned: text.aligned.slice(0, n).map(view), conflicting: text.conflicting.slice(0, n).map(view) };
  const train = [...text.aligned.slice(n), ...text.conflicting.slice(n)].map(view);
  return taskOf(train, held, null, { stopTokens: text.stopTokens, padToken, maxAnswerTokens: s.maxAnswerTokens });
}

/**
 * The prompt starts of iteration i: `n` train prompts, each conflicting with probability
 * `conflictShare` (else aligned), drawn uniformly within its kind.
 */
export function promptStarts(task: HierarchyTask, rng: Rng, n: number, conflictShare: number): (iteration: number) => StartsBatch {
  const next = promptPicker(task, rng, conflictShare);
  return (iteration) => ({ iteration, starts: Array.from({ length: n }, next) });
}

/**
 * One train prompt's start per call, conflicting with probability `conflictShare` (else aligned),
 * uniform within its kind: `promptStarts` draws n of them per iteration, an asynchronous run one
 * per task (the same sequence from the same stream).
 */
export function promptPicker(task: HierarchyTask, rng: Rng, conflictShare: number): () => PromptStart {
  const { conflicting, aligned } = task.train;
  if (conflicting.length === 0 || aligned.length === 0)
    throw new ConfigError(`suite: training needs both aligned and conflicting train prompts (got ${aligned.length} and ${conflicting.length})`);
  return () => {
    const pool = rng.uniform() < conflictShare ? conflicting : aligned;
    return pool[rng.int(pool.length)]!.start;
  };
}

/**
 * Answers to `prompts` (batches of `chunk`) with their mean utility and compliance: greedy
 * (temperature 0) or sampled at `temperature` from a fixed stream, so an evaluation is the same
 * whenever it is repeated on the same weights.
 */
function answerScores(
  lm: CausalLM,
  task: HierarchyTask,
  prompts: readonly TaskPrompt[],
  temperature = 0,
  chunk = 64,
): { utility: number; compliance: number; responses: Int32Array[] } {
  let u = 0;
  let c = 0;
  const responses: Int32Array[] = [];
  const rng = new Rng(0, temperature === 0 ? 'eval/greedy' : 'eval/sampled');
  for (let i = 0; i < prompts.length; i += chunk) {
    const part = prompts.slice(i, i + chunk);
    const out = generate(
      lm,
      part.map((p) => p.tokens),
      rng,
      { maxNewTokens: task.maxAnswerTokens, temperature, stopTokens: [...task.stopTokens], padToken: task.padToken },
    );
    part.forEach((p, k) => {
      const s = p.score(out.tokens[k]!);
      responses.push(out.tokens[k]!);
      u += s.utility;
      c += s.compliance;
    });
  }
  const n = Math.max(1, prompts.length);
  return { utility: u / n, compliance: c / n, responses };
}

/**
 * The attention metrics (`eval/attention/…`, lib/analysis/attention.ts) of `lm` on `prompts` with
 * their `responses`; an empty record when every response is empty (nothing attends).
 */
function attentionOf(lm: CausalLM, prompts: readonly TaskPrompt[], responses: readonly Int32Array[]): Record<string, number> {
  if (!responses.some((r) => r.length > 0)) return {};
  const share = systemAttentionShare(
    lm,
    prompts.map((p, i) => ({ prompt: p.tokens, system: p.systemTokens, response: responses[i]! })),
    { batchSize: 16 },
  );
  return attentionShareMetrics(share);
}

/** The evaluation metrics of `lm` (see the module comment). */
export function evaluateHierarchy(lm: CausalLM, task: HierarchyTask, opts: { prompts: number; inDistribution: boolean }): Record<string, number> {
  const out: Record<string, number> = {};
  const splits: [string, Split][] = [['', task.heldOut]];
  if (opts.inDistribution && task.eval) splits.push(['in_dist/', task.eval]);
  for (const [prefix, split] of splits) {
    const conflicting = split.conflicting.slice(0, opts.prompts);
    const conflict = answerScores(lm, task, conflicting);
    const aligned = answerScores(lm, task, split.aligned.slice(0, opts.prompts));
    out[`eval/${prefix}compliance/conflict`] = conflict.compliance;
    out[`eval/${prefix}compliance/aligned`] = aligned.compliance;
    out[`eval/${prefix}utility/aligned`] = aligned.utility;
    out[`eval/${prefix}utility/conflict`] = conflict.utility;
    if (prefix !== '') continue;
    Object.assign(out, attentionOf(lm, conflicting, conflict.responses));
    const sConflict = answerScores(lm, task, conflicting, 1);
    const sAligned = answerScores(lm, task, split.aligned.slice(0, opts.prompts), 1);
    out['eval/sampled/compliance/conflict'] = sConflict.compliance;
    out['eval/sampled/compliance/aligned'] = sAligned.compliance;
    out['eval/sampled/utility/aligned'] = sAligned.utility;
    out['eval/sampled/utility/conflict'] = sConflict.utility;
  }
  return out;
}

/** Pass-through operator: adds the evaluation metrics on iterations i % every = 0. */
export function hierarchyEvaluation<B extends Pick<Batch<unknown>, 'iteration' | 'metrics'>>(
  lm: CausalLM,
  task: HierarchyTask,
  cfg: EvaluationSection,
): OperatorFunction<B, B> {
  return map((batch) => {
    // Not on a run's last iteration: that depends on where a resumed run stopped (the summary has the final evaluation).
    if (batch.iteration % cfg.every !== 0) return batch;
    return { ...batch, metrics: { ...batch.metrics, ...evaluateHierarchy(lm, task, cfg) } };
  });
}
