/**
 * The viewers (inside the worker): what the page shows of the policy being trained, computed with a
 * model of their own into which the live weights are copied between iterations, so training sees
 * nothing of it: their envs, models and random numbers are separate (the page's metrics equal the
 * CLI's with a viewer on).
 *
 *  - an episode (grpo-control, td3 and the Decision Transformer pipelines): one deterministic episode
 *    in an env of its own, as the pipeline's evaluation acts (a DT conditioned on its evaluation
 *    return-to-go, with the dataset's state normalisation), drawn by the page frame by frame;
 *  - samples (the HIPO family on the synthetic suite): completions of the policy to a few held-out
 *    prompts, sampled as the rollouts sample, with the verifier's scores (src/samples.ts).
 */
import type * as tf from '@tensorflow/tfjs-core';
import {
  DecisionTransformer,
  DeterministicActor,
  ParamStore,
  Rng,
  dtActor,
  loadD4rl,
  makeEnv,
  makeModel,
  policyActor,
  stateNormOf,
  type Actor,
  type Env,
  type Space,
} from 'rxrl';
import { deterministicActor } from 'rxrl/operators';
import type { CheckpointParams } from 'rxrl/pipelines';
import type { FromWorker } from './protocol.ts';
import { samplesViewer } from './samples.ts';

/** At most this many steps per drawn episode. */
const MAX_STEPS = 1000;

/** The pipelines whose viewer shows sampled completions. */
const TEXT_PIPELINES = ['sft', 'hipo', 'grpo-lm', 'rft', 'dpo'];

export interface Viewer {
  /** What the page shows of the weights in `params` (the live ones: copied, never changed), and what to transfer. */
  view(params: CheckpointParams, version: number): { message: FromWorker; transfer: Transferable[] };
  dispose(): void;
}

interface Model {
  readonly params: ParamStore;
  dispose(): void;
}

/** The weights of `params` a viewer copies (a pipeline with several stores names one). */
export function storeOf(params: CheckpointParams, name?: string): ParamStore {
  if (params instanceof ParamStore) return params;
  const store = name === undefined ? undefined : params[name];
  if (store === undefined) throw new Error(`viewer: the run has no weights named ${name}`);
  return store;
}

/** Copies `from`'s variables into `to`'s (same names and shapes). */
export function copyInto(to: ParamStore, from: ParamStore): void {
  for (const [name, v] of to.map) {
    const src: tf.Variable | undefined = from.map.get(name);
    if (src !== undefined) v.assign(src);
  }
}

type Section = Record<string, unknown>;
const section = (config: Record<string, unknown>, key: string): Section => (config[key] ?? {}) as Section;

/** The DT of a Decision Transformer pipeline's config, and how its evaluation acts. */
function dtOf(pipeline: string, config: Record<string, unknown>) {
  if (pipeline === 'grpo-dt') {
    const a = section(config, 'algorithm');
    return {
      model: section(section(config, 'pretrain'), 'model'),
      dataset: section(config, 'dataset')['path'] as string,
      scale: a['rtgScale'] as number,
      contextLength: a['contextLength'] as number,
      targetReturn: a['targetReturn'] as number,
    };
  }
  const online = section(config, 'online');
  return {
    model: section(config, 'model'),
    dataset: section(config, 'data')['path'] as string,
    scale: section(config, 'update')['rtgScale'] as number,
    contextLength: online['contextLength'] as number,
    targetReturn: online['targetReturn'] as number,
  };
}

/**
 * A viewer for a resolved config, or undefined for a pipeline it cannot show.
 * @param pipeline The pipeline's name.
 * @param config Its resolved config.
 * @returns The viewer.
 */
export async function makeViewer(pipeline: string, config: Record<string, unknown>): Promise<Viewer | undefined> {
  if (TEXT_PIPELINES.includes(pipeline)) return samplesViewer(config);
  const env = config['env'] as { id: string; options: Record<string, unknown> } | undefined;
  if (env === undefined) return undefined;
  const e: Env = await makeEnv(env.id, { ...env.options, seed: 7 });
  const obsDim = e.observationSpace.shape.reduce((a, b) => a * b, 1);
  const actionSpace: Space = e.actionSpace;
  let model: Model;
  let actor: Actor;
  let storeName: string | undefined;
  try {
    if (pipeline === 'grpo-control') {
      const p = config['policy'] as { kind: 'mlp'; hidden: number[]; activation: 'tanh' | 'relu' };
      const policy = makeModel(p.kind, { obsDim, actionSpace, hidden: p.hidden, activation: p.activation, seed: 0 });
      model = policy;
      actor = policyActor(policy, () => 0, true);
    } else if (pipeline === 'td3' && actionSpace.kind === 'box') {
      const n = config['networks'] as { hidden: number[] };
      const a = new DeterministicActor({ obsDim, low: actionSpace.low, high: actionSpace.high, hidden: n.hidden });
      model = a;
      actor = deterministicActor(a, () => 0);
      storeName = 'actor';
    } else if ((pipeline === 'grpo-dt' || pipeline === 'odt' || pipeline === 'odt-td3') && actionSpace.kind === 'box') {
      const d = dtOf(pipeline, config);
      // The pipeline's state normalisation: the dataset's (the viewer reads the same provided file).
      const stateNorm = stateNormOf(await loadD4rl(d.dataset, { envId: env.id }));
      const m = d.model as { dModel: number; nLayers: number; nHeads: number; contextLength: number; maxEpisodeSteps: number };
      const dt = new DecisionTransformer({
        stateDim: obsDim,
        actDim: actionSpace.shape.reduce((a, b) => a * b, 1),
        contextLength: m.contextLength,
        maxEpisodeSteps: m.maxEpisodeSteps,
        core: { dModel: m.dModel, nLayers: m.nLayers, nHeads: m.nHeads },
        seed: 0,
      });
      model = dt;
      actor = dtActor(dt, { scale: d.scale, contextLength: d.contextLength, stateNorm, targetReturn: d.targetReturn, version: () => 0 });
    } else {
      e.close();
      return undefined;
    }
  } catch (err) {
    e.close();
    throw err;
  }
  const rng = new Rng(0, 'viewer');
  let episodes = 0;
  return {
    view(params, version) {
      copyInto(model.params, storeOf(params, storeName));
      const side = typeof e.sideView === 'function';
      const frames: Float32Array[] = [];
      const seed = 1000 + episodes++;
      let obs = e.reset(seed).observation;
      actor.begin?.(1, { kind: 'seed', envId: e.id, seed });
      let ret = 0;
      const draw = () => frames.push(side && e.sideView ? e.sideView() : Float32Array.from(obs));
      draw();
      for (let t = 0; t < Math.min(e.maxEpisodeSteps, MAX_STEPS); t++) {
        const { action } = actor.act(obs, 1, rng, true);
        const r = e.step(action instanceof Int32Array ? action[0]! : action);
        ret += r.reward;
        obs = r.observation;
        actor.observe?.(Float64Array.of(r.reward), obs);
        draw();
        if (r.terminated || r.truncated) break;
      }
      return {
        message: { type: 'frames', envId: e.id, kind: side ? 'side' : 'observation', frames, version, return: ret },
        transfer: frames.map((x) => x.buffer as ArrayBuffer),
      };
    },
    dispose() {
      e.close();
      model.dispose();
    },
  };
}
