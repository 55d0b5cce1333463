/**
 * Makes the D4RL-layout datasets of the online-DT experiments for one MuJoCo task:
 *
 *   data/<env>-random.hdf5         a uniform random policy (`--random` transitions)
 *   data/<env>-medium.hdf5         rollouts of the TD3 policy saved when its D4RL-normalised
 *                                  evaluation score first reached `--score` (default 30; D4RL's
 *                                  "medium" is about a third of expert), exploration noise
 *                                  `--medium-noise` (default 0.1·a_max)
 *   data/<env>-medium-replay.hdf5  that policy's replay buffer up to that point (uniform random
 *                                  warm-up included, as D4RL's), whole episodes kept at random
 *                                  (seeded) down to `--replay` transitions
 *
 * Every row carries `infos/qpos` / `infos/qvel` from the simulator's snapshot before the action,
 * so reset points exist. The replay buffer holds no simulator state, so the script replays its
 * actions from the run's first reset through a fresh copy of the env (autoreset, the same seed)
 * and checks that every observation and reward comes out bit-identical before it records the
 * states: the buffer is the pipeline's, the states are exactly those the run visited.
 *
 * The behaviour policy is trained by the `td3` pipeline (pipelines/examples/td3-hopper.yaml with
 * `env.id` set, evaluation every 2 iterations, stop rule `eval/normalized_score ≥ --score`) in
 * `--run` (default runs/datasets/<env>-td3): rerunning the command resumes that run from its last
 * checkpoint (Ctrl-C stops it with a checkpoint), and once the run has stopped on its rule the
 * datasets are written from its final checkpoint. `--train-only` stops after training.
 *
 *   npx tsx pipelines/online-dt/make-datasets.ts --env Hopper-v4 [--out data] [--seed 0]
 *       [--random 10000] [--medium 25000] [--replay 25000] [--score 30] [--max-iterations 400]
 *       [--kinds random,medium,medium-replay] [--train-only] [--run DIR] [--set KEY=VALUE ...]
 *
 * `--set` overrides a key of the td3 example for a new run (e.g. `--set networks.hidden=[128,128]`);
 * on resume the run's own config.json holds them.
 *
 * File attributes record the env, the kind, the policy's iteration, env steps and evaluation
 * score, and the command that regenerates the file (docs/datasets.md lists them).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../../lib/backend.ts';
import { writeD4rl, type D4rlDataset } from '../../lib/datasets/d4rl.ts';
import { compiledModel, MUJOCO_ENV_IDS, type MujocoEnvId } from '../../lib/envs/mujoco/loader.ts';
import { makeEnv, makeVectorEnv } from '../../lib/envs/registry.ts';
import type { EnvSnapshot } from '../../lib/envs/types.ts';
import { readCheckpoint } from '../../lib/io/checkpoint.ts';
import { DeterministicActor } from '../../lib/models/critic.ts';
import type { ParamRecord } from '../../lib/models/params.ts';
import { Rng } from '../../lib/random.ts';
import type { Transitions } from '../../lib/transitions.ts';
import { explorationActions, randomActions } from '../../operators/collectTransitions.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { readJsonl } from '../../lib/io/metrics-jsonl.ts';
import { CHECKPOINT_FILE, runPipeline } from '../runner.ts';

const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'td3-hopper.yaml');
const KINDS = ['random', 'medium', 'medium-replay'] as const;
type Kind = (typeof KINDS)[number];

/** Rows of a D4RL dataset as they are recorded. */
class Recorder {
  readonly obs: number[] = [];
  readonly act: number[] = [];
  readonly rew: number[] = [];
  readonly term: number[] = [];
  readonly tout: number[] = [];
  readonly qpos: number[] = [];
  readonly qvel: number[] = [];
  n = 0;
  constructor(
    readonly obsDim: number,
    readonly actDim: number,
    readonly nq: number,
    readonly nv: number,
  ) {}

