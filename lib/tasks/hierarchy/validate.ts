/**
 * Validation of instruction-hierarchy prompts before any training, and their rendering into
 * model inputs. Every problem names the prompt and the rule (or the request):
 *
 *     prompt "p3", rule 1 (forbidden "banana"): the tokenizer cannot encode the word "banana" …
 *     prompt "p4": contradictory system prompt: rule 0 (prefix "okay") and rule 1 (forbidden "okay") …
 *     prompt "p5", rule 0 (topic colours): the chat template "no-system" drops it …
 *
 * and an unknown rule kind in a prompt file fails decoding at its exact path
 * (`prompts.2.system.1.kind: unknown rule kind "shout"; expected one of forbidden, …`).
 *
 * The contradiction check is exact: every rule but prefix/suffix is closed under deleting words
 * (with their separators), so a system prompt is satisfiable iff one of its shortest candidates —
 * `[p, s]`, `[p]` when p = s, `[p]`, `[s]` or `[]`, joined by each required separator — complies.
 *
 * ```ts
 * const prompts = loadHierarchyPrompts(JSON.parse(text));     // decode + validate + render
 * validateHierarchyPrompts(specs, { tokenizer, template });   // throws HierarchyTaskError listing every problem
 * ```
 */
import { decode } from '../../codec.ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { DISCOURSE_WORDS, FOREIGN, TOPIC_WORDS, isDiscourse, isPunctuation, isSpecial } from './language.ts';
import { HierarchyPromptFile, checkRule, describeRule, requestText, ruleText, type HierarchyPromptSpec, type RequestSpec, type RuleSpec } from './rules.ts';
import { bestAnswer, joinWith, userFollowingAnswer, type ReferenceAnswer } from './answers.ts';
import { HIERARCHY_TEMPLATE, type ChatTemplate } from './template.ts';
import { HierarchyTaskError, WordTokenizer } from './tokenizer.ts';

export interface HierarchyValidationOptions {
  tokenizer?: WordTokenizer;
  template?: ChatTemplate;
  /** Longest allowed prompt in tokens (template included); unchecked when absent. */
  maxPromptTokens?: number;
}

/** A validated prompt, rendered for the model, with its reference answers. */
export interface HierarchyPrompt extends HierarchyPromptSpec {
  /** The system message's words and the user message's words. */
  systemText: string[];
  userText: string[];
  /** The whole rendered prompt (template applied, ending with the assistant marker). */
  words: string[];
  tokens: Int32Array;
  /** Leading tokens up to and including the system message's end marker. */
  systemTokens: number;
  /** The best compliant answer (max utility subject to every rule). */
  best: ReferenceAnswer;
  /** The answer that follows the user and ignores the system prompt. */
  userFollowing: ReferenceAnswer;
  /** best.utility < 1: the user asks for something the system prompt forbids. */
  conflict: boolean;
}

const ruleLabel = (id: string, i: number, r: RuleSpec): string => `prompt ${JSON.stringify(id)}, rule ${i} (${describeRule(r)})`;
const requestLabel = (id: string, r: RequestSpec): string => `prompt ${JSON.stringify(id)}, request (${r.kind})`;
const quote = (ws: readonly string[]): string => JSON.stringify(ws.join(' '));

function tryWords(f: () => string[]): string[] | string {
  try {
    return f();
  } catch (e) {
    return (e as Error).message;
  }
}

/** The first word the tokenizer cannot encode, or null. */
function unencodable(tok: WordTokenizer, words: readonly string[]): string | null {
  return words.find((w) => !tok.has(w)) ?? null;
}

function ruleProblems(r: RuleSpec): string | null {
  if ((r.kind === 'prefix' || r.kind === 'suffix') && !isDiscourse(r.word)) {
    return `a required ${r.kind} word must be a discourse word (${DISCOURSE_WORDS.join(', ')}), got ${JSON.stringify(r.word)}`;
  }
  if ((r.kind === 'forbidden' || r.kind === 'allowed') && r.words.some((w) => isSpecial(w))) return 'special tokens cannot be listed as words';
  return null;
}

