/**
 * The pretrained Decision Transformer `grpo-dt` starts from: its model config, and its loading —
 * from a checkpoint (weights plus the state normalisation in the checkpoint's state, `stateMean`
 * / `stateStd`), or pretrained in-process on the dataset with the shared ODT recipe
 * (`pretrainDt`). The dataset's episodes are returned too (reset points, state statistics).
 */
import * as t from 'io-ts';
import { PositiveInt, PositiveIntAtMost } from '../../lib/codec.ts';
import { DecisionTransformer, type DecisionTransformerConfig } from '../../lib/models/decision-transformer.ts';
import type { StateNorm } from '../../lib/models/dt-batch.ts';
import { loadD4rl, episodesOf, type D4rlDataset, type D4rlEpisode } from '../../lib/datasets/d4rl.ts';
import { stateNormOf } from '../../lib/datasets/windows.ts';
import { ConfigError } from '../config.ts';

/** The DT's shape (ODT: width 512, 4 layers, 4 heads, K 20; scaled down for this machine). */
export const DtModelConfig = t.strict({
  dModel: PositiveIntAtMost(4096),
  nLayers: PositiveIntAtMost(64),
  nHeads: PositiveIntAtMost(64),
  /** K of training (ODT 20). */
  contextLength: PositiveInt,
  maxEpisodeSteps: PositiveInt,
});
export type DtModelConfig = t.TypeOf<typeof DtModelConfig>;

export const DT_MODEL_DEFAULTS: DtModelConfig = { dModel: 128, nLayers: 3, nHeads: 1, contextLength: 20, maxEpisodeSteps: 1000 };

/** A dataset episode with the arrays reset points need. */
type DatasetEpisode = D4rlEpisode & { readonly qpos: Float64Array; readonly qvel: Float64Array };

export interface BaseDt {
  readonly dt: DecisionTransformer;
  readonly stateNorm: StateNorm;
  /** Dataset episodes that carry qpos/qvel (empty without a dataset or without those keys). */
  readonly datasetEpisodes: readonly DatasetEpisode[];
  /** A fresh DT with the same config and weights (the frozen reference of the KL term). */
  copy(): DecisionTransformer;
}

function dtConfigOf(model: DtModelConfig, dims: { obsDim: number; actDim: number }, seed: number): DecisionTransformerConfig {
  return {
    stateDim: dims.obsDim,
    actDim: dims.actDim,
    contextLength: model.contextLength,
    maxEpisodeSteps: model.maxEpisodeSteps,
    core: { dModel: model.dModel, nLayers: model.nLayers, nHeads: model.nHeads },
    seed,
  };
}

/** The pretrained DT: the checkpoint's weights, or the ODT recipe run on the dataset. */
export async function loadBaseDt(
  cfg: { seed: number; env: { id: string; options: Record<string, unknown> }; dataset: { path: string | null }; base: { checkpoint: string | null }; model: DtModelConfig },
  dims: { obsDim: number; actDim: number },
  pretrain: (dt: DecisionTransformer, data: D4rlDataset, stateNorm: StateNorm) => Promise<void>,
): Promise<BaseDt> {
  const dtConfig = dtConfigOf(cfg.model, dims, cfg.seed);
  let episodes: D4rlEpisode[] = [];
  let stateNorm: StateNorm | undefined;
  let data: D4rlDataset | undefined;
  if (cfg.dataset.path !== null) {
    data = await loadD4rl(cfg.dataset.path, { envId: cfg.env.id, envOptions: cfg.env.options });
    episodes = episodesOf(data);
    if (episodes.length === 0) throw new ConfigError(`dataset.path: ${cfg.dataset.path} holds no complete episode`);
    stateNorm = stateNormOf(data);
  }
  const dt = new DecisionTransformer(dtConfig);
  try {
    if (cfg.base.checkpoint !== null) {
      const { loadCheckpoint } = await import('../../lib/io/checkpoint.ts');
      const { state } = await loadCheckpoint(cfg.base.checkpoint, { params: dt.params.map, strict: false });
      const mean = state['stateMean'];
      const std = state['stateStd'];
      if (mean instanceof Float32Array && std instanceof Float32Array) stateNorm = { mean, std };
      if (!stateNorm) throw new ConfigError(`base.checkpoint: ${cfg.base.checkpoint} holds no stateMean/stateStd, and there is no dataset.path to compute them from`);
    } else {
      if (!stateNorm || !data) throw new ConfigError('dataset.path: needed to pretrain the DT when base.checkpoint is null');
      await pretrain(dt, data, stateNorm);
    }
  } catch (e) {
    dt.dispose();
    throw e;
  }
  const norm = stateNorm;
  return {
    dt,
    stateNorm: norm,
    datasetEpisodes: episodes.filter((e): e is DatasetEpisode => e.qpos !== undefined && e.qvel !== undefined),
    copy: () => {
      const c = new DecisionTransformer(dtConfig);
      for (const [name, v] of dt.params.map) c.params.get(name).assign(v);
      return c;
    },
  };
}