  /** One transition: the observation, the simulator state that produced it, the action, what followed. */
  push(obs: ArrayLike<number>, snapshot: EnvSnapshot, action: ArrayLike<number>, reward: number, terminated: boolean, truncated: boolean): void {
    for (let j = 0; j < this.obsDim; j++) this.obs.push(obs[j]!);
    for (let j = 0; j < this.actDim; j++) this.act.push(action[j]!);
    // Snapshot layout (lib/envs/mujoco/locomotion.ts): [time, qpos(nq), qvel(nv), ...].
    const st = snapshot.state;
    for (let j = 0; j < this.nq; j++) this.qpos.push(st[1 + j]!);
    for (let j = 0; j < this.nv; j++) this.qvel.push(st[1 + this.nq + j]!);
    this.rew.push(reward);
    this.term.push(terminated ? 1 : 0);
    this.tout.push(truncated && !terminated ? 1 : 0);
    this.n++;
  }

  /** The rows of the episodes whose indices are given (episodes as [start, end) row ranges). */
  toDataset(attrs: Record<string, string | number>, keep?: readonly (readonly [number, number])[]): D4rlDataset {
    const ranges = keep ?? [[0, this.n] as const];
    const rows = ranges.flatMap(([a, b]) => Array.from({ length: b - a }, (_, k) => a + k));
    const pick = (src: number[], w: number, Ctor: Float32ArrayConstructor | Float64ArrayConstructor) => {
      const out = new Ctor(rows.length * w);
      rows.forEach((r, i) => {
        for (let j = 0; j < w; j++) out[i * w + j] = src[r * w + j]!;
      });
      return out;
    };
    return {
      n: rows.length,
      obsDim: this.obsDim,
      actDim: this.actDim,
      observations: pick(this.obs, this.obsDim, Float32Array) as Float32Array,
      actions: pick(this.act, this.actDim, Float32Array) as Float32Array,
      rewards: pick(this.rew, 1, Float32Array) as Float32Array,
      terminals: Uint8Array.from(rows.map((r) => this.term[r]!)),
      timeouts: Uint8Array.from(rows.map((r) => this.tout[r]!)),
      qpos: pick(this.qpos, this.nq, Float64Array) as Float64Array,
      nq: this.nq,
      qvel: pick(this.qvel, this.nv, Float64Array) as Float64Array,
      nv: this.nv,
      attrs,
    };
  }

  /** Complete episodes as [start, end) row ranges (a trailing unfinished episode is left out). */
  episodes(): [number, number][] {
    const out: [number, number][] = [];
    let start = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.term[i] || this.tout[i]) {
        out.push([start, i + 1]);
        start = i + 1;
      }
    }
    return out;
  }
}

async function recorderFor(envId: MujocoEnvId, obsDim: number, actDim: number): Promise<Recorder> {
  const model = await compiledModel(envId);
  return new Recorder(obsDim, actDim, model.nq, model.nv);
}

/**
 * `n` transitions of a policy on one env copy, episodes back to back (episode k reset with seed
 * `seed + k`), each row with the simulator state before its action. The last episode is cut at n
 * (unflagged, as D4RL's files end).
 */
export async function rolloutDataset(
  envId: MujocoEnvId,
  policy: (obs: Float32Array) => Float32Array,
  n: number,
  seed: number,
  attrs: Record<string, string | number>,
): Promise<D4rlDataset> {
  const env = await makeEnv(envId);
  if (env.actionSpace.kind !== 'box') throw new Error(`${envId}: expected a Box action space`);
  const rec = await recorderFor(envId, env.observationSpace.shape[0]!, env.actionSpace.shape[0]!);
  let episode = 0;
  let obs = Float32Array.from(env.reset(seed).observation as ArrayLike<number>);
  while (rec.n < n) {
    const snap = env.snapshot();
    const a = policy(obs);
    const res = env.step(a);
    rec.push(obs, snap, a, res.reward, res.terminated, res.truncated);
    if (res.terminated || res.truncated) obs = Float32Array.from(env.reset(seed + ++episode).observation as ArrayLike<number>);
    else obs = Float32Array.from(res.observation as ArrayLike<number>);
  }
  env.close?.();
  return rec.toDataset(attrs);
}