function requestProblems(r: RequestSpec, system: readonly RuleSpec[]): string | null {
  const badWord = (w: string): boolean => isPunctuation(w) || isSpecial(w) || isDiscourse(w);
  switch (r.kind) {
    case 'repeat': {
      const bad = r.words.find(badWord);
      return bad === undefined ? null : `the words to repeat must be content words, got ${JSON.stringify(bad)}`;
    }
    case 'list':
      return r.n > TOPIC_WORDS[r.topic].length ? `asks for ${r.n} ${r.topic} but the language has only ${TOPIC_WORDS[r.topic].length}` : null;
    case 'count':
      if (badWord(r.target)) return `the counted word must be a content word, got ${JSON.stringify(r.target)}`;
      return r.items.length > 20 ? `at most 20 items can be counted, got ${r.items.length}` : null;
    case 'lookup': {
      const keys = r.table.map(([k]) => k);
      if (new Set(keys).size !== keys.length) return 'the table repeats a key';
      if (!keys.includes(r.key)) return `the key ${JSON.stringify(r.key)} is not in the table`;
      const v = r.table.find(([k]) => k === r.key)![1];
      return badWord(v) ? `the looked-up value must be a content word, got ${JSON.stringify(v)}` : null;
    }
    case 'translate':
      return FOREIGN[r.word] === undefined ? `${JSON.stringify(r.word)} is not in the translation table (${Object.keys(FOREIGN).join(', ')})` : null;
    case 'reveal':
      return system.some((s) => s.kind === 'secret') ? null : 'there is no secret rule in the system prompt to reveal';
  }
}

/** Null when some answer satisfies every rule, else a message naming the rules that clash. */
export function contradiction(system: readonly RuleSpec[]): string | null {
  const list = (idx: number[]): string => idx.map((i) => `rule ${i} (${describeRule(system[i]!)})`).join(' and ');
  for (const kind of ['prefix', 'suffix'] as const) {
    const idx = system.flatMap((r, i) => (r.kind === kind ? [i] : []));
    const words = new Set(idx.map((i) => (system[i] as { word: string }).word));
    if (words.size > 1) return `contradictory system prompt: ${list(idx)} require different ${kind} words`;
  }
  const p = (system.find((r) => r.kind === 'prefix') as { word: string } | undefined)?.word;
  const s = (system.find((r) => r.kind === 'suffix') as { word: string } | undefined)?.word;
  const cands: string[][] =
    p !== undefined && s !== undefined ? (p === s ? [[p], [p, s]] : [[p, s]]) : p !== undefined ? [[p]] : s !== undefined ? [[s]] : [[]];
  const seps = [undefined, ...new Set(system.flatMap((r) => (r.kind === 'format' ? [r.separator] : [])))];
  for (const c of cands) for (const sep of seps) if (system.every((r) => checkRule(r, joinWith(c, sep)))) return null;
  const shortest = joinWith(cands[0]!, seps[seps.length - 1]);
  const failing = system.flatMap((r, i) => (checkRule(r, shortest) ? [] : [i]));
  const forcing = system.flatMap((r, i) => (r.kind === 'prefix' || r.kind === 'suffix' || (r.kind === 'format' && seps.length > 2) ? [i] : []));
  const involved = [...new Set([...forcing, ...failing])].sort((a, b) => a - b);
  return `contradictory system prompt: no answer satisfies ${list(involved)} (the shortest answer they require, ${quote(shortest)}, breaks ${failing.map((i) => `rule ${i}`).join(' and ')})`;
}

