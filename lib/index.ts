/**
 * rxrl — reinforcement-learning training as composable RxJS streams on tfjs tensors.
 *
 * The core: backends, seeded randomness, the data model (io-ts codecs), environments.
 * Operators live in `rxrl/operators`, pipelines in `rxrl/pipelines`.
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
  writeD4rl,
  episodesOf,
  D4rlError,
  type D4rlDataset,
  type D4rlEpisode,
  type LoadD4rlOptions,
  type WriteD4rlOptions,
  type EpisodesOfOptions,
} from './datasets/d4rl.ts';
export * from './models/index.ts';
export * from './models/critic.ts';
export * from './transitions.ts';
export * from './io/checkpoint.ts';
export { readSafetensors, writeSafetensors, SafetensorsError } from './io/safetensors.ts';
export { loadHfModel, hfTransformerConfig } from './models/hf.ts';
export { HfTokenizer } from './models/tokenizer.ts';
export * from './tasks/hierarchy/index.ts';
export * from './analysis/attention.ts';
export * from './tasks/text-rules.ts';
export * from './async/messages.ts';
export * from './async/transport.ts';
export { redisLearner, redisActor, type RedisActorOptions } from './async/redis.ts';
export { embeddedLearner, embeddedActor } from './async/embedded.ts';
