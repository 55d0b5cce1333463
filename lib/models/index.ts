/**
 * Models: one transformer core with variants (gpt2, llama, qwen2, phi), a causal LM head, the
 * Online Decision Transformer, MLP policies, a parameter store and KV-cache generation.
 *
 * ```ts
 * import { CausalLM, generate, MlpPolicy, DecisionTransformer } from './models/index.ts';
 * const lm = new CausalLM({ arch: 'llama', vocabSize: 64, dModel: 32, nHeads: 4, nKvHeads: 2 }, { seed: 0 });
 * const out = generate(lm, [[1, 2, 3]], new Rng(0, 'sample'), { maxNewTokens: 8 });
 * const pi = new MlpPolicy({ obsDim: 4, actionSpace: { kind: 'discrete', n: 2 }, valueHead: true });
 * const { action, logProb } = pi.act(obs, new Rng(0, 'action'));
 * ```
 */
export * from './config.ts';
export { ParamStore, init, initValues } from './params.ts';
export type { Init, ParamRecord } from './params.ts';
export * from './transformer.ts';
export * from './lm.ts';
export * from './policy.ts';
export * from './mlp.ts';
export * from './decision-transformer.ts';
export * from './dt-actor.ts';
export * from './dt-batch.ts';
export * from './generate.ts';
export * from './lm-policy.ts';
export * from './registry.ts';
