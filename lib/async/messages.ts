/**
 * What travels between a learner and its actors, as plain data with io-ts codecs: a *task* (the
 * start of one group and the seed of its action sampling), a *group envelope* (the finished
 * group, the task it answers, the policy version that sampled it, the actor's timings), and the
 * policy's *weights* of one version as safetensors bytes. The same messages cross a child
 * process's IPC channel and a Redis stream.
 *
 *   task      { task: n, groupId, start, seed }                   learner → actors
 *   envelope  { run, configHash, task, actor, policyVersion,       actor → learner
 *               rolloutMs, idleMs, group }
 *   weights   safetensors bytes, `__metadata__` { rxrl.version }   learner → actors
 *
 * ```ts
 * const text = encodeEnvelope({ run: 'r1', configHash, task: 3, actor: 'a1', policyVersion: 2, rolloutMs: 80, idleMs: 1, group });
 * const back = decodeEnvelope(text);            // Either<string[], GroupEnvelope>: every bad path named
 * const bytes = encodeWeights(params.toRecord(), 2);
 * const { version, record } = decodeWeights(bytes, 'redis://h:6379 run r1');
 * ```
 */
import * as t from 'io-ts';
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import { NonNegativeInt, NonNegativeNumber, Uint32, decodeJSON } from '../codec.ts';
import { Group, Start, trajectoryShapeErrors } from '../data.ts';
import { encodeSafetensors, parseSafetensors, toFloat32 } from '../io/safetensors-codec.ts';
import type { ParamRecord } from '../models/params.ts';

/** One group to roll out: task `n` of the run, its start and the seed of its action stream. */
export const AsyncTask = t.type({ task: NonNegativeInt, groupId: t.string, start: Start, seed: Uint32 }, 'AsyncTask');
export type AsyncTask = t.TypeOf<typeof AsyncTask>;

/** A finished group on its way to the learner. */
export const GroupEnvelope = t.type(
  {
    /** The run it belongs to (a stream of another run is refused). */
    run: t.string,
    /** Hash of the run's resolved config (a group of another config is refused). */
    configHash: t.string,
    /** The task it answers (its group id is the task's). */
    task: NonNegativeInt,
    /** Who rolled it out (host-pid, or the embedded actor's index). */
    actor: t.string,
    /** The policy version whose weights sampled every trajectory of the group. */
    policyVersion: NonNegativeInt,
    /** Wall time of the rollout. */
    rolloutMs: NonNegativeNumber,
    /** Wall time the actor waited (for a task, weights or back-pressure) before it. */
    idleMs: NonNegativeNumber,
    group: Group,
  },
  'GroupEnvelope',
);
export type GroupEnvelope = t.TypeOf<typeof GroupEnvelope>;

/** The run's identity, published by the learner and checked by everyone who joins it. */
export const RunInfo = t.type(
  {
    run: t.string,
    pipeline: t.string,
    /** The resolved pipeline config (actors build their envs and policy from it). */
    config: t.UnknownRecord,
    configHash: t.string,
  },
  'RunInfo',
);
export type RunInfo = t.TypeOf<typeof RunInfo>;

/** The envelope as text (typed arrays as base64, bit-exact). */
export function encodeEnvelope(e: GroupEnvelope): string {
  return JSON.stringify(GroupEnvelope.encode(e));
}

/**
 * Decodes an envelope and checks what the codec cannot: every trajectory's shapes, its group id
 * and policy version agree with the envelope. Failures are `path: message` lines.
 */
export function decodeEnvelope(text: string): Either<string[], GroupEnvelope> {
  const r = decodeJSON(GroupEnvelope, text);
  if (isLeft(r)) return r;
  const e = r.right;
  const problems: string[] = [];
  if (e.group.groupId !== taskGroupId(e.task)) problems.push(`group.groupId: expected ${taskGroupId(e.task)} (task ${e.task}), got ${e.group.groupId}`);
  e.group.trajectories.forEach((tr, i) => {
    const path = `group.trajectories.${i}`;
    problems.push(...trajectoryShapeErrors(tr, path));
    if (tr.groupId !== e.group.groupId) problems.push(`${path}.groupId: expected ${e.group.groupId}, got ${tr.groupId}`);
    if (tr.policyVersion !== e.policyVersion) problems.push(`${path}.policyVersion: expected ${e.policyVersion} (the envelope's), got ${tr.policyVersion}`);
  });
  if (e.group.trajectories.length === 0) problems.push('group.trajectories: expected at least one trajectory, got none');
  return problems.length > 0 ? left(problems) : right(e);
}

/** The group id of task n (unique within a run: a group id is consumed once). */
export function taskGroupId(n: number): string {
  return `task/${n}`;
}

export class WeightsError extends Error {
  override readonly name = 'WeightsError';
}

const VERSION_KEY = 'rxrl.version';

/** Weights of one policy version as safetensors bytes (F32 tensors, the version in `__metadata__`). */
export function encodeWeights(record: Readonly<Record<string, ParamRecord>>, version: number): Uint8Array {
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, r] of Object.entries(record)) tensors[k] = { dtype: 'F32', shape: [...r.shape], data: r.data };
  const { chunks, total } = encodeSafetensors(tensors, { [VERSION_KEY]: String(version) });
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Reads weights bytes back; a `WeightsError` names `where` (broker and run) and what is wrong. */
export function decodeWeights(bytes: Uint8Array, where: string): { version: number; record: Record<string, ParamRecord> } {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes, `${where}: weights`);
  } catch (e) {
    throw new WeightsError((e as Error).message);
  }
  const meta = parsed.header.metadata;
  const version = Number(meta[VERSION_KEY]);
  if (!Number.isInteger(version) || version < 0)
    throw new WeightsError(`${where}: weights: __metadata__.${VERSION_KEY}: expected a version, got ${meta[VERSION_KEY]}`);
  const record: Record<string, ParamRecord> = {};
  for (const info of parsed.header.tensors) {
    const tns = parsed.tensor(info.name);
    record[info.name] = { shape: tns.shape, data: toFloat32(tns) };
  }
  return { version, record };
}

/** Shapes and names of `record` against a policy's parameters, as `name: problem` lines. */
export function weightsProblems(record: Readonly<Record<string, ParamRecord>>, expected: ReadonlyMap<string, { shape: readonly number[] }>): string[] {
  const out: string[] = [];
  for (const [k, v] of expected) {
    const r = record[k];
    if (!r) out.push(`${k}: missing`);
    else if (r.shape.length !== v.shape.length || r.shape.some((d, i) => d !== v.shape[i]))
      out.push(`${k}: shape [${r.shape.join(', ')}], the policy's is [${v.shape.join(', ')}]`);
  }
  for (const k of Object.keys(record)) if (!expected.has(k)) out.push(`${k}: not a parameter of the policy`);
  return out;
}

/** The envelope's env steps (its trajectories' lengths summed). */
export function envSteps(e: GroupEnvelope): number {
  let n = 0;
  for (const tr of e.group.trajectories) n += tr.length;
  return n;
}
