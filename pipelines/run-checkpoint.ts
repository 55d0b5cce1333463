/**
 * A run's checkpoint: the pipeline's weights, optimizer slots and plain state in one safetensors
 * file (lib/io/checkpoint.ts: atomic write, checksum, verified before anything loads). The config
 * stored with it is the run's resolved config without `iterations` (a resumed run may extend
 * them), so loading into a run with any other config is refused, naming the first difference.
 */
import * as tf from '@tensorflow/tfjs-core';
import { saveCheckpoint, loadCheckpoint } from '../lib/io/checkpoint.ts';
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

export async function saveRunCheckpoint(path: string, config: Record<string, unknown>, c: CheckpointContent): Promise<void> {
  await saveCheckpoint(path, {
    params: weightsOf(c.params),
    ...optimizersOf(c.optimizer),
    config: identity(config),
    state: { ...c.state, iteration: c.iteration },
  });
}

export async function loadRunCheckpoint(
  path: string,
  config: Record<string, unknown>,
  params: CheckpointParams,
  optimizer: CheckpointOptimizers,
): Promise<Record<string, unknown>> {
  const { state } = await loadCheckpoint(path, { params: weightsOf(params), ...optimizersOf(optimizer), expectConfig: identity(config) });
  return state;
}
