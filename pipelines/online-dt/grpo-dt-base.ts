/**
 * The pretrained Decision Transformer `grpo-dt` starts from: a checkpoint `savePretrained` wrote
 * (`base.checkpoint`; the model's shape and the state normalisation come from it), or pretrained
 * in-process with the shared ODT recipe (`pretrainDt` on `dataset.path`). The dataset's episodes
 * that carry qpos/qvel are returned too (reset points).
 */
import { loadD4rl, episodesOf, type D4rlEpisode } from '../../lib/datasets/d4rl.ts';
import { DecisionTransformer } from '../../lib/models/decision-transformer.ts';
import type { StateNorm } from '../../lib/models/dt-batch.ts';
import { ConfigError, type DeepPartial } from '../config.ts';
import { loadPretrained, pretrainDt, type DtPretrainConfig } from './pretrain.ts';

type DatasetEpisode = D4rlEpisode & { readonly qpos: Float64Array; readonly qvel: Float64Array };

export interface BaseDt {
  readonly dt: DecisionTransformer;
  readonly stateNorm: StateNorm;
  /** Dataset episodes that carry qpos/qvel (empty without those keys). */
  readonly datasetEpisodes: readonly DatasetEpisode[];
  /** A fresh DT with the same config and weights (the frozen reference of the KL term). */
  copy(): DecisionTransformer;
}

/** The pretrained DT: the checkpoint's, or `pretrain` run on the dataset. */
export async function loadBaseDt(
  cfg: { seed: number; env: { id: string; options: Record<string, unknown> }; dataset: { path: string | null }; base: { checkpoint: string | null } },
  pretrain: Omit<DeepPartial<DtPretrainConfig>, 'dataset' | 'envId' | 'seed'>,
): Promise<BaseDt> {
  let pre: Awaited<ReturnType<typeof pretrainDt>>;
  if (cfg.base.checkpoint !== null) pre = await loadPretrained(cfg.base.checkpoint);
  else if (cfg.dataset.path !== null) pre = await pretrainDt({ ...pretrain, dataset: cfg.dataset.path, envId: cfg.env.id, seed: cfg.seed });
  else throw new ConfigError('dataset.path: needed to pretrain the DT when base.checkpoint is null');
  pre.learner.optimizer.dispose();
  const { dt } = pre;
  try {
    if (pre.config.envId !== cfg.env.id) throw new ConfigError(`base.checkpoint: a DT pretrained on ${pre.config.envId}, but env.id is ${cfg.env.id}`);
    const data = await loadD4rl(cfg.dataset.path ?? pre.config.dataset, { envId: cfg.env.id, envOptions: cfg.env.options });
    const episodes = episodesOf(data).filter((e): e is DatasetEpisode => e.qpos !== undefined && e.qvel !== undefined);
    const dtConfig = {
      stateDim: dt.stateDim,
      actDim: dt.actDim,
      contextLength: dt.contextLength,
      maxEpisodeSteps: dt.maxEpisodeSteps,
      core: { dModel: pre.config.model.dModel, nLayers: pre.config.model.nLayers, nHeads: pre.config.model.nHeads },
    };
    return {
      dt,
      stateNorm: pre.stateNorm,
      datasetEpisodes: episodes,
      copy: () => {
        const c = new DecisionTransformer(dtConfig);
        for (const [name, v] of dt.params.map) c.params.get(name).assign(v);
        return c;
      },
    };
  } catch (e) {
    dt.dispose();
    throw e;
  }
}
