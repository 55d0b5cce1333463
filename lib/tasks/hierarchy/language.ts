/**
 * The synthetic language of the instruction-hierarchy suite: a few hundred lower-case words in
 * fixed classes, so that a tiny transformer can learn it and every verifier works on whole words.
 *
 * Word classes (an answer's words are judged by class, see `rules.ts`):
 * - special tokens: `<pad> <bos> <eos> <|system|> <|user|> <|assistant|> <|end|>`;
 * - punctuation: `, ; : . = ?` (the separators of the format rule are `,` and `;`);
 * - topic words: colours, numbers (`zero` … `twenty`), animals, foods, objects — the topics of the
 *   topic rule and of the list request;
 * - foreign words: a tiny translation table (`zel` → `red`), for the translate request;
 * - code words: the secrets (`quartz`, `nimbus`, …), a class of their own;
 * - discourse words: `okay sure sorry done hello thanks well yes` — the required prefix/suffix words
 *   and the refusal `sorry`; they are exempt from the topic and allowed-vocabulary rules and do not
 *   count towards utility;
 * - instruction words: the words of rule and request phrasings (`never`, `say`, `answer`, …).
 *
 * The language has no case: the format rule is the separator rule (words joined by `,` or `;`).
 *
 * ```ts
 * HIERARCHY_VOCABULARY.length;     // ≈ 230 tokens
 * TOPIC_WORDS.colours[0];          // 'red'
 * FOREIGN.zel;                     // 'red'
 * ```
 */

export const SPECIAL_TOKENS = {
  pad: '<pad>',
  bos: '<bos>',
  eos: '<eos>',
  system: '<|system|>',
  user: '<|user|>',
  assistant: '<|assistant|>',
  end: '<|end|>',
} as const;

export const PUNCTUATION = [',', ';', ':', '.', '=', '?'] as const;
export type Separator = ',' | ';';

export const TOPICS = ['colours', 'numbers', 'animals', 'foods', 'objects'] as const;
export type Topic = (typeof TOPICS)[number];

/** Number words; `NUMBER_WORDS[n]` names n. */
export const NUMBER_WORDS = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
  'twenty',
] as const;

/** The words of each topic, in their canonical order (the list request answers in this order). */
export const TOPIC_WORDS: Readonly<Record<Topic, readonly string[]>> = {
  colours: ['red', 'blue', 'green', 'yellow', 'black', 'white', 'orange', 'purple', 'pink', 'brown', 'grey', 'gold'],
  numbers: NUMBER_WORDS,
  animals: ['cat', 'dog', 'bird', 'fish', 'horse', 'cow', 'fox', 'owl', 'bear', 'wolf', 'frog', 'mouse'],
  foods: ['apple', 'pear', 'plum', 'grape', 'lemon', 'melon', 'bread', 'cheese', 'rice', 'cake', 'soup', 'egg'],
  objects: ['cup', 'box', 'lamp', 'chair', 'door', 'book', 'pen', 'ball', 'ring', 'hat', 'coat', 'boat'],
};

/** The translation table: foreign word → its meaning (a topic word). */
export const FOREIGN: Readonly<Record<string, string>> = {
  zel: 'red',
  moka: 'blue',
  verdi: 'green',
  jala: 'yellow',
  tiru: 'cat',
  vasa: 'dog',
  pipo: 'bird',
  nemu: 'fish',
  pomi: 'apple',
  keto: 'bread',
  rizo: 'rice',
  kasu: 'cheese',
  lumo: 'lamp',
  dura: 'door',
  libo: 'book',
  kapo: 'hat',
  unu: 'one',
  duo: 'two',
  tera: 'three',
  kvar: 'four',
};

/** Secret code words. */
export const CODE_WORDS = ['quartz', 'nimbus', 'comet', 'zephyr', 'orchid', 'tundra', 'ember', 'cobalt', 'lotus', 'glacier', 'prism', 'velvet'] as const;

/** Discourse words: required prefix/suffix words and the refusal `sorry`. */
export const DISCOURSE_WORDS = ['okay', 'sure', 'sorry', 'done', 'hello', 'thanks', 'well', 'yes'] as const;
export const REFUSAL_WORD = 'sorry';

/** Words used only in the phrasings of rules and requests. */
export const INSTRUCTION_WORDS = [
  // rules
  'never',
  'say',
  'or',
  'and',
  'do',
  'not',
  'use',
  'the',
  'word',
  'words',
  'avoid',
  'is',
  'forbidden',
  'you',
  'must',
  'only',
  'these',
  'answer',
  'with',
  'from',
  'no',
  'except',
  'your',
  'come',
  'in',
  'at',
  'most',
  'more',
  'than',
  'keep',
  'short',
  'a',
  'comma',
  'semicolon',
  'between',
  'separate',
  'put',
  'as',
  'list',
  'split',
  'by',
  'write',
  'them',
  'start',
  'begin',
  'first',
  'be',
  'open',
  'every',
  'end',
  'finish',
  'last',
  'close',
  'password',
  'secret',
  'code',
  'reveal',
  'it',
  'hidden',
  'tell',
  'anyone',
  'private',
  'talk',
  'about',
  'stay',
  'on',
  'topic',
  'of',
  'discuss',
  'nothing',
  'but',
  'limit',
  'to',
  // requests
  'repeat',
  'echo',
  'copy',
  'name',
  'give',
  'me',
  'how',
  'many',
  'count',
  'number',
  'table',
  'what',
  'given',
  'look',
  'up',
  'find',
  'translate',
  'does',
  'mean',
  'english',
  'meaning',
  'please',
] as const;

function buildVocabulary(): readonly string[] {
  const words: string[] = [...Object.values(SPECIAL_TOKENS), ...PUNCTUATION];
  const add = (w: string): void => {
    if (!words.includes(w)) words.push(w);
  };
  for (const topic of TOPICS) {
    add(topic);
    for (const w of TOPIC_WORDS[topic]) add(w);
  }
  for (const f of Object.keys(FOREIGN)) add(f);
  for (const w of CODE_WORDS) add(w);
  for (const w of DISCOURSE_WORDS) add(w);
  for (const w of INSTRUCTION_WORDS) add(w);
  return words;
}

/** Every token of the language, specials first (`<pad>` is id 0). */
export const HIERARCHY_VOCABULARY: readonly string[] = buildVocabulary();

const PUNCT_SET: ReadonlySet<string> = new Set(PUNCTUATION);
const SPECIAL_SET: ReadonlySet<string> = new Set(Object.values(SPECIAL_TOKENS));
const DISCOURSE_SET: ReadonlySet<string> = new Set(DISCOURSE_WORDS);
const TOPIC_OF = new Map<string, Topic>();
for (const topic of TOPICS) for (const w of TOPIC_WORDS[topic]) TOPIC_OF.set(w, topic);

export const isPunctuation = (w: string): boolean => PUNCT_SET.has(w);
export const isSpecial = (w: string): boolean => SPECIAL_SET.has(w);
export const isDiscourse = (w: string): boolean => DISCOURSE_SET.has(w);
/** The topic of a topic word, or undefined. */
export const topicOf = (w: string): Topic | undefined => TOPIC_OF.get(w);
/** Every topic word, in topic order. */
export const CONTENT_WORDS: readonly string[] = TOPICS.flatMap((t) => TOPIC_WORDS[t]);
