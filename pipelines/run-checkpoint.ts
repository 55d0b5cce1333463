/**
 * A run's checkpoint: the pipeline's weights, optimizer slots and plain state in one safetensors
 * file (lib/io/checkpoint.ts: atomic write, checksum, verified before anything loads). The config
 * stored with it is the run's resolved config without `iterations` (a resumed run may extend
 * them), so loading into a run with any other config is refused, naming the first difference.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { saveCheckpoint, loadCheckpoint } from '../lib/io/checkpoint.ts';
import type { ParamStore } from '../lib/models/params.ts';
import type { CheckpointContent } from './context.ts';

function identity(config: Record<string, unknown>): Record<string, unknown> {
  const { iterations: _ignored, ...rest } = config;
  return rest;
}

export async function saveRunCheckpoint(path: string, config: Record<string, unknown>, c: CheckpointContent): Promise<void> {
  await saveCheckpoint(path, { params: c.params.map, optimizer: c.optimizer, config: identity(config), state: { ...c.state, iteration: c.iteration } });
}

export async function loadRunCheckpoint(
  path: string,
  config: Record<string, unknown>,
  params: ParamStore,
  optimizer: tf.Optimizer,
): Promise<Record<string, unknown>> {
  const { state } = await loadCheckpoint(path, { params: params.map, optimizer, expectConfig: identity(config) });
  return state;
}
