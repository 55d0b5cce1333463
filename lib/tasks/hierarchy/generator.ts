/**
 * `makeHierarchySuite` — the instruction-hierarchy task suite, generated from a seed.
 *
 * Each prompt is a system message of 1–3 rules of distinct kinds and a user request, rendered by
 * the chat template. Prompts are drawn by rejection sampling: rule parameters are aimed at the
 * request (a forbidden word the answer needs, a length limit below the answer's, a topic the answer
 * is not about, ...) in conflicting mode and away from it in aligned mode, and a prompt is kept only
 * when its best compliant answer's utility says what was wanted (= 1 aligned, < 1 conflicting),
 * it is not contradictory, it fits `maxPromptTokens`, both reference answers fit
 * `maxAnswerTokens` (stop token included) and its text is new.
 *
 * Splits:
 * - `heldOutPairs`: k pairs of rule kinds drawn from the seed, never seen together in training;
 * - `train`: rule kinds containing no held-out pair, surface forms 0 … FORMS−2 (aligned and
 *   conflicting mixed, `conflictFraction` conflicting);
 * - `eval.aligned` / `eval.conflicting`: the same distribution as train, prompts not in train;
 * - `heldOut.aligned` / `heldOut.conflicting`: every prompt holds a held-out pair of kinds and every
 *   rule and the request use the held-out surface form (FORMS−1).
 * Each split has its own random stream (`hierarchy/<split>`), so sizes of one split do not shift
 * the prompts of another (except that eval skips prompts already in train).
 *
 * ```ts
 * const suite = makeHierarchySuite({ seed: 1, trainSize: 1000 });
 * const p = suite.train[0]!;
 * suite.score(p, suite.answerTokens(p.best));   // { utility, compliance: 1, perRule }
 * const start = suite.toStart(p);               // PromptStart for lmRollout
 * ```
 */
import type { PromptStart } from '../../data.ts';
import { Rng } from '../../random.ts';
import { CODE_WORDS, CONTENT_WORDS, DISCOURSE_WORDS, FOREIGN, NUMBER_WORDS, REFUSAL_WORD, TOPICS, TOPIC_WORDS, topicOf, type Topic } from './language.ts';
import { HELD_OUT_FORM, RULE_KINDS, TRAIN_FORMS, fullAnswerContent, type RequestKind, type RequestSpec, type RuleKind, type RuleSpec } from './rules.ts';
import { answerUntilStop, scoreAnswer, type AnswerScore, type ReferenceAnswer } from './answers.ts';
import { HIERARCHY_TEMPLATE, type ChatTemplate } from './template.ts';
import { HierarchyTaskError, WordTokenizer } from './tokenizer.ts';
import { hierarchyPromptProblems, renderValidatedPrompt, type HierarchyPrompt } from './validate.ts';

export type HierarchySplit = 'train' | 'eval/aligned' | 'eval/conflicting' | 'heldOut/aligned' | 'heldOut/conflicting';

export interface GeneratedPrompt extends HierarchyPrompt {
  split: HierarchySplit;
  /** The rule kinds, sorted and joined by '+': the combination key. */
  kinds: string;
}

export interface HierarchySuiteConfig {
  seed: number;
  /** Training prompts (default 2000). */
  trainSize?: number;
  /** Prompts in each of eval.aligned and eval.conflicting (default 200). */
  evalSize?: number;
  /** Prompts in each of heldOut.aligned and heldOut.conflicting (default 200). */
  heldOutSize?: number;
  /** Share of conflicting prompts in train (default 0.5). */
  conflictFraction?: number;
  /** Number of rule-kind pairs held out of training (default 4), or the pairs themselves. */
  heldOutPairs?: number | readonly (readonly [RuleKind, RuleKind])[];
  /** Longest prompt in tokens, template included (default 48). */
  maxPromptTokens?: number;
  /** Longest reference answer in tokens, stop token included (default 16). */
  maxAnswerTokens?: number;
}

export const HIERARCHY_SUITE_DEFAULTS = {
  trainSize: 2000,
  evalSize: 200,
  heldOutSize: 200,
  conflictFraction: 0.5,
  heldOutPairs: 4,
  maxPromptTokens: 48,
  maxAnswerTokens: 16,
} as const;

