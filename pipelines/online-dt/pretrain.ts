/**
 * Offline pretraining of a Decision Transformer with ODT's recipe (Zheng, Zhang & Grover 2022),
 * shared by the online-DT methods of one task and seed (ODT, ODT+TD3, GRPO-DT):
 *
 *   dataset (D4RL HDF5) → complete episodes with achieved returns-to-go → state mean/std
 *   → `steps` optimizer steps of `dtSupervisedUpdate` (K = 20 windows, R̂/1000, NLL − α·H)
 *
 * `pretrainDt(config)` returns the DT, its state normalisation, the learner (optimizer,
 * temperature) and the offline trajectories; `savePretrained` / `loadPretrained` keep the result
 * in one safetensors checkpoint (lib/io/checkpoint.ts) whose config is the pretraining config,
 * so a second method of the same task and seed loads it instead of pretraining again.
 *
 * ```ts
 * const pre = await pretrainDt({ dataset: 'data/hopper-medium-v2.hdf5', envId: 'Hopper-v4', steps: 2000, seed: 1 });
 * await savePretrained('runs/hopper-s1/pretrained.safetensors', pre);
 * const again = await loadPretrained('runs/hopper-s1/pretrained.safetensors');
 * ```
 */
import * as t from 'io-ts';
import { NonNegativeInt, PositiveInt, Uint32, decodeOrThrow } from '../../lib/codec.ts';
import type { Trajectory } from '../../lib/data.ts';
import { loadD4rl } from '../../lib/datasets/d4rl.ts';
import { d4rlTrajectories, stateNormOf } from '../../lib/datasets/windows.ts';
import { CheckpointError, loadCheckpointBytes, readCheckpointBytes } from '../../lib/io/checkpoint-codec.ts';
import { readCheckpointFile, saveCheckpoint } from '#platform/files';
import { DecisionTransformer } from '../../lib/models/decision-transformer.ts';
import type { StateNorm } from '../../lib/models/dt-batch.ts';
import { DT_SUPERVISED_UPDATE_DEFAULTS, DtSupervisedUpdateProps, type DtLearner, dtLearner, dtSupervisedStep } from '../../operators/dtSupervisedUpdate.ts';
import { resolve, type DeepPartial } from '../config.ts';

/** The DT's size (default small: width 128, 3 layers, 1 head; ODT's is 512 × 4 × 4). */
export const DtModelConfig = t.strict(
  { dModel: PositiveInt, nLayers: PositiveInt, nHeads: PositiveInt, contextLength: PositiveInt, maxEpisodeSteps: PositiveInt },
  'model',
);
export type DtModelConfig = t.TypeOf<typeof DtModelConfig>;

/** Everything that determines a pretrained DT (also the checkpoint's config: a mismatch refuses to load). */
export const DtPretrainConfig = t.strict(
  {
    /** D4RL-layout HDF5 file. */
    dataset: t.string,
    /** The env the dataset was collected in (observation/action sizes are checked against it). */
    envId: t.string,
    seed: Uint32,
    model: DtModelConfig,
    /** Optimizer steps of offline pretraining (ODT: 10⁵ on MuJoCo). */
    steps: NonNegativeInt,
    update: t.strict({
      batchSize: DtSupervisedUpdateProps.batchSize,
      learningRate: DtSupervisedUpdateProps.learningRate,
      weightDecay: DtSupervisedUpdateProps.weightDecay,
      warmupSteps: DtSupervisedUpdateProps.warmupSteps,
      maxGradNorm: DtSupervisedUpdateProps.maxGradNorm,
      rtgScale: DtSupervisedUpdateProps.rtgScale,
      temperatureLearningRate: DtSupervisedUpdateProps.temperatureLearningRate,
      targetEntropy: DtSupervisedUpdateProps.targetEntropy,
    }),
  },
  'dtPretrain',
);
export type DtPretrainConfig = t.TypeOf<typeof DtPretrainConfig>;

const { steps: _s, contextLength: _k, ...UPDATE_DEFAULTS } = DT_SUPERVISED_UPDATE_DEFAULTS;

export const DT_PRETRAIN_DEFAULTS: DtPretrainConfig = {
  dataset: 'test/data/hopper-tiny.hdf5',
  envId: 'Hopper-v4',
  seed: 0,
  model: { dModel: 128, nLayers: 3, nHeads: 1, contextLength: 20, maxEpisodeSteps: 1000 },
  steps: 1000,
  update: UPDATE_DEFAULTS,
};

export interface PretrainedDt {
  readonly config: DtPretrainConfig;
  readonly dt: DecisionTransformer;
  readonly stateNorm: StateNorm;
  /** The offline episodes (targets: achieved returns-to-go, raw). */
  readonly trajectories: Trajectory[];
  /** Per-step metrics of the last pretraining step (empty when loaded or with 0 steps). */
  readonly metrics: Readonly<Record<string, number>>;
  /** The learner (optimizer, temperature): continue with it online. */
  readonly learner: DtLearner;
}

