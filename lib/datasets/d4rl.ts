/**
 * D4RL datasets: the HDF5 layout of Fu et al. (2020), read and written through h5wasm, so a real
 * `hopper-medium-v2.hdf5` downloaded elsewhere loads here and files written here load in h5py.
 * Under Node the files are on disk; in a browser `loadD4rl` reads the bytes the page handed to
 * `provideFiles` (`#platform/files`, `#platform/hdf5`), and writing runs under Node only.
 *
 *   observations        [N, obsDim]  float         o_t
 *   actions             [N, actDim]  float         a_t
 *   rewards             [N]          float         r_t
 *   terminals           [N]          bool/int/float (0/1)   the MDP ended after a_t
 *   timeouts            [N]          bool/int/float (0/1)   the time limit cut the episode after a_t
 *   next_observations   [N, obsDim]  float         o_{t+1} (optional)
 *   infos/qpos          [N, nq]      float         simulator positions at o_t (optional)
 *   infos/qvel          [N, nv]      float         simulator velocities at o_t (optional)
 *
 * `terminals` and `timeouts` are separate flags, as in D4RL: a terminal is a true end (the hopper
 * fell; bootstrapping stops), a timeout is time-limit truncation (the state was not terminal).
 * Other keys (`metadata/*`, other `infos/*`) are ignored. Rows are transitions in collection
 * order; episodes are the runs between flagged rows (`episodesOf`).
 *
 * `loadD4rl` refuses, naming the file and the key (and the index where there is one), before
 * anything is returned: a missing required key; a key that is a group or not numeric; a wrong rank
 * (matrices are [N, d] or [N] meaning d = 1; vectors are [N] or [N, 1]); first dimensions that
 * differ from `observations`'; an empty dataset; a non-finite value (`data/bad.hdf5:
 * observations[12, 3] is NaN`) or one beyond the float32 range; a flag other than 0/1; booleans
 * where numbers belong. With `envId`, also observation/action sizes against the env (and
 * `next_observations`), integer in-range actions for a discrete env, and `infos/qpos` /
 * `infos/qvel` widths against the MuJoCo model's nq / nv.
 *
 * Arrays come back row-major: floats as Float32Array, flags as Uint8Array (0/1), except
 * `qpos` / `qvel`, which stay Float64Array — they are simulator state, and float64 lets a reset
 * point restore exactly what was recorded.
 *
 * ```ts
 * const data = await loadD4rl('data/hopper-medium-v2.hdf5', { envId: 'Hopper-v4' });
 * data.n; data.obsDim; data.observations;            // 999_906, 11, Float32Array
 * const episodes = episodesOf(data);                 // complete episodes only
 * await writeD4rl('out.hdf5', data, { compression: 4 });
 * ```
 */
import type { File as H5File } from 'h5wasm';
import { removeFile, renameFile, tempPathBeside } from '#platform/files';
import { openHdf5 } from '#platform/hdf5';
import { compiledModel, MUJOCO_ENV_IDS } from '../envs/mujoco/loader.ts';
import { makeEnv } from '../envs/registry.ts';
import type { EnvOptions } from '../envs/types.ts';
import { Hdf5Error, entryKind, readNumeric, withHdf5Errors, writeNumeric, type NumericData } from './hdf5.ts';

export class D4rlError extends Error {
  override readonly name = 'D4rlError';
}

/** A D4RL dataset in memory: N transitions, row-major arrays. */
export interface D4rlDataset {
  readonly n: number;
  readonly obsDim: number;
  readonly actDim: number;
  /** [n, obsDim] */
  readonly observations: Float32Array;
  /** [n, actDim] */
  readonly actions: Float32Array;
  /** [n] */
  readonly rewards: Float32Array;
  /** [n], 0/1: the episode ended in a terminal state after this transition. */
  readonly terminals: Uint8Array;
  /** [n], 0/1: the time limit truncated the episode after this transition. */
  readonly timeouts: Uint8Array;
  /** [n, obsDim], if the file has `next_observations`. */
  readonly nextObservations?: Float32Array;
  /** [n, nq] simulator positions (`infos/qpos`), float64. */
  readonly qpos?: Float64Array;
  readonly nq?: number;
  /** [n, nv] simulator velocities (`infos/qvel`), float64. */
  readonly qvel?: Float64Array;
  readonly nv?: number;
  /** Root attributes that are strings or numbers (provenance: env id, command, ...). */
  readonly attrs?: Readonly<Record<string, string | number>>;
}

