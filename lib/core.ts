/**
 * rxrl's core, the same under Node and in a browser: backends, seeded randomness, the data model
 * (io-ts codecs), environments, models, task suites, D4RL datasets, and checkpoints and safetensors
 * as bytes. It imports no Node built-in (the host-specific parts sit behind `#platform/*`,
 * package.json `imports`): files are the disk under Node and, in a browser, the bytes a page hands
 * to `provideFiles`. What the `browser` export condition of `rxrl` resolves to; lib/index.ts (Node)
 * adds writing files (checkpoints, safetensors, D4RL datasets) and Hugging Face model folders.
 */
export { initBackend, currentBackend, BackendError, BACKEND_NAMES, type BackendName, type BackendOptions, type BackendInfo } from './backend.ts';
export { Rng, RngStreams, type RngState } from './random.ts';
export { mean, meanStd, moments } from './stats.ts';
export * from './codec.ts';
export * from './data.ts';
export * from './actor.ts';
export * from './episodes.ts';
export * from './lagrange.ts';
export * from './envs/types.ts';
export { makeEnv, makeVectorEnv, ENV_IDS, UnknownEnvError } from './envs/registry.ts';
export { VectorEnv } from './envs/vector.ts';
export { d4rlNormalizedScore, D4RL_REFERENCE_SCORES } from './d4rl.ts';
export {
  loadD4rl,
  episodesOf,
  D4rlError,
  type D4rlDataset,
  type D4rlEpisode,
  type LoadD4rlOptions,
  type WriteD4rlOptions,
  type EpisodesOfOptions,
} from './datasets/d4rl.ts';
export { stateNormOf } from './datasets/windows.ts';
export { provideFiles } from '#platform/files';
export * from './models/index.ts';
export * from './models/critic.ts';
export * from './transitions.ts';
export * from './io/checkpoint-codec.ts';
export { parseSafetensors, safetensorsBytes, toFloat32, SafetensorsError, type SafetensorsTensor, type SafetensorsDType } from './io/safetensors-codec.ts';
export * from './tasks/hierarchy/index.ts';
export * from './analysis/attention.ts';
export * from './tasks/text-rules.ts';
