/** Small hand-made trajectories and batches for operator tests. */
import type { Batch, Group, Trajectory } from '../../lib/data.ts';

export function makeTrajectory(rewards: number[], opts: Partial<Trajectory> = {}): Trajectory {
  const T = rewards.length;
  return {
    length: T,
    obsDim: 1,
    actDim: 1,
    observations: Float32Array.from({ length: T + 1 }, (_, i) => i),
    actions: new Int32Array(T),
    logProbs: new Float32Array(T).fill(-0.5),
    rewards: Float32Array.from(rewards),
    costs: new Float32Array(T),
    terminated: true,
    truncated: false,
    policyVersion: 0,
    groupId: 'g0',
    start: { kind: 'seed', envId: 'CartPole-v1', seed: 0 },
    ...opts,
  };
}

export function makeGroup(id: string, rewardLists: number[][], opts: Partial<Trajectory> = {}): Group {
  const start = { kind: 'seed' as const, envId: 'CartPole-v1', seed: 0 };
  return { groupId: id, start, trajectories: rewardLists.map((r) => makeTrajectory(r, { groupId: id, start, ...opts })) };
}

export function makeBatch<G>(iteration: number, groups: G[]): Batch<G> {
  return { iteration, groups, metrics: {} };
}
