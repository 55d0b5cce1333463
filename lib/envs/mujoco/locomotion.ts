/**
 * The Gymnasium v4 MuJoCo locomotion tasks — Hopper, HalfCheetah, Walker2d — on MuJoCo's
 * WebAssembly build.
 *
 * One class, `LocomotionEnv`, runs all three; a `TaskSpec` holds what differs (frame skip,
 * velocity clipping, the healthy test, the reset noise, the option names and defaults). What a
 * step does, after Gymnasium's `*_v4.py`:
 *
 *   x₀ = qpos[0];  ctrl ← a;  frame_skip × mj_step;  mj_rnePostConstraint;  x₁ = qpos[0]
 *   v = (x₁ − x₀) / dt,  dt = timestep · frame_skip
 *   reward = (w_fwd · v + h) − w_ctrl · Σ a²          (h = healthy_reward for Hopper/Walker2d:
 *                                                     paid every step, the terminating one too,
 *                                                     unless terminate_when_unhealthy is false
 *                                                     and the robot is unhealthy)
 *   terminated = terminate_when_unhealthy ∧ ¬healthy  (HalfCheetah: never)
 *   truncated  = elapsed steps ≥ maxEpisodeSteps
 *
 * The control cost uses the action as passed in; MuJoCo clamps `ctrl` to [−1, 1] itself.
 * Observations: qpos[1:] (or all of qpos with `exclude_current_positions_from_observation:
 * false`) then qvel, clipped to ±10 for Hopper and Walker2d, as float32.
 *
 * Reset: `mj_resetData`, qpos = qpos0 + U(−s, s), qvel = U(−s, s) (HalfCheetah: s·N(0, 1)),
 * drawn from the env's own generator (qpos first, then qvel), then `mj_forward`.
 *
 * Snapshots hold `[time, qpos(nq), qvel(nv), act(na), qacc_warmstart(nv), ctrl(nu)]` in float64:
 * everything `mj_step` reads (applied forces and mocap are never used here), so a restored env
 * continues bit-identically.
 *
 * ```ts
 * const env = await makeMujocoEnv('Hopper-v4', { seed: 0 });
 * let { observation } = env.reset(1);
 * const { reward, terminated } = env.step([0.1, -0.3, 0.2]);
 * env.close();
 * ```
 */
import type { MjData, MjModel } from 'mujoco-js';
import { Rng } from '../../random.ts';
import {
  boxSpace,
  checkBoxAction,
  checkSnapshot,
  EnvStateError,
  noEpisodeError,
  type Action,
  type BoxSpace,
  type Env,
  type EnvOptions,
  type EnvSnapshot,
  type Info,
  type ResetResult,
  type StepResult,
} from '../types.ts';
import type { MujocoEnvId, MujocoModule } from './loader.ts';

/** The generator key: `reset(seed)` ≡ a fresh `new Rng(seed, ENV_RNG_KEY)`. */
export const ENV_RNG_KEY = 'env/reset';

type OptionKind = 'number' | 'nonnegative' | 'boolean' | 'range';
type OptionValue = number | boolean | readonly [number, number];

/** What differs between the three tasks. */
export interface TaskSpec {
  readonly id: MujocoEnvId;
  readonly frameSkip: number;
  readonly registeredMaxSteps: number;
  /** Clip qvel to ±10 in the observation. */
  readonly clipVelocity: boolean;
  /** Which healthy test (and so the healthy reward and termination) applies. */
  readonly health: 'hopper' | 'walker2d' | 'none';
  /** Distribution of the qvel reset noise (qpos noise is always uniform). */
  readonly velocityNoise: 'uniform' | 'normal';
  /** Report `reward_run` / `reward_ctrl` in `info` (HalfCheetah). */
  readonly rewardInfo: boolean;
  /** The v4 constructor kwargs: kind and default. */
  readonly options: Readonly<Record<string, { readonly kind: OptionKind; readonly default: OptionValue }>>;
}

const INF = Number.POSITIVE_INFINITY;

