/**
 * A word-level tokenizer for the synthetic language: one id per word, specials included, no
 * sub-words and no unknown token — a word outside the vocabulary is an error, never silently
 * mapped, so a rule can never reach the model half-encoded.
 *
 * Text is words separated by single spaces (punctuation is its own word: `never say red .`).
 *
 * ```ts
 * const tok = new WordTokenizer();                 // the suite's vocabulary
 * const ids = tok.encode('never say red .');      // Int32Array
 * tok.decode(ids);                                 // 'never say red .'
 * tok.encode('never say banana');                 // throws UnknownWordError: "banana"
 * ```
 */
import { HIERARCHY_VOCABULARY, SPECIAL_TOKENS } from './language.ts';

/** Errors of the task suite: bad specs, contradictory prompts, unencodable words, bad templates. */
export class HierarchyTaskError extends Error {
  override name = 'HierarchyTaskError';
}

export class UnknownWordError extends HierarchyTaskError {
  override name = 'UnknownWordError';
  constructor(readonly word: string) {
    super(`the tokenizer cannot encode the word ${JSON.stringify(word)} (not in its vocabulary)`);
  }
}

export type SpecialIds = { readonly [K in keyof typeof SPECIAL_TOKENS]: number };

export class WordTokenizer {
  readonly vocab: readonly string[];
  private readonly ids: ReadonlyMap<string, number>;
  readonly special: SpecialIds;

  /** @param vocab the words, id = index; must hold the special tokens and no duplicates. */
  constructor(vocab: readonly string[] = HIERARCHY_VOCABULARY) {
    const ids = new Map<string, number>();
    vocab.forEach((w, i) => {
      if (w === '' || /\s/.test(w)) throw new HierarchyTaskError(`WordTokenizer: vocabulary entry ${i} ${JSON.stringify(w)} is empty or holds whitespace`);
      if (ids.has(w)) throw new HierarchyTaskError(`WordTokenizer: vocabulary entry ${i} ${JSON.stringify(w)} is a duplicate`);
      ids.set(w, i);
    });
    const special = {} as Record<keyof typeof SPECIAL_TOKENS, number>;
    for (const [k, w] of Object.entries(SPECIAL_TOKENS) as [keyof typeof SPECIAL_TOKENS, string][]) {
      const id = ids.get(w);
      if (id === undefined) throw new HierarchyTaskError(`WordTokenizer: the vocabulary lacks the special token ${w}`);
      special[k] = id;
    }
    this.vocab = [...vocab];
    this.ids = ids;
    this.special = special;
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  has(word: string): boolean {
    return this.ids.has(word);
  }

  /** The id of one word; throws `UnknownWordError` for a word outside the vocabulary. */
  id(word: string): number {
    const id = this.ids.get(word);
    if (id === undefined) throw new UnknownWordError(word);
    return id;
  }

  /** Text (space-separated words) or a word list → ids. */
  encode(text: string | readonly string[]): Int32Array {
    const words = typeof text === 'string' ? splitWords(text) : text;
    const out = new Int32Array(words.length);
    words.forEach((w, i) => (out[i] = this.id(w)));
    return out;
  }

  /** Ids → words; an id outside the vocabulary throws. */
  decodeWords(ids: ArrayLike<number>): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const w = this.vocab[ids[i]!];
      if (w === undefined) throw new HierarchyTaskError(`WordTokenizer: id ${ids[i]} at position ${i} is outside the vocabulary (size ${this.vocab.length})`);
      out.push(w);
    }
    return out;
  }

  /** Ids → text, words joined by single spaces. */
  decode(ids: ArrayLike<number>): string {
    return this.decodeWords(ids).join(' ');
  }
}

/** Splits text on whitespace (no empty words). */
export function splitWords(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}
