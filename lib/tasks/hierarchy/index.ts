/**
 * The instruction-hierarchy task suite: a synthetic language with its word tokenizer and chat
 * template, verifiable system rules and user requests, exact verifiers, the best and the
 * user-following reference answers, validation of prompt files, and seeded splits
 * (docs/tasks/instruction-hierarchy.md).
 *
 * ```ts
 * import { makeHierarchySuite } from 'rxrl';
 * const suite = makeHierarchySuite({ seed: 0 });
 * const p = suite.heldOut.conflicting[0]!;
 * suite.score(p, suite.answerTokens(p.userFollowing));   // { utility: 1, compliance: 0, perRule }
 * ```
 */
export * from './language.ts';
export * from './tokenizer.ts';
export * from './template.ts';
export * from './rules.ts';
export * from './answers.ts';
export * from './validate.ts';
export * from './generator.ts';
