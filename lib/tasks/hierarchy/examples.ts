/**
 * Prints a few generated prompts of each split with their reference answers and scores, and the
 * suite's statistics: the examples in docs/tasks/instruction-hierarchy.md come from
 *
 *     npx tsx lib/tasks/hierarchy/examples.ts [seed]
 */
import { makeHierarchySuite, type GeneratedPrompt } from './generator.ts';

const seed = Number(process.argv[2] ?? 0);
const suite = makeHierarchySuite({ seed });
const show = (p: GeneratedPrompt): void => {
  const best = suite.score(p, p.best.words);
  const user = suite.score(p, p.userFollowing.words);
  console.log(`${p.id}  [${p.kinds}; ${p.request.kind}]`);
  console.log(`  prompt:         ${p.words.join(' ')}`);
  console.log(`  best:           ${p.best.words.join(' ') || '(empty)'}   utility ${best.utility.toFixed(3)}, compliance ${best.compliance}`);
  console.log(
    `  user-following: ${p.userFollowing.words.join(' ')}   utility ${user.utility.toFixed(3)}, compliance ${user.compliance} (per rule ${user.perRule.join(' ')})`,
  );
};
console.log(`seed ${seed}: vocabulary ${suite.tokenizer.vocabSize} tokens; held-out pairs ${suite.heldOutPairs.map((p) => p.join('+')).join(', ')}`);
const splits: [string, GeneratedPrompt[]][] = [
  ['train', suite.train],
  ['eval/aligned', suite.eval.aligned],
  ['eval/conflicting', suite.eval.conflicting],
  ['heldOut/aligned', suite.heldOut.aligned],
  ['heldOut/conflicting', suite.heldOut.conflicting],
];
for (const [name, ps] of splits) {
  const mean = (f: (p: GeneratedPrompt) => number): string => (ps.reduce((a, p) => a + f(p), 0) / ps.length).toFixed(3);
  console.log(
    `${name}: ${ps.length} prompts, ${ps.filter((p) => p.conflict).length} conflicting, prompt tokens ≤ ${Math.max(...ps.map((p) => p.tokens.length))}, ` +
      `best utility ${mean((p) => p.best.utility)}, user-following compliance ${mean((p) => p.userFollowing.compliance)}`,
  );
}
console.log();
for (const p of [
  suite.train[0]!,
  suite.train[1]!,
  suite.eval.aligned[0]!,
  ...suite.eval.conflicting.slice(0, 3),
  suite.heldOut.aligned[0]!,
  ...suite.heldOut.conflicting.slice(0, 2),
])
  show(p);
