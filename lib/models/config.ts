/**
 * Transformer configurations: one config type, four variants (`gpt2`, `llama`, `qwen2`, `phi`).
 *
 * A variant is nothing but a set of defaults for the switches of the one core in
 * `transformer.ts`:
 *
 * | switch              | gpt2        | llama       | qwen2       | phi                     |
 * |---------------------|-------------|-------------|-------------|-------------------------|
 * | norm                | layernorm   | rmsnorm     | rmsnorm     | layernorm               |
 * | mlp                 | standard    | gated       | gated       | standard                |
 * | activation          | gelu_tanh   | silu        | silu        | gelu_tanh               |
 * | positionEmbedding   | learned     | rope        | rope        | rope (partial)          |
 * | parallelResidual    | false       | false       | false       | true                    |
 * | qkvBias / outBias   | true / true | false/false | true / false| true / true             |
 * | mlpBias             | true        | false       | false       | true                    |
 * | lmHeadBias          | false       | false       | false       | true                    |
 * | tieEmbeddings       | true        | false       | true        | false                   |
 *
 * Field names follow Hugging Face's `config.json` (camel-cased, with the short names used in
 * nanoGPT where HF is verbose); `fromHfConfig` does the translation:
 * `vocab_size → vocabSize`, `hidden_size | n_embd → dModel`, `num_hidden_layers | n_layer →
 * nLayers`, `num_attention_heads | n_head → nHeads`, `num_key_value_heads → nKvHeads`,
 * `intermediate_size | n_inner → dFF`, `max_position_embeddings | n_positions → maxPositions`,
 * `rope_theta → ropeTheta`, `rms_norm_eps | layer_norm_eps | layer_norm_epsilon → normEps`,
 * `partial_rotary_factor → partialRotaryFactor`, `tie_word_embeddings → tieEmbeddings`,
 * `initializer_range → initializerRange`.
 *
 * ```ts
 * const cfg = transformerConfig({ arch: 'llama', vocabSize: 64, dModel: 32, nLayers: 2,
 *   nHeads: 4, nKvHeads: 2 });
 * cfg.headDim;          // 8
 * cfg.norm;             // 'rmsnorm'
 * const phi = transformerConfig({ arch: 'phi', vocabSize: 64, dModel: 32, nHeads: 4 });
 * ```
 */

export type Arch = 'gpt2' | 'llama' | 'qwen2' | 'phi';
export type NormKind = 'layernorm' | 'rmsnorm';
/** `standard`: down(act(up(x))). `gated` (SwiGLU when act = silu): down(act(gate(x)) ⊙ up(x)). */
export type MlpKind = 'standard' | 'gated';
/** `gelu_tanh` is GPT-2's `gelu_new`; `gelu` the exact erf form. */
export type Activation = 'gelu_tanh' | 'gelu' | 'relu' | 'silu';
/** `none` (Decision Transformer: the caller adds its own, e.g. timestep embeddings). */
export type PositionEmbedding = 'learned' | 'rope' | 'none';

/** A fully resolved transformer configuration (every switch explicit). */
export interface TransformerConfig {
  readonly arch: Arch;
  /** Token vocabulary; 0 means the core has no token embedding (inputs are embeddings). */
  readonly vocabSize: number;
  /** Residual width (HF `hidden_size`, GPT-2 `n_embd`). */
  readonly dModel: number;
  readonly nLayers: number;
  /** Query heads. */
  readonly nHeads: number;
  /** Key/value heads (grouped-query attention); divides nHeads. nKvHeads = nHeads is MHA. */
  readonly nKvHeads: number;
  /** Per-head width; default dModel / nHeads. */
  readonly headDim: number;
  /** MLP hidden width (HF `intermediate_size`, GPT-2 `n_inner`). */
  readonly dFF: number;
  /** Learned position table size; for RoPE only a documented limit, not enforced. */
  readonly maxPositions: number;
  readonly norm: NormKind;
  /** HF `layer_norm_eps` / `rms_norm_eps`. */
  readonly normEps: number;
  readonly mlp: MlpKind;
  readonly activation: Activation;
  readonly positionEmbedding: PositionEmbedding;
  /** RoPE base θ: frequencies θ^(−2j/rotaryDim). */
  readonly ropeTheta: number;
  /** Fraction of each head rotated by RoPE (phi: 0.4–0.5, others 1). */
  readonly partialRotaryFactor: number;
  /** phi: x + attn(ln(x)) + mlp(ln(x)) with one norm per block. */
  readonly parallelResidual: boolean;
  readonly qkvBias: boolean;
  /** Bias on the attention output projection. */
  readonly attnOutBias: boolean;
  readonly mlpBias: boolean;
  /** Bias on the final norm (LayerNorm only; RMSNorm has none). */
  readonly lmHeadBias: boolean;
  /** LM head shares the token embedding (logits = h · Eᵀ). */
  readonly tieEmbeddings: boolean;
  /** Std of the normal init of weights (HF `initializer_range`). */
  readonly initializerRange: number;
}

