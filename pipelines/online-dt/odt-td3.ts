/**
 * `odt-td3` — ODT with TD3 gradients as a "vitamin" (Yan, Schwing & Wang, NeurIPS 2024, arXiv
 * 2410.24108): the `odt` pipeline (pipelines/online-dt/odt.ts) whose DT loss gains a critic term,
 *
 *   L(θ) = NLL − α·H  −  α_Q · (1/|M|) Σ_{(b,t)∈M} Q_θ1(ŝ_{b,t}, tanh μ_θ(·)_{b,t})
 *
 * over the real positions M of the update's K-windows (ã = the DT's mean action, ŝ the
 * normalised state). Q is a TD3 twin critic trained per iteration, before the DT update, with
 * td3Update's critic step (`td3CriticStep`, clipped double-Q, Polyak targets) on transitions of
 * the online trajectories in the replay buffer. The DT is the actor, so there is no target actor:
 * the next action a' of the target y = r + γ(1 − d) min_i Q'_i(ŝ', a' + ε) is the action the
 * rollout took at t + 1 (ε: TD3's clipped smoothing noise) — a SARSA-style target of the recent
 * behaviour policy, a documented simplification of the paper's target. The critic's Adam is
 * `PlainAdam` (lib/models/plain-adam.ts), whose moments are held in ParamStores, so the critic, its target and its moments are
 * checkpointed as plain state and a resumed run continues exactly.
 *
 * α_Q defaults to 0.1 (not found in the sources searched here; the paper tunes it per task).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { NonNegativeNumber, PositiveInt, PositiveIntAtMost, PositiveNumber, UnitInterval, decodeOrThrow, oneOf } from '../../lib/codec.ts';
import type { MetricsRecord, Trajectory } from '../../lib/data.ts';
import { TwinCritic, polyakUpdate } from '../../lib/models/critic.ts';
import { normalizeState } from '../../lib/models/dt-batch.ts';
import type { ParamRecord } from '../../lib/models/params.ts';
import { PlainAdam } from '../../lib/models/plain-adam.ts';
import { Rng, type RngState } from '../../lib/random.ts';
import type { Transitions } from '../../lib/transitions.ts';
import { sampleWindows } from '../../lib/datasets/windows.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { TD3_UPDATE_DEFAULTS, clippedDoubleQTarget, td3CriticStep } from '../../operators/td3Update.ts';
import type { ReplayBuffer } from '../../operators/replayBuffer.ts';
import { deepPartial, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext } from '../context.ts';
import { ODT_DEFAULTS, ODT_METRICS, ONLINE_DT_PROPS, checkOnlineDt, runOnlineDt, type OnlineDtExtension, type OnlineDtResult } from './odt.ts';
import type { PretrainedDt } from './pretrain.ts';

export const OdtTd3Config = t.strict(
  {
    pipeline: oneOf(['odt-td3']),
    ...ONLINE_DT_PROPS,
    td3: t.strict({
      /** α_Q: weight of −Q in the DT's loss. */
      alpha: NonNegativeNumber,
      gamma: UnitInterval,
      tau: UnitInterval,
      policyNoise: NonNegativeNumber,
      noiseClip: NonNegativeNumber,
      batchSize: PositiveInt,
      /** Critic steps per iteration (before the DT update). */
      criticSteps: PositiveInt,
      learningRate: PositiveNumber,
      hidden: t.array(PositiveIntAtMost(65536)),
    }),
  },
  'odt-td3',
);
export type OdtTd3Config = t.TypeOf<typeof OdtTd3Config>;
export const OdtTd3File = deepPartial(OdtTd3Config);

export const ODT_TD3_DEFAULTS: OdtTd3Config = {
  ...ODT_DEFAULTS,
  pipeline: 'odt-td3',
  td3: {
    alpha: 0.1,
    gamma: TD3_UPDATE_DEFAULTS.gamma,
    tau: TD3_UPDATE_DEFAULTS.tau,
    policyNoise: TD3_UPDATE_DEFAULTS.policyNoise,
    noiseClip: TD3_UPDATE_DEFAULTS.noiseClip,
    batchSize: 256,
    criticSteps: 20,
    learningRate: 3e-4,
    hidden: [256, 256],
  },
};

export const ODT_TD3_METRICS: readonly string[] = [...ODT_METRICS, 'td3/critic_loss', 'td3/q_mean', 'td3/critic_grad_norm', 'td3/updates', 'dt/q_term'];

export function resolveOdtTd3(partial: DeepPartial<OdtTd3Config> = {}): OdtTd3Config {
  return decodeOrThrow(OdtTd3Config, resolve(ODT_TD3_DEFAULTS, partial), 'odt-td3 config');
}

export function checkOdtTd3(cfg: OdtTd3Config): string[] {
  return checkOnlineDt(cfg, ODT_TD3_METRICS);
}

interface Td3Parts {
  critic: TwinCritic;
  target: TwinCritic;
  adam: PlainAdam;
  rng: Rng;
}