function makeDt(cfg: DtPretrainConfig, stateDim: number, actDim: number): DecisionTransformer {
  const m = cfg.model;
  return new DecisionTransformer({
    stateDim,
    actDim,
    contextLength: m.contextLength,
    maxEpisodeSteps: m.maxEpisodeSteps,
    core: { dModel: m.dModel, nLayers: m.nLayers, nHeads: m.nHeads },
    seed: cfg.seed,
  });
}

export function resolveDtPretrain(partial: DeepPartial<DtPretrainConfig> = {}): DtPretrainConfig {
  return decodeOrThrow(DtPretrainConfig, resolve(DT_PRETRAIN_DEFAULTS, partial), 'dtPretrain config');
}

async function offline(cfg: DtPretrainConfig): Promise<{ trajectories: Trajectory[]; stateNorm: StateNorm; obsDim: number; actDim: number }> {
  const data = await loadD4rl(cfg.dataset, { envId: cfg.envId });
  const trajectories = d4rlTrajectories(data, cfg.envId);
  if (trajectories.length === 0) throw new RangeError(`${cfg.dataset}: no complete episode (no terminals or timeouts flag set)`);
  return { trajectories, stateNorm: stateNormOf(data), obsDim: data.obsDim, actDim: data.actDim };
}

/** Pretrains a DT offline (see the module doc); `onStep` sees every step's metrics. */
export async function pretrainDt(
  partial: DeepPartial<DtPretrainConfig> = {},
  onStep?: (step: number, m: { 'dt/nll': number; 'dt/entropy': number; 'dt/temperature': number; grad_norm: number }) => void,
): Promise<PretrainedDt> {
  const cfg = resolveDtPretrain(partial);
  const { trajectories, stateNorm, obsDim, actDim } = await offline(cfg);
  const dt = makeDt(cfg, obsDim, actDim);
  const learner = dtLearner(dt, { seed: cfg.seed });
  const upd = { ...cfg.update, steps: 1, contextLength: cfg.model.contextLength };
  let metrics: Record<string, number> = {};
  for (let k = 0; k < cfg.steps; k++) {
    const r = dtSupervisedStep(learner, trajectories, upd, stateNorm);
    const step = { 'dt/nll': r.nll, 'dt/entropy': r.entropy, 'dt/temperature': Math.exp(learner.logTemperature), grad_norm: r.gradNorm };
    metrics = step;
    onStep?.(k, step);
  }
  if (cfg.steps > 0) learner.version++;
  return { config: cfg, dt, stateNorm, trajectories, metrics, learner };
}

/** Writes the pretrained DT (weights, optimizer slots, temperature, state norm) to one safetensors file. */
export async function savePretrained(path: string, pre: PretrainedDt): Promise<void> {
  const l = pre.learner;
  await saveCheckpoint(path, {
    params: pre.dt.params.map,
    optimizer: l.optimizer,
    config: pre.config,
    state: {
      stateMean: pre.stateNorm.mean,
      stateStd: pre.stateNorm.std,
      logTemperature: l.logTemperature,
      temperatureAdam: l.temperatureAdam,
      step: l.step,
      version: l.version,
    },
  });
}

const SavedState = t.type({
  stateMean: t.unknown,
  stateStd: t.unknown,
  logTemperature: t.number,
  temperatureAdam: t.type({ m: t.number, v: t.number, t: t.number }),
  step: t.number,
  version: t.number,
});

/**
 * Loads a pretrained DT written by `savePretrained`. With `expect`, a checkpoint pretrained with
 * another config (dataset, env, seed, size, steps, update) is refused, naming the difference.
 */
export async function loadPretrained(path: string, expect?: DtPretrainConfig): Promise<PretrainedDt> {
  const bytes = await readCheckpointFile(path);
  const head = await readCheckpointBytes(bytes, { label: path, ...(expect ? { expectConfig: expect } : {}) });
  const cfg = decodeOrThrow(DtPretrainConfig, head.config, `${path}: config`);
  const { trajectories, obsDim, actDim } = await offline(cfg);
  const dt = makeDt(cfg, obsDim, actDim);
  const learner = dtLearner(dt, { seed: cfg.seed });
  try {
    const { state } = await loadCheckpointBytes(bytes, { params: dt.params.map, optimizer: learner.optimizer, expectConfig: cfg, label: path });
    const s = decodeOrThrow(SavedState, state, `${path}: state`);
    if (!(s.stateMean instanceof Float32Array) || !(s.stateStd instanceof Float32Array) || s.stateMean.length !== obsDim || s.stateStd.length !== obsDim) {
      throw new CheckpointError(path, `state.stateMean/stateStd: expected float32 arrays of length ${obsDim}`);
    }
    learner.logTemperature = s.logTemperature;
    learner.temperatureAdam = { ...s.temperatureAdam };
    learner.step = s.step;
    learner.version = s.version;
    return { config: cfg, dt, stateNorm: { mean: s.stateMean, std: s.stateStd }, trajectories, metrics: {}, learner };
  } catch (e) {
    dt.dispose();
    learner.optimizer.dispose();
    throw e;
  }
}