export interface LoadD4rlOptions {
  /** Check observation/action (and qpos/qvel) sizes against this env (`makeEnv` id). */
  envId?: string;
  /** Options for that env (e.g. `exclude_current_positions_from_observation`). */
  envOptions?: EnvOptions;
}

export interface WriteD4rlOptions {
  /** Element type of infos/qpos and infos/qvel. Default float64 (exact simulator state). */
  stateDtype?: 'float64' | 'float32';
  /** gzip level 1–9 (h5py and every HDF5 build read it); 0 writes uncompressed. Default 4. */
  compression?: number;
  /** Root attributes (provenance: env id, the command that regenerates the file, ...). */
  attrs?: Readonly<Record<string, string | number>>;
}

const _REQUIRED = ['observations', 'actions', 'rewards', 'terminals', 'timeouts'] as const;
const FLOAT32_MAX = 3.4028234663852886e38;

type Role = 'matrix' | 'vector' | 'flag';

function describe(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return String(v);
}

function indexOf(i: number, cols: number, rank: number): string {
  return rank >= 2 ? `[${Math.floor(i / cols)}, ${i % cols}]` : `[${i}]`;
}

interface Checked {
  readonly rows: number;
  readonly cols: number;
  readonly rank: number;
}

/** Rank and dtype rules of one key; returns rows and columns. */
function checkShape(label: string, key: string, nd: NumericData, role: Role): Checked {
  const shape = nd.shape;
  const shown = `[${shape.join(', ')}]`;
  if (role === 'matrix') {
    if (shape.length !== 1 && shape.length !== 2) {
      throw new D4rlError(`${label}: ${key} has shape ${shown}; expected [N, d] (or [N] for d = 1)`);
    }
    if (nd.kind === 'bool') throw new D4rlError(`${label}: ${key} holds booleans; expected numbers`);
    return { rows: shape[0]!, cols: shape.length === 2 ? shape[1]! : 1, rank: shape.length };
  }
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new D4rlError(`${label}: ${key} has shape ${shown}; expected [N] (or [N, 1])`);
  }
  if (role === 'vector' && nd.kind === 'bool') throw new D4rlError(`${label}: ${key} holds booleans; expected numbers`);
  return { rows: shape[0]!, cols: 1, rank: 1 };
}

/** Float32 copy of a numeric key, refusing non-finite values and float32 overflow by index. */
function toFloat32Checked(label: string, key: string, src: ArrayLike<number>, cols: number, rank: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isFinite(v)) throw new D4rlError(`${label}: ${key}${indexOf(i, cols, rank)} is ${describe(v)}`);
    if (Math.abs(v) > FLOAT32_MAX) {
      throw new D4rlError(`${label}: ${key}${indexOf(i, cols, rank)} is ${v}, beyond the float32 range`);
    }
    out[i] = v;
  }
  return out;
}

function toFloat64Checked(label: string, key: string, src: ArrayLike<number>, cols: number, rank: number): Float64Array {
  const out = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isFinite(v)) throw new D4rlError(`${label}: ${key}${indexOf(i, cols, rank)} is ${describe(v)}`);
    out[i] = v;
  }
  return out;
}

function toFlagsChecked(label: string, key: string, src: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v !== 0 && v !== 1) throw new D4rlError(`${label}: ${key}[${i}] is ${describe(v)}; flags must be 0 or 1`);
    out[i] = v;
  }
  return out;
}

/** The env's sizes: observation and action widths, discrete action count, MuJoCo nq/nv. */
interface EnvSizes {
  readonly obsDim: number;
  readonly actDim: number;
  readonly discreteN?: number;
  readonly nq?: number;
  readonly nv?: number;
}

async function envSizes(envId: string, envOptions: EnvOptions): Promise<EnvSizes> {
  const env = await makeEnv(envId, envOptions);
  try {
    const obsDim = env.observationSpace.shape.reduce((a, b) => a * b, 1);
    const space = env.actionSpace;
    const base = space.kind === 'box' ? { obsDim, actDim: space.shape.reduce((a, b) => a * b, 1) } : { obsDim, actDim: 1, discreteN: space.n };
    const mujocoId = MUJOCO_ENV_IDS.find((m) => m === envId);
    if (mujocoId === undefined) return base;
    const model = await compiledModel(mujocoId);
    return { ...base, nq: model.nq, nv: model.nv };
  } finally {
    env.close();
  }
}

