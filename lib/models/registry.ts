/**
 * Models by name, for pipeline files (`policy.kind`) and `rxrl list`.
 *
 * ```ts
 * const policy = makeModel('mlp', { obsDim: 4, actionSpace: { kind: 'discrete', n: 2 }, seed: 1 });
 * ```
 */
import { MlpPolicy, type MlpPolicyConfig } from './mlp.ts';
import { CausalLM } from './lm.ts';
import { DecisionTransformer, type DecisionTransformerConfig } from './decision-transformer.ts';
import type { TransformerConfigInput } from './config.ts';

export interface ModelKinds {
  mlp: { config: MlpPolicyConfig; model: MlpPolicy };
  'causal-lm': { config: TransformerConfigInput & { seed?: number }; model: CausalLM };
  'decision-transformer': { config: DecisionTransformerConfig; model: DecisionTransformer };
}

export const MODELS: { readonly [K in keyof ModelKinds]: { description: string; make(config: ModelKinds[K]['config']): ModelKinds[K]['model'] } } = {
  mlp: { description: 'MLP policy: categorical (Discrete) or diagonal Gaussian (Box), optional value head', make: (c) => new MlpPolicy(c) },
  'causal-lm': {
    description: 'causal language model: gpt2 | llama | qwen2 | phi core with an LM head',
    make: ({ seed, ...c }) => new CausalLM(c, { seed: seed ?? 0 }),
  },
  'decision-transformer': { description: 'Decision Transformer (ODT): (R̂, s, a) tokens, tanh-Gaussian action head', make: (c) => new DecisionTransformer(c) },
};

export type ModelKind = keyof ModelKinds;
export const MODEL_KINDS = Object.keys(MODELS) as ModelKind[];

export function makeModel<K extends ModelKind>(kind: K, config: ModelKinds[K]['config']): ModelKinds[K]['model'] {
  const entry = MODELS[kind];
  if (!entry) throw new RangeError(`unknown model kind ${JSON.stringify(kind)}; known: ${MODEL_KINDS.join(', ')}`);
  return entry.make(config as never) as ModelKinds[K]['model'];
}
