/**
 * Adam (Kingma & Ba 2015) whose moments live in `ParamStore`s beside the parameters they update,
 * so that its whole state — step count t, first and second moments m, v — is plain data
 * (`state()` / `load()`), checkpointed with a run's state and restored exactly. A tfjs optimizer
 * keeps its slots in its own variables, which the shared loop checkpoints only for the one
 * optimizer of a pipeline's main model; a second network (a critic next to a Decision Transformer)
 * takes this one.
 *
 *   t ← t + 1,  m ← β₁ m + (1 − β₁) g,  v ← β₂ v + (1 − β₂) g²,
 *   θ ← θ − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)            (β₁ 0.9, β₂ 0.999, ε 1e−8)
 *
 * ```ts
 * const adam = new PlainAdam(critic.params, 3e-4);
 * const { grads } = tf.variableGrads(() => loss(), critic.variables);
 * adam.applyGradients(grads);
 * const saved = adam.state();           // { t, m, v } of ParamRecords
 * adam.load(saved);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { Float32, NonNegativeInt } from '../codec.ts';
import { ParamStore, zeros, type ParamRecord } from './params.ts';

/** A `ParamStore.toRecord()` value: every parameter's shape and values, by name. */
export const ParamRecordsC = t.record(t.string, t.type({ shape: t.readonlyArray(NonNegativeInt), data: Float32 }), 'ParamRecords');

/** The optimizer's plain state: its step count and both moments. */
export const PlainAdamStateC = t.type({ t: NonNegativeInt, m: ParamRecordsC, v: ParamRecordsC }, 'PlainAdamState');
export type PlainAdamState = t.TypeOf<typeof PlainAdamStateC>;

/** A store with the names and shapes of `params`, every value 0 (not trainable). */
function zerosLike(params: ParamStore): ParamStore {
  const out = new ParamStore(0);
  for (const [name, v] of params.map) out.add(name, v.shape, zeros(), false);
  return out;
}

export class PlainAdam {
  /** Steps taken. */
  t = 0;
  readonly m: ParamStore;
  readonly v: ParamStore;
  private readonly byVar = new Map<string, string>();

  constructor(
    readonly params: ParamStore,
    readonly lr: number,
  ) {
    if (!(Number.isFinite(lr) && lr > 0)) throw new RangeError(`PlainAdam: lr must be a positive number, got ${lr}`);
    this.m = zerosLike(params);
    this.v = zerosLike(params);
    for (const [name, variable] of params.map) this.byVar.set(variable.name, name);
  }

  /** One step on gradients keyed by tfjs variable name (what `tf.variableGrads` returns). */
  applyGradients(grads: tf.NamedTensorMap): void {
    this.t++;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    tf.tidy(() => {
      for (const [vn, g] of Object.entries(grads)) {
        const name = this.byVar.get(vn);
        if (!name) throw new Error(`PlainAdam: a gradient for a variable outside its store (${vn})`);
        const m = this.m.get(name);
        const v = this.v.get(name);
        m.assign(tf.add(tf.mul(m, 0.9), tf.mul(g, 0.1)));
        v.assign(tf.add(tf.mul(v, 0.999), tf.mul(tf.square(g), 0.001)));
        const p = this.params.get(name);
        p.assign(tf.sub(p, tf.mul(this.lr / c1, tf.div(m, tf.add(tf.sqrt(tf.div(v, c2)), 1e-8)))));
      }
    });
  }

  /** Step count and moments as plain data. */
  state(): PlainAdamState {
    return { t: this.t, m: this.m.toRecord(), v: this.v.toRecord() };
  }

  /** Puts a saved state back; refuses moments of other names or shapes. */
  load(s: { t: number; m: Readonly<Record<string, ParamRecord>>; v: Readonly<Record<string, ParamRecord>> }): void {
    this.m.load(s.m);
    this.v.load(s.v);
    this.t = s.t;
  }

  /** Frees the moments (the parameters are their owner's). */
  dispose(): void {
    this.m.dispose();
    this.v.dispose();
  }
}