export interface HierarchySuite {
  config: Required<Omit<HierarchySuiteConfig, 'heldOutPairs'>> & { heldOutPairs: [RuleKind, RuleKind][] };
  tokenizer: WordTokenizer;
  template: ChatTemplate;
  /** Token id of the assistant's stop token (`<|end|>`). */
  stopToken: number;
  train: GeneratedPrompt[];
  eval: { aligned: GeneratedPrompt[]; conflicting: GeneratedPrompt[] };
  heldOut: { aligned: GeneratedPrompt[]; conflicting: GeneratedPrompt[] };
  heldOutPairs: [RuleKind, RuleKind][];
  /** Scores an answer given as token ids (cut at the stop token) or as words. */
  score(prompt: HierarchyPrompt, answer: ArrayLike<number> | readonly string[]): AnswerScore;
  /** The prompt as an `lmRollout` start (`meta` holds split, kinds, request and conflict). */
  toStart(prompt: GeneratedPrompt): PromptStart;
  /** A reference answer's token ids with the stop token appended (an SFT target). */
  answerTokens(answer: ReferenceAnswer): Int32Array;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

function shuffle<T>(rng: Rng, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const sample = <T>(rng: Rng, xs: readonly T[], k: number): T[] => shuffle(rng, xs).slice(0, k);

function allPairs(): [RuleKind, RuleKind][] {
  const out: [RuleKind, RuleKind][] = [];
  for (let i = 0; i < RULE_KINDS.length; i++) for (let j = i + 1; j < RULE_KINDS.length; j++) out.push([RULE_KINDS[i]!, RULE_KINDS[j]!]);
  return out;
}

const pairKey = (a: string, b: string): string => [a, b].sort().join('+');

function sampleRequest(rng: Rng, kind: RequestKind): RequestSpec {
  switch (kind) {
    case 'repeat': {
      const k = 2 + rng.int(3);
      const pool = rng.uniform() < 0.7 ? TOPIC_WORDS[pick(rng, TOPICS)] : CONTENT_WORDS;
      return { kind, words: sample(rng, pool, k) };
    }
    case 'list':
      return { kind, topic: pick(rng, TOPICS), n: 2 + rng.int(3) };
    case 'count': {
      const words = TOPIC_WORDS[pick(rng, ['colours', 'animals', 'foods', 'objects'] as const)];
      const L = 3 + rng.int(4);
      const c = rng.int(Math.min(L, 4) + 1);
      const target = pick(rng, words);
      const others = words.filter((w) => w !== target);
      const items = shuffle(rng, [...Array.from({ length: c }, () => target), ...Array.from({ length: L - c }, () => pick(rng, others))]);
      return { kind, target, items };
    }
    case 'lookup': {
      const m = 2 + rng.int(2);
      const keys = sample(rng, [...TOPIC_WORDS.animals, ...TOPIC_WORDS.objects], m);
      const values = [...TOPIC_WORDS.colours, ...NUMBER_WORDS.slice(0, 11)];
      const table = keys.map((k) => [k, pick(rng, values)] as [string, string]);
      return { kind, table, key: pick(rng, keys) };
    }
    case 'translate':
      return { kind, word: pick(rng, Object.keys(FOREIGN)) };
    case 'reveal':
      return { kind };
  }
}

interface RuleContext {
  request: RequestSpec;
  core: string[];
  coreTopic: Topic | undefined;
  conflicting: boolean;
  secret: string;
}

function sampleRule(rng: Rng, kind: RuleKind, ctx: RuleContext): RuleSpec {
  const aim = ctx.conflicting && rng.uniform() < 0.8;
  const others = (n: number): string[] =>
    sample(
      rng,
      CONTENT_WORDS.filter((w) => !ctx.core.includes(w)),
      n,
    );
  switch (kind) {
    case 'forbidden':
      return { kind, words: aim ? shuffle(rng, [pick(rng, ctx.core), ...others(rng.int(2))]) : others(1 + rng.int(2)) };
    case 'allowed': {
      const keep = aim ? sample(rng, ctx.core, ctx.core.length - 1) : ctx.core;
      return { kind, words: shuffle(rng, [...keep, ...others(1 + rng.int(2))]) };
    }
    case 'maxWords': {
      const len = ctx.core.length;
      return { kind, n: aim && len >= 2 ? 1 + rng.int(len - 1) : len + 2 + rng.int(3) };
    }
    case 'format':
      return { kind, separator: rng.uniform() < 0.5 ? ',' : ';' };
    case 'prefix':
    case 'suffix':
      return {
        kind,
        word: pick(
          rng,
          DISCOURSE_WORDS.filter((w) => w !== REFUSAL_WORD),
        ),
      };
    case 'secret':
      return { kind, word: ctx.secret };
    case 'topic': {
      const topic =
        aim || ctx.coreTopic === undefined
          ? pick(
              rng,
              TOPICS.filter((t) => t !== ctx.coreTopic),
            )
          : ctx.coreTopic;
      return { kind, topic };
    }
  }
}

/** Builds the suite; deterministic in `config`. */
export function makeHierarchySuite(config: HierarchySuiteConfig): HierarchySuite {
  const cfg = { ...HIERARCHY_SUITE_DEFAULTS, ...config };
  for (const k of ['trainSize', 'evalSize', 'heldOutSize', 'maxPromptTokens', 'maxAnswerTokens'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 0) throw new HierarchyTaskError(`makeHierarchySuite: ${k} must be a non-negative integer, got ${cfg[k]}`);
  }
  if (!(cfg.conflictFraction >= 0 && cfg.conflictFraction <= 1)) {
    throw new HierarchyTaskError(`makeHierarchySuite: conflictFraction must be in [0, 1], got ${cfg.conflictFraction}`);
  }
  const tokenizer = new WordTokenizer();
  const template = HIERARCHY_TEMPLATE;
  const pairs = allPairs();
  let heldOutPairs: [RuleKind, RuleKind][];
  if (typeof cfg.heldOutPairs === 'number') {
    if (!Number.isInteger(cfg.heldOutPairs) || cfg.heldOutPairs < 1 || cfg.heldOutPairs >= pairs.length) {
      throw new HierarchyTaskError(`makeHierarchySuite: heldOutPairs must be an integer in [1, ${pairs.length - 1}], got ${cfg.heldOutPairs}`);
    }
    heldOutPairs = sample(new Rng(cfg.seed, 'hierarchy/heldout-pairs'), pairs, cfg.heldOutPairs);
  } else {
    heldOutPairs = cfg.heldOutPairs.map(([a, b], i) => {
      for (const k of [a, b])
        if (!RULE_KINDS.includes(k))
          throw new HierarchyTaskError(
            `makeHierarchySuite: heldOutPairs.${i}: unknown rule kind ${JSON.stringify(k)}; expected one of ${RULE_KINDS.join(', ')}`,
          );
      if (a === b) throw new HierarchyTaskError(`makeHierarchySuite: heldOutPairs.${i}: a pair needs two different kinds, got ${a} twice`);
      return [a, b] as [RuleKind, RuleKind];
    });
  }
  const heldOutKeys = new Set(heldOutPairs.map(([a, b]) => pairKey(a, b)));
  const hasHeldOutPair = (kinds: readonly RuleKind[]): boolean => kinds.some((a, i) => kinds.some((b, j) => j > i && heldOutKeys.has(pairKey(a, b))));

  const seen = new Set<string>();
  const options = { tokenizer, template, maxPromptTokens: cfg.maxPromptTokens };

  function drawKinds(rng: Rng, heldOut: boolean): RuleKind[] {
    if (heldOut) {
      const pair = pick(rng, heldOutPairs);
      const rest = RULE_KINDS.filter((k) => !pair.includes(k));
      return rng.uniform() < 0.5 ? [...pair, pick(rng, rest)] : [...pair];
    }
    for (;;) {
      const r = 1 + rng.categorical([0.3, 0.4, 0.3]);
      const kinds = sample(rng, RULE_KINDS, r);
      if (!hasHeldOutPair(kinds)) return kinds;
    }
  }

  function draw(rng: Rng, split: HierarchySplit, id: string, conflicting: boolean): GeneratedPrompt {
    const heldOut = split.startsWith('heldOut');
    for (let attempt = 0; attempt < 2000; attempt++) {
      const kinds = drawKinds(rng, heldOut);
      const form = (): number => (heldOut ? HELD_OUT_FORM : pick(rng, TRAIN_FORMS));
      // Conflicts on repeat and list leave partial utility; weight them up in conflicting mode.
      const requestKinds: RequestKind[] = ['repeat', 'list', 'count', 'lookup', 'translate'];
      if (conflicting) requestKinds.push('repeat', 'list');
      if (conflicting && kinds.includes('secret')) requestKinds.push('reveal', 'reveal');
      const request = { ...sampleRequest(rng, pick(rng, requestKinds)), form: form() };
      const secret = pick(rng, CODE_WORDS);
      const core = [...new Set(request.kind === 'reveal' ? [secret] : fullAnswerContent(request, []))];
      const topics = new Set(core.map((w) => topicOf(w)));
      const coreTopic = topics.size === 1 ? [...topics][0] : undefined;
      const ctx: RuleContext = { request, core, coreTopic, conflicting, secret };
      const system = kinds.map((k) => ({ ...sampleRule(rng, k, ctx), form: form() }));
      const spec = { id, system, request };
      if (hierarchyPromptProblems(spec, options).length > 0) continue;
      const p = renderValidatedPrompt(spec, options);
      if (p.conflict !== conflicting) continue;
      if (p.best.words.length + 1 > cfg.maxAnswerTokens || p.userFollowing.words.length + 1 > cfg.maxAnswerTokens) continue;
      const text = p.words.join(' ');
      if (seen.has(text)) continue;
      seen.add(text);
      return { ...p, split, kinds: [...kinds].sort().join('+') };
    }
    throw new HierarchyTaskError(
      `makeHierarchySuite: could not draw a ${split} prompt (${conflicting ? 'conflicting' : 'aligned'}) in 2000 attempts; relax maxPromptTokens or maxAnswerTokens`,
    );
  }

  const pad = (i: number): string => String(i).padStart(5, '0');
  const trainRng = new Rng(cfg.seed, 'hierarchy/train');
  const train = Array.from({ length: cfg.trainSize }, (_, i) => draw(trainRng, 'train', `train-${pad(i)}`, trainRng.uniform() < cfg.conflictFraction));
  const makeSplit = (split: HierarchySplit, n: number, conflicting: boolean): GeneratedPrompt[] => {
    const rng = new Rng(cfg.seed, `hierarchy/${split}`);
    const name = split.replace('/', '-').toLowerCase();
    return Array.from({ length: n }, (_, i) => draw(rng, split, `${name}-${pad(i)}`, conflicting));
  };
  const evalSplits = { aligned: makeSplit('eval/aligned', cfg.evalSize, false), conflicting: makeSplit('eval/conflicting', cfg.evalSize, true) };
  const heldOutSplits = { aligned: makeSplit('heldOut/aligned', cfg.heldOutSize, false), conflicting: makeSplit('heldOut/conflicting', cfg.heldOutSize, true) };

  const endWord = template.stopToken;
  return {
    config: { ...cfg, heldOutPairs },
    tokenizer,
    template,
    stopToken: tokenizer.id(endWord),
    train,
    eval: evalSplits,
    heldOut: heldOutSplits,
    heldOutPairs,
    score(prompt, answer) {
      const words = isWordList(answer) ? answerUntilStop(answer) : answerUntilStop(tokenizer.decodeWords(answer));
      return scoreAnswer(prompt.system, prompt.request, words);
    },
    toStart(prompt) {
      return {
        kind: 'prompt',
        promptId: prompt.id,
        tokens: prompt.tokens,
        systemTokens: prompt.systemTokens,
        meta: { split: prompt.split, kinds: prompt.kinds, request: prompt.request.kind, conflict: prompt.conflict },
      };
    },
    answerTokens(answer) {
      return tokenizer.encode([...answer.words, endWord]);
    },
  };
}

function isWordList(a: ArrayLike<number> | readonly string[]): a is readonly string[] {
  return Array.isArray(a) && (a.length === 0 || typeof a[0] === 'string');
}
