/**
 * The data model: what crosses an operator boundary. Plain, serialisable data only — numbers,
 * strings, typed arrays — defined once as io-ts codecs; the static types are derived from them.
 *
 * One algebra serves both pipelines:
 * - a **Trajectory** is T actions taken by a policy from a start — env steps for a control policy
 *   or a Decision Transformer, generated tokens for a language model. It carries the behaviour
 *   log-probabilities, rewards, costs and, for return-conditioned policies, the *intended*
 *   return-to-go targets the policy saw when it acted (never rewritten by relabel-free operators);
 * - a **Group** is the trajectories from one start (one reset state, one prompt). Group advantages,
 *   sequence-level ratios and constraint costs are defined on groups.
 *
 * Operators refine these types as they add fields (`ScoredTrajectory` has returns,
 * `AdvantagedTrajectory` has advantages), so feeding raw trajectories into an operator that needs
 * advantages fails `tsc`.
 *
 * Layouts (row-major): `observations` is `(T + 1) × obsDim` — the observation before every action
 * plus the final one; `actions` is `T × actDim` (`Float32Array`) for continuous actions or `T`
 * integers (`Int32Array`) for discrete actions and tokens.
 */
import * as t from 'io-ts';
import { Float32, Float64, Int32, FiniteNumber, NonNegativeInt, Uint8, Uint32 } from './codec.ts';

// ---------------------------------------------------------------------------------------------
// Starts: where a group's trajectories begin.

/** An `Rng` state (`lib/random.ts`): four uint32 words, not all zero, and a cached normal or null. */
export const RngStateC = t.refinement(
  t.type({
    s: t.readonly(t.tuple([Uint32, Uint32, Uint32, Uint32])),
    spare: t.union([FiniteNumber, t.null]),
  }),
  (r) => r.s.some((w) => w !== 0),
  'an Rng state with a non-zero word',
);
/** An `RngStreams` state: the seed and the state of every named stream. */
export const RngStreamsStateC = t.type({ seed: Uint32, streams: t.record(t.string, RngStateC) }, 'RngStreamsState');

/** An env's full state (see `lib/envs/types.ts`). */
export const EnvSnapshotC = t.type(
  {
    id: t.string,
    state: Float64,
    elapsedSteps: NonNegativeInt,
    rng: RngStateC,
    done: t.boolean,
  },
  'EnvSnapshot',
);

/** A `VectorEnv`'s full state (see `lib/envs/vector.ts`). */
export const VectorEnvSnapshotC = t.type(
  {
    envs: t.readonlyArray(EnvSnapshotC),
    observations: Float32,
    terminated: Uint8,
    truncated: Uint8,
    ended: Uint8,
    started: t.boolean,
  },
  'VectorEnvSnapshot',
);

export const SeedStart = t.type({ kind: t.literal('seed'), envId: t.string, seed: Uint32 }, 'SeedStart');
export const SnapshotStart = t.type(
  {
    kind: t.literal('snapshot'),
    snapshot: EnvSnapshotC,
    /** The observation the env emitted in that state (a snapshot carries state, not observations). */
    observation: Float32,
    /** Env time index of the snapshot. */
    t: NonNegativeInt,
  },
  'SnapshotStart',
);
export const PromptStart = t.intersection(
  [
    t.type({ kind: t.literal('prompt'), promptId: t.string, tokens: Int32 }),
    t.partial({
      /** Number of leading tokens that belong to the system prompt (HIPO's attention analysis). */
      systemTokens: NonNegativeInt,
      /** Free-form fields the reward/cost functions need (the rubric, the user request, ...). */
      meta: t.record(t.string, t.union([t.string, t.number, t.boolean])),
    }),
  ],
  'PromptStart',
);
export const Start = t.union([SeedStart, SnapshotStart, PromptStart], 'Start');
export type Start = t.TypeOf<typeof Start>;
export type SeedStart = t.TypeOf<typeof SeedStart>;
export type SnapshotStart = t.TypeOf<typeof SnapshotStart>;
export type PromptStart = t.TypeOf<typeof PromptStart>;

// ---------------------------------------------------------------------------------------------
// Trajectories.

const TrajectoryRequired = t.type({
  /** Number of actions taken. */
  length: NonNegativeInt,
  obsDim: NonNegativeInt,
  actDim: NonNegativeInt,
  /** (T + 1) × obsDim for env trajectories; empty for token trajectories (obsDim 0). */
  observations: Float32,
  /** T × actDim floats, or T integers (discrete actions, tokens). */
  actions: t.union([Float32, Int32]),
  /** log π_behaviour(a_t | ·) of each action as sampled, length T. */
  logProbs: Float32,
  /** r_t, length T (sparse rewards: zeros and the score on the last token). */
  rewards: Float32,
  /** c_t, length T (zeros where no constraint is defined). */
  costs: Float32,
  /** The episode ended by the MDP (pole fell, EOS). */
  terminated: t.boolean,
  /** The episode was cut (time limit, max tokens, sub-trajectory horizon). */
  truncated: t.boolean,
  /** Version of the policy that acted (incremented by every update). */
  policyVersion: NonNegativeInt,
  /** Trajectories with the same group id share a start. */
  groupId: t.string,
  start: Start,
});