function checkEnv(label: string, data: D4rlDataset, envId: string, sizes: EnvSizes): void {
  if (data.obsDim !== sizes.obsDim) {
    throw new D4rlError(`${label}: observations have ${data.obsDim} columns but ${envId} observations have ${sizes.obsDim}`);
  }
  if (data.actDim !== sizes.actDim) {
    throw new D4rlError(`${label}: actions have ${data.actDim} columns but ${envId} actions have ${sizes.actDim}`);
  }
  if (sizes.discreteN !== undefined) {
    const n = sizes.discreteN;
    for (let i = 0; i < data.n; i++) {
      const a = data.actions[i]!;
      if (!Number.isInteger(a) || a < 0 || a >= n) {
        throw new D4rlError(`${label}: actions[${i}] is ${a}; ${envId} actions are integers in [0, ${n})`);
      }
    }
  }
  if (data.qpos !== undefined && sizes.nq !== undefined && data.nq !== sizes.nq) {
    throw new D4rlError(`${label}: infos/qpos has ${data.nq} columns but ${envId} has nq = ${sizes.nq}`);
  }
  if (data.qvel !== undefined && sizes.nv !== undefined && data.nv !== sizes.nv) {
    throw new D4rlError(`${label}: infos/qvel has ${data.nv} columns but ${envId} has nv = ${sizes.nv}`);
  }
}

function readAttrs(file: H5File): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [name, attr] of Object.entries(file.attrs)) {
    try {
      const v = attr.json_value;
      if (typeof v === 'string' || typeof v === 'number') out[name] = v;
    } catch {
      // An attribute of a type h5wasm cannot decode is not ours to judge: skip it.
    }
  }
  return out;
}

/**
 * Reads a D4RL-layout HDF5 file into typed arrays, validated (see the module doc). Async because
 * h5wasm (and, with `envId`, a MuJoCo env) loads WebAssembly on first use.
 *
 * @param path the HDF5 file (h5py, h5wasm or any HDF5 writer).
 * @param options `envId` (and `envOptions`) to check sizes against an env.
 * @return the dataset; throws `D4rlError` naming the file, the key and the index.
 * @example
 * const d = await loadD4rl('test/data/hopper-tiny.hdf5', { envId: 'Hopper-v4' });
 */
export async function loadD4rl(path: string, options: LoadD4rlOptions = {}): Promise<D4rlDataset> {
  const label = path;
  // Env errors (an unknown id, bad options) before the file is read.
  const sizes = options.envId !== undefined ? await envSizes(options.envId, options.envOptions ?? {}) : undefined;
  let opened: Awaited<ReturnType<typeof openHdf5>>;
  try {
    opened = await openHdf5(path, 'r');
  } catch (e) {
    if (e instanceof Hdf5Error) throw new D4rlError(e.message);
    throw e;
  }
  const { h5, file } = opened;
  let data: D4rlDataset;
  try {
    const read = (key: string, role: Role, required: boolean): { nd: NumericData; c: Checked } | undefined => {
      const kind = withHdf5Errors(h5, `${label}: ${key}`, () => entryKind(h5, file, key));
      if (kind === 'missing') {
        if (!required) return undefined;
        const found = withHdf5Errors(h5, label, () => file.keys());
        throw new D4rlError(`${label}: missing required key "${key}" (the file has: ${found.join(', ') || 'nothing'})`);
      }
      if (kind === 'group') throw new D4rlError(`${label}: ${key} is a group; expected a dataset`);
      const nd = readNumeric(h5, file, key, label);
      return { nd, c: checkShape(label, key, nd, role) };
    };
    const obs = read('observations', 'matrix', true)!;
    const act = read('actions', 'matrix', true)!;
    const rew = read('rewards', 'vector', true)!;
    const term = read('terminals', 'flag', true)!;
    const tout = read('timeouts', 'flag', true)!;
    const next = read('next_observations', 'matrix', false);
    const qpos = read('infos/qpos', 'matrix', false);
    const qvel = read('infos/qvel', 'matrix', false);

    const n = obs.c.rows;
    if (n === 0) throw new D4rlError(`${label}: observations has no rows`);
    const all: [string, Checked | undefined][] = [
      ['actions', act.c],
      ['rewards', rew.c],
      ['terminals', term.c],
      ['timeouts', tout.c],
      ['next_observations', next?.c],
      ['infos/qpos', qpos?.c],
      ['infos/qvel', qvel?.c],
    ];
    for (const [key, c] of all) {
      if (c !== undefined && c.rows !== n) {
        throw new D4rlError(`${label}: ${key} has ${c.rows} rows but observations has ${n}; every key needs one row per transition`);
      }
    }
    if (next !== undefined && next.c.cols !== obs.c.cols) {
      throw new D4rlError(`${label}: next_observations has ${next.c.cols} columns but observations has ${obs.c.cols}`);
    }
    const attrs = withHdf5Errors(h5, label, () => readAttrs(file));
    data = {
      n,
      obsDim: obs.c.cols,
      actDim: act.c.cols,
      observations: toFloat32Checked(label, 'observations', obs.nd.data, obs.c.cols, obs.c.rank),
      actions: toFloat32Checked(label, 'actions', act.nd.data, act.c.cols, act.c.rank),
      rewards: toFloat32Checked(label, 'rewards', rew.nd.data, 1, 1),
      terminals: toFlagsChecked(label, 'terminals', term.nd.data),
      timeouts: toFlagsChecked(label, 'timeouts', tout.nd.data),
      ...(next ? { nextObservations: toFloat32Checked(label, 'next_observations', next.nd.data, next.c.cols, next.c.rank) } : {}),
      ...(qpos ? { qpos: toFloat64Checked(label, 'infos/qpos', qpos.nd.data, qpos.c.cols, qpos.c.rank), nq: qpos.c.cols } : {}),
      ...(qvel ? { qvel: toFloat64Checked(label, 'infos/qvel', qvel.nd.data, qvel.c.cols, qvel.c.rank), nv: qvel.c.cols } : {}),
      attrs,
    };
  } catch (e) {
    if (e instanceof Hdf5Error) throw new D4rlError(e.message);
    throw e;
  } finally {
    withHdf5Errors(h5, label, () => file.close());
  }
  if (sizes !== undefined) checkEnv(label, data, options.envId!, sizes);
  return data;
}