/** What callers write: the arch plus any overrides; the rest comes from the arch's defaults. */
export type TransformerConfigInput = { readonly arch: Arch } & Partial<Omit<TransformerConfig, 'arch'>>;

type Switches = Pick<
  TransformerConfig,
  | 'norm'
  | 'normEps'
  | 'mlp'
  | 'activation'
  | 'positionEmbedding'
  | 'ropeTheta'
  | 'partialRotaryFactor'
  | 'parallelResidual'
  | 'qkvBias'
  | 'attnOutBias'
  | 'mlpBias'
  | 'lmHeadBias'
  | 'tieEmbeddings'
>;

/** Per-variant defaults of the switches. */
export const ARCH_DEFAULTS: Readonly<Record<Arch, Switches>> = {
  gpt2: {
    norm: 'layernorm',
    normEps: 1e-5,
    mlp: 'standard',
    activation: 'gelu_tanh',
    positionEmbedding: 'learned',
    ropeTheta: 10000,
    partialRotaryFactor: 1,
    parallelResidual: false,
    qkvBias: true,
    attnOutBias: true,
    mlpBias: true,
    lmHeadBias: false,
    tieEmbeddings: true,
  },
  llama: {
    norm: 'rmsnorm',
    normEps: 1e-6,
    mlp: 'gated',
    activation: 'silu',
    positionEmbedding: 'rope',
    ropeTheta: 10000,
    partialRotaryFactor: 1,
    parallelResidual: false,
    qkvBias: false,
    attnOutBias: false,
    mlpBias: false,
    lmHeadBias: false,
    tieEmbeddings: false,
  },
  qwen2: {
    norm: 'rmsnorm',
    normEps: 1e-6,
    mlp: 'gated',
    activation: 'silu',
    positionEmbedding: 'rope',
    ropeTheta: 1000000,
    partialRotaryFactor: 1,
    parallelResidual: false,
    qkvBias: true,
    attnOutBias: false,
    mlpBias: false,
    lmHeadBias: false,
    tieEmbeddings: true,
  },
  phi: {
    norm: 'layernorm',
    normEps: 1e-5,
    mlp: 'standard',
    activation: 'gelu_tanh',
    positionEmbedding: 'rope',
    ropeTheta: 10000,
    partialRotaryFactor: 0.5,
    parallelResidual: true,
    qkvBias: true,
    attnOutBias: true,
    mlpBias: true,
    lmHeadBias: true,
    tieEmbeddings: false,
  },
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function positiveInt(path: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(`${path}: expected a positive integer, got ${v}`);
}

/** Fills defaults from the arch and validates; errors name the field (`transformerConfig.nKvHeads: ...`). */
export function transformerConfig(input: TransformerConfigInput): TransformerConfig {
  const arch = input.arch;
  const sw = ARCH_DEFAULTS[arch];
  if (!sw) throw new ConfigError(`transformerConfig.arch: expected one of gpt2|llama|qwen2|phi, got ${String(arch)}`);
  const dModel = input.dModel ?? 64;
  const nHeads = input.nHeads ?? 4;
  const nKvHeads = input.nKvHeads ?? nHeads;
  const headDim = input.headDim ?? dModel / nHeads;
  const mlp = input.mlp ?? sw.mlp;
  // SwiGLU keeps ~the parameter count of a 4d MLP with 8d/3 (llama's choice); standard uses 4d.
  const dFF = input.dFF ?? (mlp === 'gated' ? 4 * Math.ceil((8 * dModel) / 3 / 4) : 4 * dModel);
  const cfg: TransformerConfig = {
    ...sw,
    ...stripUndefined(input),
    arch,
    vocabSize: input.vocabSize ?? 0,
    dModel,
    nLayers: input.nLayers ?? 2,
    nHeads,
    nKvHeads,
    headDim,
    dFF,
    maxPositions: input.maxPositions ?? 1024,
    initializerRange: input.initializerRange ?? 0.02,
  };
  const p = 'transformerConfig';
  if (!Number.isInteger(cfg.vocabSize) || cfg.vocabSize < 0) {
    throw new ConfigError(`${p}.vocabSize: expected an integer >= 0, got ${cfg.vocabSize}`);
  }
  positiveInt(`${p}.dModel`, cfg.dModel);
  positiveInt(`${p}.nLayers`, cfg.nLayers);
  positiveInt(`${p}.nHeads`, cfg.nHeads);
  positiveInt(`${p}.nKvHeads`, cfg.nKvHeads);
  if (cfg.nHeads % cfg.nKvHeads !== 0) {
    throw new ConfigError(`${p}.nKvHeads: expected a divisor of nHeads (${cfg.nHeads}), got ${cfg.nKvHeads}`);
  }
  if (!Number.isInteger(cfg.headDim) || cfg.headDim <= 0) {
    throw new ConfigError(`${p}.headDim: expected a positive integer (dModel / nHeads = ${dModel}/${nHeads}), got ${cfg.headDim}`);
  }
  positiveInt(`${p}.dFF`, cfg.dFF);
  positiveInt(`${p}.maxPositions`, cfg.maxPositions);
  if (!(cfg.normEps > 0)) throw new ConfigError(`${p}.normEps: expected a positive number, got ${cfg.normEps}`);
  if (!(cfg.partialRotaryFactor > 0 && cfg.partialRotaryFactor <= 1)) {
    throw new ConfigError(`${p}.partialRotaryFactor: expected a number in (0, 1], got ${cfg.partialRotaryFactor}`);
  }
  if (cfg.positionEmbedding === 'rope') {
    const rd = rotaryDim(cfg);
    if (rd < 2 || rd % 2 !== 0) {
      throw new ConfigError(`${p}.partialRotaryFactor: rotary dim round(${cfg.partialRotaryFactor}·${cfg.headDim}) = ${rd} must be even and >= 2`);
    }
  }
  if (cfg.tieEmbeddings && cfg.vocabSize === 0) {
    throw new ConfigError(`${p}.tieEmbeddings: needs a token embedding (vocabSize > 0)`);
  }
  return cfg;
}

/** Number of leading dims of each head that RoPE rotates: floor(partialRotaryFactor · headDim) (HF's int()). */
export function rotaryDim(cfg: Pick<TransformerConfig, 'partialRotaryFactor' | 'headDim'>): number {
  return Math.floor(cfg.partialRotaryFactor * cfg.headDim + 1e-9);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Translates a Hugging Face `config.json` (GPT2, Llama, Qwen2, Phi) into a resolved config.
 * `model_type` picks the arch; unknown fields are ignored.
 */
export function fromHfConfig(hf: Record<string, unknown>): TransformerConfig {
  const num = (...keys: string[]): number | undefined => {
    for (const k of keys) if (typeof hf[k] === 'number') return hf[k] as number;
    return undefined;
  };
  const bool = (k: string): boolean | undefined => (typeof hf[k] === 'boolean' ? (hf[k] as boolean) : undefined);
  const mt = String(hf['model_type'] ?? '');
  const arch: Arch | undefined =
    mt === 'gpt2' ? 'gpt2' : mt === 'llama' || mt === 'mistral' ? 'llama' : mt === 'qwen2' ? 'qwen2' : mt === 'phi' ? 'phi' : undefined;
  if (!arch) throw new ConfigError(`fromHfConfig.model_type: expected gpt2|llama|mistral|qwen2|phi, got ${mt || '(missing)'}`);
  const dModel = num('hidden_size', 'n_embd');
  const act = String(hf['hidden_act'] ?? hf['activation_function'] ?? '');
  const activation: Activation | undefined =
    act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'gelu_tanh' : act === 'gelu' ? 'gelu' : act === 'relu' ? 'relu' : act === 'silu' ? 'silu' : undefined;
  const input: TransformerConfigInput = {
    arch,
    vocabSize: num('vocab_size'),
    dModel,
    nLayers: num('num_hidden_layers', 'n_layer'),
    nHeads: num('num_attention_heads', 'n_head'),
    nKvHeads: num('num_key_value_heads'),
    headDim: num('head_dim'),
    dFF: num('intermediate_size', 'n_inner') ?? (arch === 'gpt2' && dModel ? 4 * dModel : undefined),
    maxPositions: num('max_position_embeddings', 'n_positions'),
    normEps: num('rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon'),
    ropeTheta: num('rope_theta'),
    partialRotaryFactor: num('partial_rotary_factor'),
    tieEmbeddings: bool('tie_word_embeddings'),
    qkvBias: arch === 'llama' ? bool('attention_bias') : undefined,
    attnOutBias: arch === 'llama' ? bool('attention_bias') : undefined,
    mlpBias: arch === 'llama' ? bool('mlp_bias') : undefined,
    initializerRange: num('initializer_range'),
    activation,
  };
  return transformerConfig(input);
}