const TrajectoryOptional = t.partial({
  /** The return-to-go targets the policy was conditioned on when it acted, length T. Never rewritten. */
  targets: Float32,
  /** Env time index of each step, length T (sub-trajectories start mid-episode). */
  timesteps: Int32,
  /**
   * Per-step validity (1 = real action, 0 = padding), length T. Batch builders still emit padding
   * steps (so per-step values stay aligned); `policyUpdate` gives them no weight in the surrogate,
   * KL, entropy or ratio metrics and leaves them out of every step count. Padding should carry
   * zero reward and cost: `returns` sums the rewards as given.
   */
  mask: Float32,
  /** Scalar terms of an episode-level reward/cost decomposition (e.g. `utility`, `compliance`). */
  scores: t.record(t.string, FiniteNumber),
});

export const Trajectory = t.intersection([TrajectoryRequired, TrajectoryOptional], 'Trajectory');
export type Trajectory = t.TypeOf<typeof Trajectory>;

/** A trajectory with its discounted returns computed by `returns` (relabel-free). */
export const ScoredTrajectory = t.intersection(
  [
    Trajectory,
    t.type({
      /** G_t = Σ_{k≥t} γ^{k−t} r_k, length T. */
      returns: Float32,
      /** Σ_t r_t (undiscounted episode return). */
      totalReward: FiniteNumber,
      /** Σ_t c_t. */
      totalCost: FiniteNumber,
    }),
  ],
  'ScoredTrajectory',
);
export type ScoredTrajectory = t.TypeOf<typeof ScoredTrajectory>;

/** A trajectory with a scalar advantage per objective, from `groupAdvantages` / `constraintCost`. */
export const AdvantagedTrajectory = t.intersection(
  [
    ScoredTrajectory,
    t.type({ advantage: FiniteNumber }),
    t.partial({
      /** Cost advantages, one per constraint, in the order of the constraints. */
      costAdvantages: t.array(FiniteNumber),
    }),
  ],
  'AdvantagedTrajectory',
);
export type AdvantagedTrajectory = t.TypeOf<typeof AdvantagedTrajectory>;

/**
 * A type-only brand on trajectories whose cost advantages have not yet been combined with the
 * reward advantage (`constraintCost` sets it, `primalDual` consumes it): `policyUpdate` refuses
 * branded input at compile time, so a constrained pipeline cannot skip `primalDual` silently.
 */
export declare const UNCOMBINED_COST: unique symbol;

// ---------------------------------------------------------------------------------------------
// Groups.

function groupOf<C extends t.Mixed>(item: C, name: string) {
  return t.type({ groupId: t.string, start: Start, trajectories: t.array(item) }, name);
}

export const Group = groupOf(Trajectory, 'Group');
export type Group = t.TypeOf<typeof Group>;
export const ScoredGroup = groupOf(ScoredTrajectory, 'ScoredGroup');
export type ScoredGroup = t.TypeOf<typeof ScoredGroup>;
export const AdvantagedGroup = groupOf(AdvantagedTrajectory, 'AdvantagedGroup');
export type AdvantagedGroup = t.TypeOf<typeof AdvantagedGroup>;

/**
 * One iteration's worth of groups plus the metrics the operators have added so far: the item that
 * flows through an on-policy pipeline, from rollout to update (one per iteration).
 */
export interface Batch<G> {
  readonly iteration: number;
  readonly groups: readonly G[];
  readonly metrics: Readonly<Record<string, number>>;
}

export const BatchC = <C extends t.Mixed>(group: C) =>
  t.type({
    iteration: NonNegativeInt,
    groups: t.readonlyArray(group),
    metrics: t.record(t.string, t.number),
  });

export const MetricsRecord = t.intersection([t.type({ iteration: NonNegativeInt }), t.record(t.string, t.number)], 'MetricsRecord');
export type MetricsRecord = t.TypeOf<typeof MetricsRecord>;

// ---------------------------------------------------------------------------------------------
// Consistency checks the codec's shapes cannot express.

/** The shape errors of a trajectory (lengths that disagree), as `path: message` lines. */
export function trajectoryShapeErrors(tr: Trajectory, path = 'trajectory'): string[] {
  const errs: string[] = [];
  const T = tr.length;
  const want = (field: string, got: number, expected: number) => {
    if (got !== expected) errs.push(`${path}.${field}: expected length ${expected}, got ${got}`);
  };
  if (tr.obsDim > 0) want('observations', tr.observations.length, (T + 1) * tr.obsDim);
  want('actions', tr.actions.length, tr.actions instanceof Int32Array ? T : T * tr.actDim);
  want('logProbs', tr.logProbs.length, T);
  want('rewards', tr.rewards.length, T);
  want('costs', tr.costs.length, T);
  if (tr.targets) want('targets', tr.targets.length, T);
  if (tr.timesteps) want('timesteps', tr.timesteps.length, T);
  if (tr.mask) want('mask', tr.mask.length, T);
  return errs;
}