/** The in-memory checks of `writeD4rl`: lengths against n/obsDim/actDim, finiteness, 0/1 flags. */
function validateForWrite(label: string, d: D4rlDataset): void {
  for (const [name, v] of [
    ['n', d.n],
    ['obsDim', d.obsDim],
    ['actDim', d.actDim],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new D4rlError(`${label}: ${name} must be a positive integer, got ${v}`);
  }
  const len = (key: string, a: ArrayLike<number>, want: number): void => {
    if (a.length !== want) throw new D4rlError(`${label}: ${key} has ${a.length} values; expected ${want}`);
  };
  len('observations', d.observations, d.n * d.obsDim);
  len('actions', d.actions, d.n * d.actDim);
  len('rewards', d.rewards, d.n);
  len('terminals', d.terminals, d.n);
  len('timeouts', d.timeouts, d.n);
  if (d.nextObservations) len('next_observations', d.nextObservations, d.n * d.obsDim);
  for (const [key, a, w] of [
    ['infos/qpos', d.qpos, d.nq],
    ['infos/qvel', d.qvel, d.nv],
  ] as const) {
    if (a === undefined) continue;
    if (w === undefined || !Number.isInteger(w) || w <= 0) {
      throw new D4rlError(`${label}: ${key} given without its width (${key === 'infos/qpos' ? 'nq' : 'nv'})`);
    }
    len(key, a, d.n * w);
    toFloat64Checked(label, key, a, w, 2);
  }
  toFloat32Checked(label, 'observations', d.observations, d.obsDim, 2);
  toFloat32Checked(label, 'actions', d.actions, d.actDim, 2);
  toFloat32Checked(label, 'rewards', d.rewards, 1, 1);
  if (d.nextObservations) toFloat32Checked(label, 'next_observations', d.nextObservations, d.obsDim, 2);
  toFlagsChecked(label, 'terminals', d.terminals);
  toFlagsChecked(label, 'timeouts', d.timeouts);
}

/**
 * Writes `data` in the D4RL layout: float32 observations, actions, rewards and next_observations
 * (h5wasm 0.10.3 cannot write float16; float16 files written elsewhere load fine); uint8
 * terminals and timeouts (h5py reads them as numbers; D4RL's own files use h5py booleans, which
 * the loader reads too); float64 infos/qpos and infos/qvel; gzip level 4 by default. The data is
 * validated first (lengths, finiteness, 0/1 flags). The file is written to a temporary name
 * beside `path` and renamed over it, so a
 * crash never leaves half a dataset under `path`.
 *
 * @example
 * await writeD4rl('test/data/tiny.hdf5', data, { attrs: { env_id: 'Hopper-v4' } });
 */
export async function writeD4rl(path: string, data: D4rlDataset, options: WriteD4rlOptions = {}): Promise<void> {
  const label = path;
  validateForWrite(label, data);
  const floatDtype = 'float32';
  const stateDtype = options.stateDtype ?? 'float64';
  const compression = options.compression ?? 4;
  const tmp = tempPathBeside(path);
  let opened: Awaited<ReturnType<typeof openHdf5>>;
  try {
    opened = await openHdf5(tmp, 'w');
  } catch (e) {
    if (e instanceof Hdf5Error) throw new D4rlError(`${label}: cannot create the file (${e.message.slice(tmp.length + 2)})`);
    throw e;
  }
  const { h5, file } = opened;
  let ok = false;
  try {
    const w = (key: string, shape: number[], a: ArrayLike<number>, dtype: Parameters<typeof writeNumeric>[5]) =>
      writeNumeric(h5, file, key, shape, a, dtype, label, { compression });
    const { n } = data;
    w('observations', [n, data.obsDim], data.observations, floatDtype);
    w('actions', [n, data.actDim], data.actions, floatDtype);
    w('rewards', [n], data.rewards, floatDtype);
    w('terminals', [n], data.terminals, 'uint8');
    w('timeouts', [n], data.timeouts, 'uint8');
    if (data.nextObservations) w('next_observations', [n, data.obsDim], data.nextObservations, floatDtype);
    if (data.qpos || data.qvel) {
      withHdf5Errors(h5, label, () => file.create_group('infos'));
      if (data.qpos) w('infos/qpos', [n, data.nq!], data.qpos, stateDtype);
      if (data.qvel) w('infos/qvel', [n, data.nv!], data.qvel, stateDtype);
    }
    for (const [name, value] of Object.entries(options.attrs ?? {})) {
      withHdf5Errors(h5, `${label}: attribute ${name}`, () => file.create_attribute(name, value));
    }
    ok = true;
  } catch (e) {
    if (e instanceof Hdf5Error) throw new D4rlError(e.message);
    throw e;
  } finally {
    try {
      withHdf5Errors(h5, label, () => file.close());
    } finally {
      if (ok) renameFile(tmp, path);
      else removeFile(tmp);
    }
  }
}

/** One episode: a view (no copy) of rows [start, start + length) of a dataset. */
export interface D4rlEpisode {
  readonly start: number;
  readonly length: number;
  /** The last row has `terminals` = 1. */
  readonly terminated: boolean;
  /** The last row has `timeouts` = 1 (time-limit truncation). */
  readonly truncated: boolean;
  /** Sum of the rewards. */
  readonly episodeReturn: number;
  readonly observations: Float32Array;
  readonly actions: Float32Array;
  readonly rewards: Float32Array;
  readonly nextObservations?: Float32Array;
  readonly qpos?: Float64Array;
  readonly qvel?: Float64Array;
}

export interface EpisodesOfOptions {
  /**
   * Keep the rows after the last flagged row as a final episode (neither terminated nor
   * truncated). Default false: dropped, as D4RL's `sequence_dataset` and the Decision
   * Transformer / ODT loaders do — a dataset cut mid-episode ends with an episode that did not end.
   */
  keepPartial?: boolean;
}

/**
 * Splits a dataset into episodes: an episode ends at a row with `terminals` or `timeouts` set
 * (D4RL's convention), the next row starts the next one. The arrays are subarray views.
 *
 * @example
 * const eps = episodesOf(data);            // complete episodes
 * const all = episodesOf(data, { keepPartial: true });
 */
export function episodesOf(data: D4rlDataset, options: EpisodesOfOptions = {}): D4rlEpisode[] {
  const out: D4rlEpisode[] = [];
  const { obsDim, actDim } = data;
  const cut = (start: number, end: number): void => {
    const last = end - 1;
    let ret = 0;
    for (let i = start; i < end; i++) ret += data.rewards[i]!;
    out.push({
      start,
      length: end - start,
      terminated: data.terminals[last] === 1,
      truncated: data.timeouts[last] === 1,
      episodeReturn: ret,
      observations: data.observations.subarray(start * obsDim, end * obsDim),
      actions: data.actions.subarray(start * actDim, end * actDim),
      rewards: data.rewards.subarray(start, end),
      ...(data.nextObservations ? { nextObservations: data.nextObservations.subarray(start * obsDim, end * obsDim) } : {}),
      ...(data.qpos && data.nq ? { qpos: data.qpos.subarray(start * data.nq, end * data.nq) } : {}),
      ...(data.qvel && data.nv ? { qvel: data.qvel.subarray(start * data.nv, end * data.nv) } : {}),
    });
  };
  let start = 0;
  for (let i = 0; i < data.n; i++) {
    if (data.terminals[i] === 1 || data.timeouts[i] === 1) {
      cut(start, i + 1);
      start = i + 1;
    }
  }
  if (options.keepPartial && start < data.n) cut(start, data.n);
  return out;
}
