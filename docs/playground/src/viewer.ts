/**
 * The viewer (inside the worker): plays one deterministic episode of the policy being trained, in
 * an env of its own, and returns what the page draws. It copies the live weights into a model of
 * its own between iterations, so training sees nothing of it: its env, its model and its random
 * numbers are separate (the page's metrics equal the CLI's with the viewer on).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { DeterministicActor, ParamStore, Rng, makeEnv, makeModel, policyActor, type Actor, type Env, type Space } from 'rxrl';
import { deterministicActor } from 'rxrl/operators';
import type { CheckpointParams } from 'rxrl/pipelines';
import type { Frames } from './protocol.ts';

/** At most this many steps per drawn episode. */
const MAX_STEPS = 1000;

export interface Viewer {
  /** One episode with the weights in `params` (the live ones: copied, never changed). */
  episode(params: CheckpointParams, version: number): Omit<Frames, 'envId'> & { envId: string };
  dispose(): void;
}

interface Model {
  readonly params: ParamStore;
  dispose(): void;
}

function storeOf(params: CheckpointParams, name?: string): ParamStore {
  if (params instanceof ParamStore) return params;
  const store = name === undefined ? undefined : params[name];
  if (store === undefined) throw new Error(`viewer: the run has no weights named ${name}`);
  return store;
}

/** Copies `from`'s variables into `to`'s (same names and shapes). */
function copyInto(to: ParamStore, from: ParamStore): void {
  for (const [name, v] of to.map) {
    const src: tf.Variable | undefined = from.map.get(name);
    if (src !== undefined) v.assign(src);
  }
}

/**
 * A viewer for a resolved config, or undefined for a pipeline it cannot draw.
 * @param pipeline The pipeline's name.
 * @param config Its resolved config.
 * @returns The viewer.
 */
export async function makeViewer(pipeline: string, config: Record<string, unknown>): Promise<Viewer | undefined> {
  const env = config['env'] as { id: string; options: Record<string, unknown> } | undefined;
  if (env === undefined) return undefined;
  const e: Env = await makeEnv(env.id, { ...env.options, seed: 7 });
  const obsDim = e.observationSpace.shape.reduce((a, b) => a * b, 1);
  const actionSpace: Space = e.actionSpace;
  let model: Model;
  let actor: Actor;
  let storeName: string | undefined;
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
  } else {
    e.close();
    return undefined;
  }
  const rng = new Rng(0, 'viewer');
  let episodes = 0;
  return {
    episode(params, version) {
      copyInto(model.params, storeOf(params, storeName));
      const side = typeof e.sideView === 'function';
      const frames: Float32Array[] = [];
      let obs = e.reset(1000 + episodes++).observation;
      let ret = 0;
      const draw = () => frames.push(side && e.sideView ? e.sideView() : Float32Array.from(obs));
      draw();
      for (let t = 0; t < Math.min(e.maxEpisodeSteps, MAX_STEPS); t++) {
        const { action } = actor.act(obs, 1, rng, true);
        const r = e.step(action instanceof Int32Array ? action[0]! : action);
        ret += r.reward;
        obs = r.observation;
        draw();
        if (r.terminated || r.truncated) break;
      }
      return { envId: e.id, kind: side ? 'side' : 'observation', frames, version, return: ret };
    },
    dispose() {
      e.close();
      model.dispose();
    },
  };
}