export const TASKS: Readonly<Record<MujocoEnvId, TaskSpec>> = {
  'Hopper-v4': {
    id: 'Hopper-v4',
    frameSkip: 4,
    registeredMaxSteps: 1000,
    clipVelocity: true,
    health: 'hopper',
    velocityNoise: 'uniform',
    rewardInfo: false,
    options: {
      forward_reward_weight: { kind: 'number', default: 1.0 },
      ctrl_cost_weight: { kind: 'number', default: 1e-3 },
      healthy_reward: { kind: 'number', default: 1.0 },
      terminate_when_unhealthy: { kind: 'boolean', default: true },
      healthy_state_range: { kind: 'range', default: [-100.0, 100.0] },
      healthy_z_range: { kind: 'range', default: [0.7, INF] },
      healthy_angle_range: { kind: 'range', default: [-0.2, 0.2] },
      reset_noise_scale: { kind: 'nonnegative', default: 5e-3 },
      exclude_current_positions_from_observation: { kind: 'boolean', default: true },
    },
  },
  'HalfCheetah-v4': {
    id: 'HalfCheetah-v4',
    frameSkip: 5,
    registeredMaxSteps: 1000,
    clipVelocity: false,
    health: 'none',
    velocityNoise: 'normal',
    rewardInfo: true,
    options: {
      forward_reward_weight: { kind: 'number', default: 1.0 },
      ctrl_cost_weight: { kind: 'number', default: 0.1 },
      reset_noise_scale: { kind: 'nonnegative', default: 0.1 },
      exclude_current_positions_from_observation: { kind: 'boolean', default: true },
    },
  },
  'Walker2d-v4': {
    id: 'Walker2d-v4',
    frameSkip: 4,
    registeredMaxSteps: 1000,
    clipVelocity: true,
    health: 'walker2d',
    velocityNoise: 'uniform',
    rewardInfo: false,
    options: {
      forward_reward_weight: { kind: 'number', default: 1.0 },
      ctrl_cost_weight: { kind: 'number', default: 1e-3 },
      healthy_reward: { kind: 'number', default: 1.0 },
      terminate_when_unhealthy: { kind: 'boolean', default: true },
      healthy_z_range: { kind: 'range', default: [0.8, 2.0] },
      healthy_angle_range: { kind: 'range', default: [-1.0, 1.0] },
      reset_noise_scale: { kind: 'nonnegative', default: 5e-3 },
      exclude_current_positions_from_observation: { kind: 'boolean', default: true },
    },
  },
};

/** Parsed task parameters, every v4 kwarg filled in. */
interface Params {
  seed: number;
  maxEpisodeSteps: number;
  forwardRewardWeight: number;
  ctrlCostWeight: number;
  healthyReward: number;
  terminateWhenUnhealthy: boolean;
  stateRange: readonly [number, number];
  zRange: readonly [number, number];
  angleRange: readonly [number, number];
  resetNoiseScale: number;
  excludePositions: boolean;
}

function parseValue(envId: string, key: string, kind: OptionKind, value: unknown): OptionValue {
  switch (kind) {
    case 'number':
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      throw new RangeError(`${envId}: option ${key} must be a finite number, got ${String(value)}`);
    case 'nonnegative':
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
      throw new RangeError(`${envId}: option ${key} must be a finite number >= 0, got ${String(value)}`);
    case 'boolean':
      if (typeof value === 'boolean') return value;
      throw new TypeError(`${envId}: option ${key} must be a boolean, got ${String(value)}`);
    case 'range': {
      if (
        Array.isArray(value) &&
        value.length === 2 &&
        value.every((v) => typeof v === 'number' && !Number.isNaN(v)) &&
        (value[0] as number) <= (value[1] as number)
      ) {
        return [value[0] as number, value[1] as number];
      }
      throw new RangeError(`${envId}: option ${key} must be a pair [low, high] of numbers (±Infinity allowed) with low <= high, got ${JSON.stringify(value)}`);
    }
  }
}