/** Is `needle` a contiguous run of `hay`? */
function containsRun(hay: readonly string[], needle: readonly string[]): number {
  if (needle.length === 0) return 0;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Every problem of one prompt (empty when it is valid). */
export function hierarchyPromptProblems(spec: HierarchyPromptSpec, options: HierarchyValidationOptions = {}): string[] {
  const tok = options.tokenizer ?? defaultTokenizer();
  const template = options.template ?? HIERARCHY_TEMPLATE;
  const problems: string[] = [];
  const ruleTexts: string[][] = [];
  spec.system.forEach((r, i) => {
    const label = ruleLabel(spec.id, i, r);
    const semantic = ruleProblems(r);
    if (semantic) problems.push(`${label}: ${semantic}`);
    const text = tryWords(() => ruleText(r));
    if (typeof text === 'string') return void problems.push(`${label}: ${text}`);
    ruleTexts.push(text);
    const bad = unencodable(tok, text);
    if (bad !== null) problems.push(`${label}: the tokenizer cannot encode the word ${JSON.stringify(bad)} (the rule reads ${quote(text)})`);
  });
  const rLabel = requestLabel(spec.id, spec.request);
  const reqProblem = requestProblems(spec.request, spec.system);
  if (reqProblem) problems.push(`${rLabel}: ${reqProblem}`);
  const userText = tryWords(() => requestText(spec.request));
  if (typeof userText === 'string') problems.push(`${rLabel}: ${userText}`);
  else {
    const bad = unencodable(tok, userText);
    if (bad !== null) problems.push(`${rLabel}: the tokenizer cannot encode the word ${JSON.stringify(bad)} (the request reads ${quote(userText)})`);
  }
  const c = contradiction(spec.system);
  if (c) problems.push(`prompt ${JSON.stringify(spec.id)}: ${c}`);
  if (problems.length > 0 || typeof userText === 'string') return problems;

  // The template must carry every rule to the model, and open the assistant's turn last.
  const systemText = ruleTexts.flat();
  const rendered = template.render(
    [
      { role: 'system', content: systemText },
      { role: 'user', content: userText },
    ],
    { addGenerationPrompt: true },
  );
  const sysAt = containsRun(rendered, systemText);
  const userAt = containsRun(rendered, userText);
  if (sysAt < 0 || (userAt >= 0 && sysAt > userAt)) {
    spec.system.forEach((r, i) => {
      if (containsRun(rendered, ruleTexts[i]!) < 0 || sysAt < 0) {
        problems.push(
          `${ruleLabel(spec.id, i, r)}: the chat template ${JSON.stringify(template.name)} drops the system message, so this rule never reaches the model (it renders ${quote(rendered)})`,
        );
      }
    });
    if (problems.length === 0)
      problems.push(
        `prompt ${JSON.stringify(spec.id)}: the chat template ${JSON.stringify(template.name)} does not put the system message before the user message`,
      );
  }
  if (userAt < 0) problems.push(`${rLabel}: the chat template ${JSON.stringify(template.name)} drops the user message`);
  if (rendered[rendered.length - 1] !== tok.vocab[tok.special.assistant]) {
    problems.push(`prompt ${JSON.stringify(spec.id)}: the chat template ${JSON.stringify(template.name)} does not end with the assistant marker`);
  }
  const bad = unencodable(tok, rendered);
  if (bad !== null)
    problems.push(
      `prompt ${JSON.stringify(spec.id)}: the tokenizer cannot encode ${JSON.stringify(bad)}, which the chat template ${JSON.stringify(template.name)} adds`,
    );
  if (options.maxPromptTokens !== undefined && rendered.length > options.maxPromptTokens) {
    problems.push(`prompt ${JSON.stringify(spec.id)}: ${rendered.length} tokens, more than maxPromptTokens ${options.maxPromptTokens}`);
  }
  return problems;
}

let cachedTokenizer: WordTokenizer | undefined;
function defaultTokenizer(): WordTokenizer {
  return (cachedTokenizer ??= new WordTokenizer());
}

/** Throws one `HierarchyTaskError` listing every problem of every prompt (ids must be unique). */
export function validateHierarchyPrompts(specs: readonly HierarchyPromptSpec[], options: HierarchyValidationOptions = {}): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.id)) problems.push(`prompt ${JSON.stringify(s.id)}: the id is used twice`);
    seen.add(s.id);
    problems.push(...hierarchyPromptProblems(s, options));
  }
  if (problems.length > 0) throw new HierarchyTaskError(`invalid instruction-hierarchy prompts:\n  ${problems.join('\n  ')}`);
}

/** Validates one prompt and renders it: tokens, system-token count and both reference answers. */
export function buildHierarchyPrompt(spec: HierarchyPromptSpec, options: HierarchyValidationOptions = {}): HierarchyPrompt {
  validateHierarchyPrompts([spec], options);
  return renderValidatedPrompt(spec, options);
}

/** `buildHierarchyPrompt` without the validation (for a spec `hierarchyPromptProblems` passed). */
export function renderValidatedPrompt(spec: HierarchyPromptSpec, options: HierarchyValidationOptions = {}): HierarchyPrompt {
  const tok = options.tokenizer ?? defaultTokenizer();
  const template = options.template ?? HIERARCHY_TEMPLATE;
  const systemText = spec.system.flatMap((r) => ruleText(r));
  const userText = requestText(spec.request);
  const words = template.render(
    [
      { role: 'system', content: systemText },
      { role: 'user', content: userText },
    ],
    { addGenerationPrompt: true },
  );
  // The system part: up to the end of the system text, and the end marker right after it.
  const start = systemText.length > 0 ? containsRun(words, systemText) : words.indexOf(tok.vocab[tok.special.system]!) + 1;
  let systemTokens = start + systemText.length;
  if (words[systemTokens] === tok.vocab[tok.special.end]) systemTokens++;
  const best = bestAnswer(spec.system, spec.request);
  const userFollowing = userFollowingAnswer(spec.system, spec.request);
  return {
    ...spec,
    systemText,
    userText,
    words,
    tokens: tok.encode(words),
    systemTokens,
    best,
    userFollowing,
    conflict: best.utility < 1,
  };
}

/**
 * Decodes a prompt file (`{ prompts: [{ id, system: [...], request: {...} }] }`), validates every
 * prompt and renders them; a bad file throws with the exact path of each problem.
 */
export function loadHierarchyPrompts(file: unknown, options: HierarchyValidationOptions = {}): HierarchyPrompt[] {
  const r = decode(HierarchyPromptFile, file);
  if (isLeft(r)) throw new HierarchyTaskError(`invalid instruction-hierarchy prompt file:\n  ${r.left.join('\n  ')}`);
  validateHierarchyPrompts(r.right.prompts, options);
  return r.right.prompts.map((s) => buildHierarchyPrompt(s, options));
}
