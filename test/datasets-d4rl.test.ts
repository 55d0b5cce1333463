import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { D4rlError, episodesOf, loadD4rl, writeD4rl, type D4rlDataset } from '../lib/index.ts';
import { makeTinyHopper } from './helpers/make-tiny-d4rl.ts';

const PY = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'helpers', 'write_d4rl.py');
const TINY = join(import.meta.dirname, 'data', 'hopper-tiny.hdf5');

/** Why the h5py tests cannot run here, or undefined if they can. */
const noH5py: string | undefined = (() => {
  const r = spawnSync(PY, ['-c', 'import h5py, numpy'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return `${PY} cannot import h5py (install Debian's python3-h5py: apt-get install -y python3-h5py)`;
  }
  return undefined;
})();

const dir = mkdtempSync(join(tmpdir(), 'rxrl-d4rl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function py(args: string[]): string {
  const r = spawnSync(PY, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`write_d4rl.py ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

interface PyValues {
  observations: number[];
  actions: number[];
  rewards: number[];
  terminals: number[];
  timeouts: number[];
  next_observations: number[];
  qpos: number[];
  qvel: number[];
}

function pyWrite(mode: string): { path: string; values: PyValues } {
  const path = join(dir, `py-${mode}.hdf5`);
  return { path, values: JSON.parse(py(['write', mode, path])) as PyValues };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof D4rlError, `expected a D4rlError, got ${String(e)}`);
    return e.message;
  }
  assert.fail('expected the dataset to be refused');
}

/** A small valid dataset made here: 3 episodes (terminal, timeout, terminal) and 2 trailing rows. */
function synthetic(): D4rlDataset {
  const n = 12;
  const obsDim = 11;
  const actDim = 3;
  const f = (len: number, k: number) => Float32Array.from({ length: len }, (_, i) => Math.fround(Math.sin(i * k) * 10 + i / 7));
  const terminals = new Uint8Array(n);
  const timeouts = new Uint8Array(n);
  terminals[2] = 1;
  timeouts[6] = 1;
  terminals[9] = 1;
  timeouts[9] = 1; // both flags on one row: one episode end
  return {
    n,
    obsDim,
    actDim,
    observations: f(n * obsDim, 0.3),
    actions: f(n * actDim, 1.1).map((x) => Math.fround(Math.tanh(x))),
    rewards: f(n, 0.7),
    terminals,
    timeouts,
    nextObservations: f(n * obsDim, 0.9),
    qpos: Float64Array.from({ length: n * 6 }, (_, i) => Math.cos(i) * 1.000000001),
    nq: 6,
    qvel: Float64Array.from({ length: n * 6 }, (_, i) => Math.sin(i) / 3),
    nv: 6,
  };
}

describe('a file written by h5py (independent writer)', { skip: noH5py }, () => {
  test('loads exactly: float64 observations, float16 actions, big-endian rewards, h5py booleans, nested infos', async () => {
    const { path, values } = pyWrite('good');
    const d = await loadD4rl(path, { envId: 'Hopper-v4' });
    assert.equal(d.n, 25);
    assert.equal(d.obsDim, 11);
    assert.equal(d.actDim, 3);
    assert.equal(d.nq, 6);
    assert.equal(d.nv, 6);
    assert.ok(d.observations instanceof Float32Array && d.terminals instanceof Uint8Array && d.qpos instanceof Float64Array);
    // float64 → float32 is a rounding; float16 and float32 sources widen exactly; qpos stays float64.
    assert.deepEqual(Array.from(d.observations), values.observations.map(Math.fround));
    assert.deepEqual(Array.from(d.actions), values.actions);
    assert.deepEqual(Array.from(d.rewards), values.rewards.map(Math.fround));
    assert.deepEqual(Array.from(d.terminals), values.terminals);
    assert.deepEqual(Array.from(d.timeouts), values.timeouts);
    assert.deepEqual(Array.from(d.nextObservations!), values.next_observations);
    assert.deepEqual(Array.from(d.qpos!), values.qpos);
    assert.deepEqual(Array.from(d.qvel!), values.qvel);
    assert.deepEqual(d.attrs, { env_id: 'Hopper-v4', seed: 7 });
    const eps = episodesOf(d);
    assert.deepEqual(
      eps.map((e) => [e.start, e.length, e.terminated, e.truncated]),
      [
        [0, 7, true, false],
        [7, 8, false, true],
        [15, 7, true, false],
      ],
    );
  });

  test('a NaN is refused naming the file, the key and the index', async () => {
    const { path } = pyWrite('nan');
    assert.equal(await refusal(loadD4rl(path)), `${path}: observations[12, 3] is NaN`);
  });

  test('an infinity in infos/qvel is refused by key and index', async () => {
    const { path } = pyWrite('inf');
    assert.equal(await refusal(loadD4rl(path)), `${path}: infos/qvel[4, 2] is -Infinity`);
  });

  test('a missing required key is refused naming it', async () => {
    const { path } = pyWrite('missing');
    assert.match(await refusal(loadD4rl(path)), /: missing required key "timeouts" \(the file has: actions, infos, metadata, /);
  });

  test('mismatched lengths are refused naming the key and both lengths', async () => {
    const { path } = pyWrite('mismatch');
    assert.match(await refusal(loadD4rl(path)), /: actions has 24 rows but observations has 25/);
  });

  test('the wrong observation size for the env is refused; without an env the file loads', async () => {
    const { path } = pyWrite('wrongobs');
    assert.equal(await refusal(loadD4rl(path, { envId: 'Hopper-v4' })), `${path}: observations have 12 columns but Hopper-v4 observations have 11`);
    assert.equal((await loadD4rl(path)).obsDim, 12);
  });

  test('a flag other than 0/1 is refused by index', async () => {
    const { path } = pyWrite('badflag');
    assert.equal(await refusal(loadD4rl(path)), `${path}: terminals[5] is 2; flags must be 0 or 1`);
  });

  test('strings where numbers belong, and a value beyond float32, are refused by key (and index)', async () => {
    const str = pyWrite('strings').path;
    assert.equal(await refusal(loadD4rl(str)), `${str}: rewards holds string data; expected numbers`);
    const huge = pyWrite('huge').path;
    assert.equal(await refusal(loadD4rl(huge)), `${huge}: rewards[7] is 1e+39, beyond the float32 range`);
  });

  test('h5py reads what writeD4rl wrote: layout, dtypes, gzip, values, attributes', async () => {
    const d = synthetic();
    const path = join(dir, 'for-h5py.hdf5');
    await writeD4rl(path, d, { attrs: { env_id: 'Hopper-v4', note: 'test' } });
    const r = JSON.parse(py(['read', path])) as {
      datasets: Record<string, { dtype: string; shape: number[]; compression: string | null; values: number[] }>;
      attrs: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(r.datasets).sort(), [
      'actions',
      'infos/qpos',
      'infos/qvel',
      'next_observations',
      'observations',
      'rewards',
      'terminals',
      'timeouts',
    ]);
    const ds = r.datasets;
    assert.deepEqual([ds.observations!.dtype, ds.observations!.shape], ['<f4', [12, 11]]);
    assert.deepEqual([ds.actions!.dtype, ds.actions!.shape], ['<f4', [12, 3]]);
    assert.deepEqual([ds.rewards!.dtype, ds.rewards!.shape], ['<f4', [12]]);
    assert.deepEqual([ds.terminals!.dtype, ds.terminals!.shape], ['|u1', [12]]);
    assert.deepEqual([ds['infos/qpos']!.dtype, ds['infos/qpos']!.shape], ['<f8', [12, 6]]);
    assert.equal(ds.observations!.compression, 'gzip');
    assert.deepEqual(ds.observations!.values, Array.from(d.observations));
    assert.deepEqual(ds.actions!.values, Array.from(d.actions));
    assert.deepEqual(ds.timeouts!.values, Array.from(d.timeouts));
    assert.deepEqual(ds['infos/qvel']!.values, Array.from(d.qvel!));
    assert.deepEqual(r.attrs, { env_id: 'Hopper-v4', note: 'test' });
  });
});

describe('writeD4rl → loadD4rl (no Python)', () => {
  test('round trip is exact, optional keys included and absent', async () => {
    const d = synthetic();
    const path = join(dir, 'rt.hdf5');
    await writeD4rl(path, d, { attrs: { env_id: 'Hopper-v4', seed: 3 } });
    const back = await loadD4rl(path, { envId: 'Hopper-v4' });
    assert.deepEqual({ ...back, attrs: undefined }, { ...d, attrs: undefined });
    assert.deepEqual(back.attrs, { env_id: 'Hopper-v4', seed: 3 });
    const { nextObservations: _n, qpos: _q, nq: _nq, qvel: _v, nv: _nv, ...bare } = d;
    const barePath = join(dir, 'bare.hdf5');
    await writeD4rl(barePath, bare, { compression: 0 });
    const b = await loadD4rl(barePath);
    assert.equal(b.nextObservations, undefined);
    assert.equal(b.qpos, undefined);
    assert.deepEqual(Array.from(b.actions), Array.from(d.actions));
    assert.deepEqual(b.attrs, {});
  });

  test('writing refuses bad data by key and index and leaves no file behind', async () => {
    const d = synthetic();
    const obs = d.observations.slice();
    obs[3 * 11 + 4] = Number.NaN;
    const path = join(dir, 'never.hdf5');
    assert.equal(await refusal(writeD4rl(path, { ...d, observations: obs })), `${path}: observations[3, 4] is NaN`);
    assert.match(await refusal(writeD4rl(path, { ...d, rewards: d.rewards.subarray(1) })), /: rewards has 11 values; expected 12/);
    assert.match(await refusal(writeD4rl(path, { ...d, nq: undefined })), /: infos\/qpos given without its width \(nq\)/);
    assert.match(await refusal(writeD4rl(join(dir, 'no', 'such', 'dir.hdf5'), d)), /cannot create the file/);
    assert.equal(existsSync(path), false);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  test('env checks: qpos width against nq, discrete actions in range, unknown env id', async () => {
    const d = synthetic();
    const narrow = join(dir, 'narrow-qpos.hdf5');
    await writeD4rl(narrow, { ...d, qpos: d.qpos!.subarray(0, 12 * 5), nq: 5 });
    assert.equal(await refusal(loadD4rl(narrow, { envId: 'Hopper-v4' })), `${narrow}: infos/qpos has 5 columns but Hopper-v4 has nq = 6`);

    const n = 4;
    const cart: D4rlDataset = {
      n,
      obsDim: 4,
      actDim: 1,
      observations: new Float32Array(n * 4),
      actions: Float32Array.from([0, 1, 2, 1]),
      rewards: new Float32Array(n).fill(1),
      terminals: Uint8Array.from([0, 0, 0, 1]),
      timeouts: new Uint8Array(n),
    };
    const cartPath = join(dir, 'cart.hdf5');
    await writeD4rl(cartPath, cart);
    assert.equal(await refusal(loadD4rl(cartPath, { envId: 'CartPole-v1' })), `${cartPath}: actions[2] is 2; CartPole-v1 actions are integers in [0, 2)`);
    await assert.rejects(loadD4rl(cartPath, { envId: 'NoSuchEnv-v0' }), /unknown env id "NoSuchEnv-v0"/);
  });

  test('files that are not D4RL HDF5 are refused naming the path', async () => {
    const missing = join(dir, 'missing.hdf5');
    assert.equal(await refusal(loadD4rl(missing)), `${missing}: no such file`);
    const text = join(dir, 'text.hdf5');
    writeFileSync(text, 'observations,actions\n1,2\n');
    assert.equal(await refusal(loadD4rl(text)), `${text}: not an HDF5 file (no HDF5 signature)`);
    assert.equal(await refusal(loadD4rl(dir)), `${dir}: not a file`);
  });
});

describe('episodesOf', () => {
  test('splits at terminals|timeouts; the trailing unfinished rows are dropped unless kept', () => {
    const d = synthetic();
    const eps = episodesOf(d);
    assert.deepEqual(
      eps.map((e) => [e.start, e.length, e.terminated, e.truncated]),
      [
        [0, 3, true, false],
        [3, 4, false, true],
        [7, 3, true, true],
      ],
    );
    const all = episodesOf(d, { keepPartial: true });
    assert.equal(all.length, 4);
    assert.deepEqual([all[3]!.start, all[3]!.length, all[3]!.terminated, all[3]!.truncated], [10, 2, false, false]);
    // Views of the dataset, row-aligned.
    const e = eps[1]!;
    assert.equal(e.observations.buffer, d.observations.buffer);
    assert.deepEqual(Array.from(e.observations), Array.from(d.observations.subarray(3 * 11, 7 * 11)));
    assert.deepEqual(Array.from(e.actions), Array.from(d.actions.subarray(3 * 3, 7 * 3)));
    assert.deepEqual(Array.from(e.qpos!), Array.from(d.qpos!.subarray(3 * 6, 7 * 6)));
    let ret = 0;
    for (let i = 3; i < 7; i++) ret += d.rewards[i]!;
    assert.equal(e.episodeReturn, ret);
    // Every row belongs to exactly one episode when partial ones are kept.
    assert.equal(
      all.reduce((s, x) => s + x.length, 0),
      d.n,
    );
  });
});

describe('the tiny Hopper dataset (test/data/hopper-tiny.hdf5)', () => {
  test('is valid for Hopper-v4, has both end kinds, and its arrays agree with its own qpos/qvel', async () => {
    const d = await loadD4rl(TINY, { envId: 'Hopper-v4' });
    assert.ok(d.terminals.some((x) => x === 1) && d.timeouts.some((x) => x === 1));
    const eps = episodesOf(d, { keepPartial: true });
    assert.ok(eps.length >= 5);
    assert.ok(
      eps.every((e) => e.terminated || e.truncated),
      'every episode ends',
    );
    assert.ok(eps.every((e) => e.length <= 20));
    for (let t = 0; t < d.n; t++) {
      // Hopper-v4's observation: qpos[1:] then qvel clipped to ±10, from the state before the step.
      const want: number[] = [];
      for (let j = 1; j < 6; j++) want.push(Math.fround(d.qpos![t * 6 + j]!));
      for (let j = 0; j < 6; j++) want.push(Math.fround(Math.min(10, Math.max(-10, d.qvel![t * 6 + j]!))));
      assert.deepEqual(Array.from(d.observations.subarray(t * 11, (t + 1) * 11)), want, `row ${t}`);
    }
    for (const e of eps) {
      const next = e.nextObservations!;
      assert.deepEqual(Array.from(next.subarray(0, (e.length - 1) * 11)), Array.from(e.observations.subarray(11)));
    }
  });

  test('the documented generator reproduces the committed file', async () => {
    const fresh = await makeTinyHopper();
    const d = await loadD4rl(TINY);
    assert.deepEqual({ ...d, attrs: undefined }, { ...fresh, attrs: undefined });
    assert.match(String(d.attrs?.generator), /make-tiny-d4rl\.ts test\/data\/hopper-tiny\.hdf5/);
  });
});