/** `n` transitions (normalised states) from the online trajectories, with the next step's action. */
function sampleTransitions(online: readonly Trajectory[], n: number, rng: Rng, norm: PretrainedDt['stateNorm']): { mb: Transitions; next: Float32Array } {
  const first = online[0]!;
  const S = first.obsDim;
  const A = first.actDim;
  const obs = new Float32Array(n * S);
  const nextObs = new Float32Array(n * S);
  const actions = new Float32Array(n * A);
  const next = new Float32Array(n * A);
  const rewards = new Float32Array(n);
  const dones = new Float32Array(n);
  sampleWindows(online, n, 1, rng).forEach((w, k) => {
    const tr = online[w.index]!;
    const s = w.start;
    const a = tr.actions as Float32Array;
    obs.set(normalizeState(tr.observations.subarray(s * S, (s + 1) * S), norm), k * S);
    nextObs.set(normalizeState(tr.observations.subarray((s + 1) * S, (s + 2) * S), norm), k * S);
    actions.set(a.subarray(s * A, (s + 1) * A), k * A);
    // a' = the action taken at t + 1 (at a cut trajectory's last step, the last action again).
    const t1 = Math.min(s + 1, tr.length - 1);
    next.set(a.subarray(t1 * A, (t1 + 1) * A), k * A);
    rewards[k] = tr.rewards[s]!;
    dones[k] = tr.terminated && s === tr.length - 1 ? 1 : 0;
  });
  return { mb: { n, obsDim: S, actDim: A, obs, actions, rewards, nextObs, dones } as Transitions, next };
}

function td3Extension(cfg: OdtTd3Config, pre: PretrainedDt): OnlineDtExtension {
  const c = cfg.td3;
  const { dt, stateNorm } = pre;
  const critic = new TwinCritic({ obsDim: dt.stateDim, actDim: dt.actDim, hidden: c.hidden, seed: (cfg.seed + 1) >>> 0 });
  const target = critic.cloneAsTarget();
  const parts: Td3Parts = { critic, target, adam: new PlainAdam(critic.params, c.learningRate), rng: new Rng(cfg.seed, 'odt-td3/critic') };
  let qTerm = 0;
  let qSteps = 0;
  const A = dt.actDim;
  return {
    loss: (dist, b) => {
      const B = b.batchSize;
      const K = b.length;
      const s = tf.reshape(tf.tensor3d(b.states, [B, K, dt.stateDim]), [B * K, dt.stateDim]) as tf.Tensor2D;
      const a = tf.reshape(tf.tanh(dist.mean), [B * K, A]) as tf.Tensor2D;
      const mask = tf.tensor1d(b.mask);
      const count = b.mask.reduce((x, y) => x + y, 0);
      const q = tf.div(tf.sum(tf.mul(critic.q(1, s, a), mask)), count) as tf.Scalar;
      qTerm += q.dataSync()[0]!;
      qSteps++;
      return tf.mul(q, -c.alpha) as tf.Scalar;
    },
    beforeUpdate: (buffer: ReplayBuffer): Record<string, number> => {
      qTerm = 0;
      qSteps = 0;
      const online = buffer.trajectories().filter((tr) => !tr.groupId.startsWith('offline/'));
      if (online.length === 0) return { 'td3/updates': 0 };
      let loss = 0;
      let qm = 0;
      let gn = 0;
      for (let k = 0; k < c.criticSteps; k++) {
        const { mb, next } = sampleTransitions(online, c.batchSize, parts.rng, stateNorm);
        for (let j = 0; j < next.length; j++) {
          const lim = c.noiseClip;
          const eps = Math.min(lim, Math.max(-lim, parts.rng.normal(0, c.policyNoise)));
          next[j] = Math.min(1, Math.max(-1, next[j]! + eps));
        }
        const st = tf.tidy(() =>
          td3CriticStep(critic, parts.adam, mb, clippedDoubleQTarget(target, mb, tf.tensor2d(next, [mb.n, A]), c.gamma), () => `at odt-td3 critic step ${k}`),
        );
        polyakUpdate(target.params, critic.params, c.tau);
        loss += st.criticLoss;
        qm += st.qMean;
        gn += st.criticGradNorm;
      }
      const n = c.criticSteps;
      return { 'td3/updates': n, 'td3/critic_loss': loss / n, 'td3/q_mean': qm / n, 'td3/critic_grad_norm': gn / n };
    },
    afterUpdate: (): Record<string, number> => (qSteps > 0 ? { 'dt/q_term': qTerm / qSteps } : {}),
    capture: () => ({
      critic: critic.params.toRecord(),
      target: target.params.toRecord(),
      ...parts.adam.state(),
      rng: parts.rng.state(),
    }),
    restore: (raw) => {
      const s = raw as {
        critic: Record<string, ParamRecord>;
        target: Record<string, ParamRecord>;
        m: Record<string, ParamRecord>;
        v: Record<string, ParamRecord>;
        t: number;
        rng: RngState;
      };
      if (typeof s !== 'object' || s === null || !s.critic || !s.target || !s.m || !s.v || typeof s.t !== 'number' || !s.rng)
        throw new Error('odt-td3: checkpoint state.extra: expected the critic, its target, Adam moments, t and rng');
      critic.params.load(s.critic);
      target.params.load(s.target);
      parts.adam.load(s);
      parts.rng.setState(s.rng);
    },
    dispose: () => {
      for (const x of [critic, target, parts.adam]) x.dispose();
    },
  };
}

/** Runs `odt-td3` (see the module doc); the DT is the caller's to dispose. */
export async function runOdtTd3(
  partial: DeepPartial<OdtTd3Config> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<OnlineDtResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveOdtTd3(rest);
  return runOnlineDt(cfg, sinks, ctx, (pre) => td3Extension(cfg, pre), stopWhen);
}
