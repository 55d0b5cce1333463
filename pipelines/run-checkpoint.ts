/**
 * A run's checkpoint: the pipeline's weights, optimizer slots and plain state in one safetensors
 * file (lib/io/checkpoint-codec.ts: checksum, verified before anything loads; the runner writes it
 * atomically with lib/io/checkpoint.ts, the browser playground offers its bytes as a download). The config
 * stored with it is the run's resolved config without `iterations` (a resumed run may extend
 * them), so loading into a run with any other config is refused, naming the first difference.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkpointBytes, type LoadCheckpointOptions, type SaveCheckpointOptions } from '../lib/io/checkpoint-codec.ts';
import { ParamStore } from '../lib/models/params.ts';
import type { CheckpointContent, CheckpointOptimizers, CheckpointParams } from './context.ts';

function identity(config: Record<string, unknown>): Record<string, unknown> {
  const { iterations: _ignored, ...rest } = config;
  return rest;
}

/** One store keeps its names (grpo-control's format); several become `<store>/<param>`. */
function weightsOf(params: CheckpointParams): ReadonlyMap<string, tf.Variable> {
  if (params instanceof ParamStore) return params.map;
  const out = new Map<string, tf.Variable>();
  for (const [store, ps] of Object.entries(params)) for (const [name, v] of ps.map) out.set(`${store}/${name}`, v);
  return out;
}

/** One optimizer is the checkpoint's `optimizer`; several are its named `optimizers`. */
function optimizersOf(optimizer: CheckpointOptimizers): { optimizer: tf.Optimizer } | { optimizers: Readonly<Record<string, tf.Optimizer>> } {
  return optimizer instanceof tf.Optimizer ? { optimizer } : { optimizers: optimizer };
}

/**
 * What a run's checkpoint holds: the weights, optimizer slots, the config without `iterations`, and
 * the plain state with the iteration.
 * @param config The run's resolved config.
 * @param c What the loop hands to `checkpoint.save`.
 * @returns The options of `saveCheckpoint` / `checkpointBytes`.
 */
export function runCheckpointOptions(config: Record<string, unknown>, c: CheckpointContent): SaveCheckpointOptions {
  return { params: weightsOf(c.params), ...optimizersOf(c.optimizer), config: identity(config), state: { ...c.state, iteration: c.iteration } };
}

/**
 * How a run's checkpoint is loaded back: into these weights and optimizers, refusing one written
 * for another config (`iterations` aside).
 * @param config The run's resolved config.
 * @param params The live weights.
 * @param optimizer The live optimizer(s).
 * @returns The options of `loadCheckpoint` / `loadCheckpointBytes`.
 */
export function runCheckpointLoadOptions(config: Record<string, unknown>, params: CheckpointParams, optimizer: CheckpointOptimizers): LoadCheckpointOptions {
  return { params: weightsOf(params), ...optimizersOf(optimizer), expectConfig: identity(config) };
}

/**
 * A run's checkpoint as the bytes of `checkpoint.safetensors` (what the runner writes to disk): the
 * browser playground's download, which `rxrl eval` reads.
 * @param config The run's resolved config.
 * @param c What the loop hands to `checkpoint.save`.
 * @returns The file's bytes.
 */
export function runCheckpointBytes(config: Record<string, unknown>, c: CheckpointContent): Promise<Uint8Array<ArrayBuffer>> {
  return checkpointBytes(runCheckpointOptions(config, c));
}