export function parseParams(spec: TaskSpec, options: EnvOptions): Params {
  const envId = spec.id;
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${envId}: options must be an object, got ${String(options)}`);
  }
  const valid = ['seed', 'maxEpisodeSteps', ...Object.keys(spec.options)];
  const values: Record<string, OptionValue> = {};
  for (const [key, o] of Object.entries(spec.options)) values[key] = o.default;
  for (const [key, value] of Object.entries(options)) {
    if (!valid.includes(key)) {
      throw new TypeError(`${envId}: unknown option "${key}"; valid options are ${valid.join(', ')}`);
    }
    if (value === undefined || key === 'seed' || key === 'maxEpisodeSteps') continue;
    values[key] = parseValue(envId, key, spec.options[key]!.kind, value);
  }
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`${envId}: option seed must be an integer in [0, 2^32), got ${String(seed)}`);
  }
  const max = options.maxEpisodeSteps ?? spec.registeredMaxSteps;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
    throw new RangeError(`${envId}: option maxEpisodeSteps must be a positive integer, got ${String(max)}`);
  }
  const num = (k: string, fallback: number): number => (values[k] as number | undefined) ?? fallback;
  const range = (k: string): readonly [number, number] => (values[k] as readonly [number, number] | undefined) ?? [-INF, INF];
  return {
    seed,
    maxEpisodeSteps: max,
    forwardRewardWeight: num('forward_reward_weight', 1),
    ctrlCostWeight: num('ctrl_cost_weight', 0),
    healthyReward: num('healthy_reward', 0),
    terminateWhenUnhealthy: (values['terminate_when_unhealthy'] as boolean | undefined) ?? false,
    stateRange: range('healthy_state_range'),
    zRange: range('healthy_z_range'),
    angleRange: range('healthy_angle_range'),
    resetNoiseScale: num('reset_noise_scale', 0),
    excludePositions: (values['exclude_current_positions_from_observation'] as boolean | undefined) ?? true,
  };
}

/** MuJoCo's mjtGeom values drawn by `sideView`. */
const GEOM_SPHERE = 2;
const GEOM_CAPSULE = 3;
const GEOM_CYLINDER = 5;

/** Frees an env's MjData if the env is garbage-collected without `close()`. */
const finalizer = new FinalizationRegistry<MjData>((data) => {
  if (!data.isDeleted()) data.delete();
});

export class LocomotionEnv implements Env {
  readonly id: MujocoEnvId;
  readonly observationSpace: BoxSpace;
  readonly actionSpace: BoxSpace;
  readonly maxEpisodeSteps: number;

  private readonly nq: number;
  private readonly nv: number;
  private readonly na: number;
  private readonly nu: number;
  private readonly dt: number;
  private readonly obsDim: number;
  private readonly obsOffset: number;
  private readonly stateSize: number;
  private readonly params: Params;

  private data: MjData;
  // Views of the wasm memory; re-made if the memory grows (old views are then detached).
  private qpos!: Float64Array;
  private qvel!: Float64Array;
  private act!: Float64Array;
  private warmstart!: Float64Array;
  private ctrl!: Float64Array;

  private rng: Rng;
  private elapsedSteps = 0;
  /** True before the first reset and once an episode ended. */
  private done = true;
  private closed = false;

  constructor(
    private readonly mujoco: MujocoModule,
    private readonly model: MjModel,
    private readonly spec: TaskSpec,
    options: EnvOptions = {},
  ) {
    this.id = spec.id;
    this.params = parseParams(spec, options);
    this.maxEpisodeSteps = this.params.maxEpisodeSteps;
    this.rng = new Rng(this.params.seed, ENV_RNG_KEY);
    this.nq = model.nq;
    this.nv = model.nv;
    this.na = model.na;
    this.nu = model.nu;
    this.dt = model.opt.timestep * spec.frameSkip;
    this.obsOffset = this.params.excludePositions ? 1 : 0;
    this.obsDim = this.nq - this.obsOffset + this.nv;
    this.stateSize = 1 + this.nq + 2 * this.nv + this.na + this.nu;
    this.observationSpace = boxSpace(new Array<number>(this.obsDim).fill(-INF), new Array<number>(this.obsDim).fill(INF));
    const cr = model.actuator_ctrlrange as Float64Array;
    const low: number[] = [];
    const high: number[] = [];
    for (let i = 0; i < this.nu; i++) {
      low.push(cr[2 * i]!);
      high.push(cr[2 * i + 1]!);
    }
    this.actionSpace = boxSpace(low, high);
    this.data = new mujoco.MjData(model);
    finalizer.register(this, this.data, this);
    this.refreshViews();
  }

  private refreshViews(): void {
    const d = this.data;
    this.qpos = d.qpos as Float64Array;
    this.qvel = d.qvel as Float64Array;
    this.act = d.act as Float64Array;
    this.warmstart = d.qacc_warmstart as Float64Array;
    this.ctrl = d.ctrl as Float64Array;
  }

  /**
   * The pose from the side (see `Env.sideView`): each capsule geom as its two end points in the
   * x–z plane and its radius (a sphere is a capsule of length 0; the floor plane is left out).
   * Positions are recomputed from `qpos` (mj_kinematics), so they are those of the current state.
   */
  sideView(): Float32Array {
    this.checkOpen();
    const m = this.model;
    this.mujoco.mj_kinematics(m, this.data);
    const type = m.geom_type as Int32Array;
    const size = m.geom_size as Float64Array;
    const pos = this.data.geom_xpos as Float64Array;
    const mat = this.data.geom_xmat as Float64Array;
    const out: number[] = [];
    for (let g = 0; g < m.ngeom; g++) {
      const kind = type[g]!;
      if (kind !== GEOM_CAPSULE && kind !== GEOM_SPHERE && kind !== GEOM_CYLINDER) continue;
      const half = kind === GEOM_SPHERE ? 0 : size[3 * g + 1]!;
      // the geom's local z axis is the third column of its rotation matrix (row-major 3×3)
      const ax = mat[9 * g + 2]!;
      const az = mat[9 * g + 8]!;
      const x = pos[3 * g]!;
      const z = pos[3 * g + 2]!;
      out.push(x - half * ax, z - half * az, x + half * ax, z + half * az, size[3 * g]!);
    }
    return Float32Array.from(out);
  }

  /** The views, valid: a detached view (after wasm memory growth) has length 0. */
  private views(): void {
    if (this.qpos.length === 0) this.refreshViews();
  }

  reset(seed?: number): ResetResult {
    this.checkOpen();
    if (seed !== undefined) {
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
        throw new RangeError(`${this.id}: reset seed must be an integer in [0, 2^32), got ${seed}`);
      }
      this.rng = new Rng(seed, ENV_RNG_KEY);
    }
    const { mujoco, model, data, rng } = this;
    mujoco.mj_resetData(model, data);
    this.views();
    const s = this.params.resetNoiseScale;
    const qpos0 = model.qpos0 as Float64Array;
    const qpos = this.qpos;
    const qvel = this.qvel;
    for (let i = 0; i < this.nq; i++) qpos[i] = qpos0[i]! + rng.uniform(-s, s);
    if (this.spec.velocityNoise === 'uniform') {
      for (let i = 0; i < this.nv; i++) qvel[i] = rng.uniform(-s, s);
    } else {
      for (let i = 0; i < this.nv; i++) qvel[i] = s * rng.normal();
    }
    mujoco.mj_forward(model, data);
    this.elapsedSteps = 0;
    this.done = false;
    return { observation: this.observe(), info: {} };
  }

  step(action: Action): StepResult {
    if (this.done) {
      this.checkOpen();
      throw noEpisodeError(this.id, this.elapsedSteps);
    }
    const a = checkBoxAction(this.id, action, this.actionSpace);
    const { mujoco, model, data, params } = this;
    this.views();
    const xBefore = this.qpos[0]!;
    this.ctrl.set(a);
    for (let k = 0; k < this.spec.frameSkip; k++) mujoco.mj_step(model, data);
    mujoco.mj_rnePostConstraint(model, data);
    this.views();
    const xAfter = this.qpos[0]!;
    const xVelocity = (xAfter - xBefore) / this.dt;

    let sq = 0;
    for (let i = 0; i < a.length; i++) sq += a[i]! * a[i]!;
    const ctrlCost = params.ctrlCostWeight * sq;
    const forwardReward = params.forwardRewardWeight * xVelocity;

    let reward: number;
    let terminated = false;
    const info: Info = { x_position: xAfter, x_velocity: xVelocity };
    if (this.spec.health === 'none') {
      reward = forwardReward - ctrlCost;
      if (this.spec.rewardInfo) {
        info['reward_run'] = forwardReward;
        info['reward_ctrl'] = -ctrlCost;
      }
    } else {
      const healthy = this.isHealthy();
      const healthyReward = healthy || params.terminateWhenUnhealthy ? params.healthyReward : 0;
      reward = forwardReward + healthyReward - ctrlCost;
      terminated = params.terminateWhenUnhealthy && !healthy;
    }

    const steps = ++this.elapsedSteps;
    const truncated = steps >= this.maxEpisodeSteps;
    if (terminated || truncated) this.done = true;
    return { observation: this.observe(), reward, cost: 0, terminated, truncated, info };
  }

  /** Gymnasium v4's `is_healthy`, on the float64 state (all bounds strict). */
  private isHealthy(): boolean {
    const { qpos, qvel, params } = this;
    const z = qpos[1]!;
    const angle = qpos[2]!;
    const [zLo, zHi] = params.zRange;
    const [aLo, aHi] = params.angleRange;
    if (!(zLo < z && z < zHi && aLo < angle && angle < aHi)) return false;
    if (this.spec.health === 'hopper') {
      const [lo, hi] = params.stateRange;
      for (let i = 2; i < this.nq; i++) {
        const v = qpos[i]!;
        if (!(lo < v && v < hi)) return false;
      }
      for (let i = 0; i < this.nv; i++) {
        const v = qvel[i]!;
        if (!(lo < v && v < hi)) return false;
      }
    }
    return true;
  }

  private observe(): Float32Array {
    const { qpos, qvel, nq, nv } = this;
    const obs = new Float32Array(this.obsDim);
    let j = 0;
    for (let i = this.obsOffset; i < nq; i++) obs[j++] = qpos[i]!;
    if (this.spec.clipVelocity) {
      for (let i = 0; i < nv; i++) {
        const v = qvel[i]!;
        obs[j++] = v < -10 ? -10 : v > 10 ? 10 : v;
      }
    } else {
      for (let i = 0; i < nv; i++) obs[j++] = qvel[i]!;
    }
    return obs;
  }

  snapshot(): EnvSnapshot {
    this.checkOpen();
    this.views();
    const { nq, nv, na } = this;
    const state = new Float64Array(this.stateSize);
    let o = 0;
    state[o++] = this.data.time;
    state.set(this.qpos, o);
    o += nq;
    state.set(this.qvel, o);
    o += nv;
    if (na > 0) state.set(this.act, o);
    o += na;
    state.set(this.warmstart, o);
    o += nv;
    state.set(this.ctrl, o);
    return { id: this.id, state, elapsedSteps: this.elapsedSteps, rng: this.rng.state(), done: this.done };
  }

  restore(snapshot: EnvSnapshot): void {
    this.checkOpen();
    checkSnapshot(this.id, snapshot, this.stateSize);
    const st = snapshot.state;
    // Validates the generator state before anything changes.
    const rng = Rng.fromState(snapshot.rng);

    const { nq, nv, na, nu } = this;
    this.views();
    let o = 0;
    this.data.time = st[o++]!;
    this.qpos.set(st.subarray(o, o + nq));
    o += nq;
    this.qvel.set(st.subarray(o, o + nv));
    o += nv;
    if (na > 0) this.act.set(st.subarray(o, o + na));
    o += na;
    this.warmstart.set(st.subarray(o, o + nv));
    o += nv;
    this.ctrl.set(st.subarray(o, o + nu));
    // Derived quantities (positions of bodies, contacts, ...) consistent with the restored state.
    this.mujoco.mj_forward(this.model, this.data);
    this.mujoco.mj_rnePostConstraint(this.model, this.data);
    this.rng = rng;
    this.elapsedSteps = snapshot.elapsedSteps;
    this.done = snapshot.done;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.done = true; // so step() reaches the closed check without a per-step test
    finalizer.unregister(this);
    if (!this.data.isDeleted()) this.data.delete();
  }

  private checkOpen(): void {
    if (this.closed) throw new EnvStateError(`${this.id}: the env is closed`);
  }
}