/**
 * The simulator states of a td3 run's replay buffer: replays the buffer's actions (one env copy,
 * chronological rows) from the run's first reset (`venv.reset(seed)`, autoreset next-step, as
 * `collectTransitions` does) and records every row with its state. Throws at the first row whose
 * observation or reward does not come out bit-identical.
 */
export async function replayBuffer(
  envId: MujocoEnvId,
  rows: Transitions,
  seed: number,
  envOptions: Record<string, number | string | boolean>,
  attrs: Record<string, string | number>,
  maxRows: number,
): Promise<D4rlDataset> {
  const venv = await makeVectorEnv(envId, 1, { ...envOptions, seed }, { autoreset: 'next-step' });
  const rec = await recorderFor(envId, venv.obsDim, venv.actDim);
  const O = rows.obsDim;
  const A = rows.actDim;
  venv.reset(seed);
  let ended = false;
  const noop = new Float32Array(A);
  for (let i = 0; i < rows.n; i++) {
    if (ended) {
      const r = venv.step(noop); // the autoreset step: no transition
      if (r.stepped[0]) throw new Error(`replay: expected the autoreset step before row ${i}`);
      ended = false;
    }
    const obs = venv.observations.slice(0, O);
    for (let j = 0; j < O; j++) {
      if (obs[j] !== rows.obs[i * O + j]) throw new Error(`replay: row ${i}: observation[${j}] is ${obs[j]}, the buffer has ${rows.obs[i * O + j]}`);
    }
    const snap = venv.snapshot().envs[0]!;
    const a = rows.actions.subarray(i * A, (i + 1) * A);
    const res = venv.step(a);
    if (Math.fround(res.rewards[0]!) !== rows.rewards[i]) throw new Error(`replay: row ${i}: reward ${res.rewards[0]} but the buffer has ${rows.rewards[i]}`);
    const term = res.terminated[0] === 1;
    const trunc = res.truncated[0] === 1;
    if ((term ? 1 : 0) !== rows.dones[i]) throw new Error(`replay: row ${i}: terminated ${term} but the buffer has done ${rows.dones[i]}`);
    rec.push(obs, snap, a, rows.rewards[i]!, term, trunc);
    ended = term || trunc;
  }
  venv.close();
  // Down to maxRows: whole episodes drawn at random (seeded), kept in their original order.
  const eps = rec.episodes();
  if (rec.n <= maxRows) return rec.toDataset(attrs);
  const rng = new Rng(seed, 'medium-replay/subsample');
  const order = eps.map((_, k) => k);
  for (let k = order.length - 1; k > 0; k--) {
    const j = rng.int(k + 1);
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  const kept: number[] = [];
  let total = 0;
  for (const k of order) {
    const [a, b] = eps[k]!;
    if (total + (b - a) > maxRows) continue;
    kept.push(k);
    total += b - a;
  }
  kept.sort((x, y) => x - y);
  return rec.toDataset(
    { ...attrs, subsampled_from: rec.n },
    kept.map((k) => eps[k]!),
  );
}

/** The buffer rows of a td3 checkpoint in collection order (refuses a buffer that wrapped around). */
function bufferRows(state: Record<string, unknown>): Transitions {
  const b = state['buffer'] as { capacity: number; ptr: number; added: number; rows: Transitions } | undefined;
  if (!b) throw new Error('the checkpoint has no replay buffer (not a td3 run?)');
  if (b.added > b.capacity) throw new Error(`the replay buffer wrapped around (${b.added} transitions, capacity ${b.capacity}); its start cannot be replayed`);
  return b.rows;
}

/** The actor of a td3 checkpoint (weights `actor/…`). */
function actorOf(
  params: Record<string, { shape: readonly number[]; data: unknown }>,
  obsDim: number,
  low: ArrayLike<number>,
  high: ArrayLike<number>,
  hidden: number[],
) {
  const actor = new DeterministicActor({ obsDim, low, high, hidden });
  const rec: Record<string, ParamRecord> = {};
  for (const [k, v] of Object.entries(params)) if (k.startsWith('actor/')) rec[k.slice('actor/'.length)] = { shape: v.shape, data: v.data as Float32Array };
  actor.params.load(rec);
  return actor;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      env: { type: 'string', default: 'Hopper-v4' },
      out: { type: 'string', default: 'data' },
      run: { type: 'string' },
      seed: { type: 'string', default: '0' },
      random: { type: 'string', default: '10000' },
      medium: { type: 'string', default: '25000' },
      replay: { type: 'string', default: '25000' },
      score: { type: 'string', default: '30' },
      'medium-noise': { type: 'string', default: '0.1' },
      'max-iterations': { type: 'string', default: '400' },
      kinds: { type: 'string', default: KINDS.join(',') },
      'train-only': { type: 'boolean', default: false },
      set: { type: 'string', multiple: true, default: [] },
    },
  });
  const envId = values.env as MujocoEnvId;
  if (!MUJOCO_ENV_IDS.includes(envId)) throw new Error(`--env: expected one of ${MUJOCO_ENV_IDS.join(', ')}, got ${values.env}`);
  const int = (k: string, v: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new Error(`--${k}: expected a non-negative integer, got ${v}`);
    return x;
  };
  const seed = int('seed', values.seed);
  const kinds = values.kinds.split(',').map((k) => k.trim()) as Kind[];
  for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`--kinds: unknown kind '${k}' (known: ${KINDS.join(', ')})`);
  const score = Number(values.score);
  const noise = Number(values['medium-noise']);
  const runDir = values.run ?? join('runs', 'datasets', `${envId}-td3-${seed}`);
  const stem = envId.toLowerCase().replace(/-v\d+$/, '');
  const command = (kind: Kind) =>
    `npx tsx pipelines/online-dt/make-datasets.ts --env ${envId} --seed ${seed} --kinds ${kind} --random ${values.random} --medium ${values.medium} --replay ${values.replay} --score ${values.score} --medium-noise ${values['medium-noise']} --max-iterations ${values['max-iterations']}${values.set.map((x) => ` --set '${x}'`).join('')}`;
  await initBackend({ quiet: true });
  mkdirSync(values.out, { recursive: true });
  const path = (kind: Kind) => join(values.out, `${stem}-${kind}.hdf5`);
  const t0 = Date.now();
  const log = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${msg}`);

  if (kinds.includes('random') && !values['train-only']) {
    const env = await makeEnv(envId);
    if (env.actionSpace.kind !== 'box') throw new Error('expected a Box');
    const { low, high } = env.actionSpace;
    const rng = new Rng(seed, 'random-policy');
    const data = await rolloutDataset(envId, () => randomActions(1, low, high, rng), int('random', values.random), seed, {
      env_id: envId,
      kind: 'random',
      command: command('random'),
    });
    await writeD4rl(path('random'), data, { stateDtype: 'float32', ...(data.attrs ? { attrs: data.attrs } : {}) });
    log(`${path('random')}: ${data.n} transitions, ${(statSync(path('random')).size / 1e6).toFixed(2)} MB`);
  }
  if (!kinds.includes('medium') && !kinds.includes('medium-replay') && !values['train-only']) return;

  // The behaviour policy: the td3 pipeline until its normalised score reaches --score (resumable).
  const ckpt = join(runDir, CHECKPOINT_FILE);
  const reached = () => {
    const rows = existsSync(join(runDir, 'metrics.jsonl')) ? readJsonl(join(runDir, 'metrics.jsonl')) : [];
    return rows.find((m) => (m['eval/normalized_score'] ?? Number.NEGATIVE_INFINITY) >= score);
  };
  let hit = reached();
  if (!hit) {
    let stop = false;
    process.on('SIGINT', () => {
      if (stop) process.exit(130);
      stop = true;
      log('Ctrl-C: stopping after this iteration (with a checkpoint); rerun the command to resume');
    });
    const progress: MetricsSink = {
      write: (m) => {
        if (m['eval/return'] !== undefined)
          log(
            `iteration ${m.iteration}: env steps ${m['rollout/total_env_steps']}, eval return ${m['eval/return'].toFixed(1)}, normalised ${m['eval/normalized_score']?.toFixed(1)}, critic loss ${m['td3/critic_loss']?.toFixed(3)}`,
          );
      },
    };
    const iterations = `iterations=${int('max-iterations', values['max-iterations'])}`;
    const opts = { sinks: [progress], shouldStop: () => stop };
    if (existsSync(join(runDir, 'config.json'))) {
      log(`resuming ${runDir}`);
      await runPipeline({ resume: runDir, sets: [iterations], ...opts });
    } else {
      const sets = [
        `env.id=${envId}`,
        `seed=${seed}`,
        iterations,
        'evaluation.every=2',
        'checkpointEvery=2',
        'stop.metric=eval/normalized_score',
        `stop.atLeast=${score}`,
        ...values.set,
      ];
      log(`training the behaviour policy in ${runDir}`);
      await runPipeline({ file: EXAMPLE, sets, out: runDir, ...opts });
    }
    hit = reached();
    if (!hit) {
      log(`the policy has not reached a normalised score of ${score} yet; rerun to continue`);
      return;
    }
  }
  const ck = await readCheckpoint(ckpt);
  const at = Number(ck.state['iteration']);
  if (at !== hit.iteration) throw new Error(`${ckpt} is of iteration ${at}, but the score was reached at iteration ${hit.iteration}`);
  const normalised = hit['eval/normalized_score']!;
  log(`policy of iteration ${at}: normalised score ${normalised.toFixed(1)} (eval return ${hit['eval/return']!.toFixed(1)})`);
  if (values['train-only']) return;
  const cfg = ck.config as { env: { options: Record<string, number | string | boolean> }; networks: { hidden: number[] } };
  const provenance = { env_id: envId, policy_iteration: at, policy_env_steps: hit['rollout/total_env_steps'] ?? 0, policy_normalized_score: normalised };

  if (kinds.includes('medium')) {
    const env = await makeEnv(envId);
    if (env.actionSpace.kind !== 'box') throw new Error('expected a Box');
    const actor = actorOf(ck.params, env.observationSpace.shape[0]!, env.actionSpace.low, env.actionSpace.high, cfg.networks.hidden);
    const rng = new Rng(seed, 'medium-policy');
    const data = await rolloutDataset(envId, (obs) => explorationActions(actor, obs, rng, noise), int('medium', values.medium), seed + 10_000, {
      ...provenance,
      kind: 'medium',
      exploration_noise: noise,
      command: command('medium'),
    });
    actor.dispose();
    await writeD4rl(path('medium'), data, { stateDtype: 'float32', ...(data.attrs ? { attrs: data.attrs } : {}) });
    log(`${path('medium')}: ${data.n} transitions, ${(statSync(path('medium')).size / 1e6).toFixed(2)} MB`);
  }
  if (kinds.includes('medium-replay')) {
    const rows = bufferRows(ck.state);
    const data = await replayBuffer(
      envId,
      rows,
      seed,
      cfg.env.options,
      { ...provenance, kind: 'medium-replay', command: command('medium-replay') },
      int('replay', values.replay),
    );
    await writeD4rl(path('medium-replay'), data, { stateDtype: 'float32', ...(data.attrs ? { attrs: data.attrs } : {}) });
    log(`${path('medium-replay')}: ${data.n} of ${rows.n} buffer transitions, ${(statSync(path('medium-replay')).size / 1e6).toFixed(2)} MB`);
  }
}

if (process.argv[1] !== undefined && resolvePath(process.argv[1]) === import.meta.filename) {
  main().catch((e: unknown) => {
    console.error(`make-datasets: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
