/**
 * rxrl — reinforcement-learning training as composable RxJS streams on tfjs tensors.
 *
 * The core (lib/core.ts: backends, seeded randomness, the data model, environments, models,
 * D4RL datasets, checkpoints as bytes) plus, under Node, files on disk: checkpoint and safetensors
 * files, writing D4RL HDF5 datasets, Hugging Face model folders. Operators live in `rxrl/operators`, pipelines in
 * `rxrl/pipelines`. A bundler targeting browsers resolves `rxrl` to lib/core.ts instead
 * (package.json `exports`, condition `browser`).
 */
export * from './core.ts';
export { writeD4rl } from './datasets/d4rl.ts';
export { saveCheckpoint, readCheckpoint, loadCheckpoint, readCheckpointFile } from './io/checkpoint.ts';
export { readSafetensors, writeSafetensors } from './io/safetensors.ts';
export { loadHfModel, hfTransformerConfig } from './models/hf.ts';
export { HfTokenizer } from './models/tokenizer.ts';
export * from './async/messages.ts';
export { configHash } from './async/config-hash.ts';
export * from './async/transport.ts';
export { redisLearner, redisActor, type RedisActorOptions } from './async/redis.ts';
export { embeddedLearner, embeddedActor } from './async/embedded.ts';
