/**
 * The Redis Streams transport (ioredis): a learner and any number of actors on any machines that
 * reach one Redis server. Keys of run R:
 *
 *   rxrl:R:meta      hash: info (RunInfo JSON), status (running | done), maxQueue
 *   rxrl:R:tasks     stream of tasks; consumer group `actors`: each task is delivered to one actor,
 *                    stays pending until that actor publishes its group; a task pending longer
 *                    than `claimAfterMs` (its actor died) is taken over with XAUTOCLAIM
 *   rxrl:R:tasks:last  the highest task number published (a resumed learner publishes no task twice)
 *   rxrl:R:groups    stream of group envelopes; consumer group `learner` (one consumer): acked when
 *                    consumed; trimmed up to the position of the learner's last checkpoint. The
 *                    learner takes entries from its pending list after the last one it received
 *                    (a '>' read only waits for new ones), so a reply lost to a server restart
 *                    loses no entry and changes no order
 *   rxrl:R:dead      dead-letter stream: entries the learner could not decode, with the reason
 *   rxrl:R:weights   hash: version, data (safetensors bytes of that version)
 *
 * An actor publishes its group, acks and deletes its task in one MULTI, so a task is either still
 * pending (and will be redone) or answered — an actor killed mid-group loses at most that group's
 * work. Back-pressure: an actor takes no task while more than `maxQueue` groups wait for the
 * learner. Durability is Redis's: run the server with `--appendonly yes` (and `--appendfsync
 * always` to lose nothing acknowledged by a crash of the server itself). While the server is away
 * (a restart), both ends retry for up to a minute and resend what was unanswered: a group published
 * twice that way is a duplicate the learner skips (a group id is used once).
 *
 * ```ts
 * const learner = redisLearner('redis://127.0.0.1:6379', 'run-1');
 * await learner.open(info, { kind: 'fresh' }, { maxQueue: 8 });
 * const actor = redisActor('redis://127.0.0.1:6379', 'run-1');
 * const lease = await actor.nextTask(1000);
 * ```
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { AsyncError, type ActorTransport, type GroupEntry, type LearnerTransport, type OpenMode, type TaskLease } from './transport.ts';
import { AsyncTask, RunInfo } from './messages.ts';
import { decodeJSON } from '../codec.ts';
import { isLeft } from 'fp-ts/lib/Either.js';

/** `redis://:secret@host:port/0` → `redis://host:port/0` (no password in messages). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** Checks the broker URL's shape before anything connects. */
export function checkBrokerUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AsyncError(`--broker: expected a URL like redis://HOST:PORT, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new AsyncError(`--broker: expected a redis:// or rediss:// URL, got ${u.protocol}//…`);
}

/** How long a lost connection is retried before the run fails (ms). */
const RECONNECT_FOR_MS = 60_000;

async function connect(url: string, where: string): Promise<Redis> {
  checkBrokerUrl(url);
  let connected = false;
  let since = 0;
  const redis = new Redis(url, {
    lazyConnect: true,
    // RESP2: stream replies as nested arrays ([[key, [[id, fields]]]]), the shapes parsed here.
    protocol: 2,
    connectTimeout: 5000,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: () => {
      if (!connected) return null;
      if (since === 0) since = Date.now();
      return Date.now() - since > RECONNECT_FOR_MS ? null : 250;
    },
  });
  let lastError: Error | undefined;
  redis.on('error', (e: Error) => {
    lastError = e;
  });
  redis.on('ready', () => {
    since = 0;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    // ioredis reports "Connection is closed." and keeps the server's reason in its 'error' event.
    const err = [lastError?.message, (e as Error).message].filter((m) => m && !/Connection is closed/.test(m))[0] ?? String((e as Error).message);
    if (/WRONGPASS|NOAUTH|invalid password|AUTH/i.test(err))
      throw new AsyncError(`${where}: the broker refused the credentials (${err.split('\n')[0]}); check the password in --broker`);
    throw new AsyncError(`${where}: cannot reach the broker (${err.split('\n')[0]})`);
  }
  connected = true;
  return redis;
}

const keys = (run: string) => ({
  meta: `rxrl:${run}:meta`,
  tasks: `rxrl:${run}:tasks`,
  tasksLast: `rxrl:${run}:tasks:last`,
  groups: `rxrl:${run}:groups`,
  dead: `rxrl:${run}:dead`,
  weights: `rxrl:${run}:weights`,
});

/** Run names go into key names: letters, digits and `._-` only. */
export function checkRunName(run: string): void {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(run)) throw new AsyncError(`--run: expected 1–128 letters, digits, '.', '_' or '-', got ${JSON.stringify(run)}`);
}

type StreamReply = [string, [string, string[] | null][]][] | null;

function fieldOf(fields: string[] | null, name: string): string | undefined {
  if (!fields) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** The learner's end on Redis (see the module comment). */
export function redisLearner(url: string, run: string): LearnerTransport {
  checkRunName(run);
  const where = `${redactUrl(url)} run ${run}`;
  const k = keys(run);
  let redis: Redis | undefined;
  let reader: Redis | undefined;
  let lastTask = -1;
  const buffer: GroupEntry[] = [];
  /** The id of the last entry received: entries after it are read from the learner's pending list, in order. */
  let lastId = '0';
  const need = (): Redis => {
    if (!redis) throw new AsyncError(`${where}: the learner's transport is not open`);
    return redis;
  };
  return {
    where,
    persistent: true,
    async open(info, mode: OpenMode, opts) {
      redis = await connect(url, where);
      reader = await connect(url, where);
      const raw = (await redis.hget(k.meta, 'info')) as string | null;
      if (raw !== null) {
        const saved = decodeJSON(RunInfo, raw);
        if (isLeft(saved)) throw new AsyncError(`${where}: meta.info is not a run's description (${saved.left[0]})`);
        if (saved.right.pipeline !== info.pipeline)
          throw new AsyncError(
            `${where}: meta.pipeline: the run on this broker is a ${saved.right.pipeline} run, this learner runs ${info.pipeline}; choose another --run`,
          );
        if (saved.right.configHash !== info.configHash)
          throw new AsyncError(
            `${where}: meta.configHash: the run on this broker was started with another config (${saved.right.configHash}, this one ${info.configHash}); choose another --run`,
          );
        if (mode.kind === 'fresh')
          throw new AsyncError(
            `${where}: the run already exists on this broker; resume its run directory (rxrl run --resume DIR --broker …), or choose another --run`,
          );
      } else if (mode.kind === 'resume') {
        throw new AsyncError(
          `${where}: the checkpoint continues this run, but the broker has no such run (another broker, or its data was lost: was appendonly off?)`,
        );
      }
      if (mode.kind !== 'resume') {
        await redis.del(k.meta, k.tasks, k.tasksLast, k.groups, k.dead, k.weights);
        await redis.call('XGROUP', ['CREATE', k.tasks, 'actors', '0', 'MKSTREAM']);
        await redis.call('XGROUP', ['CREATE', k.groups, 'learner', '0', 'MKSTREAM']);
      } else {
        // Entries after the checkpoint's position are delivered again, in the same order. The
        // previous learner's pending list goes first (it may hold entries after the position that
        // it received but did not consume, and not those it consumed): all of them come again.
        await redis.call('XGROUP', ['DELCONSUMER', k.groups, 'learner', 'learner']);
        await redis.call('XGROUP', ['SETID', k.groups, 'learner', mode.position ?? '0']);
      }
      lastId = mode.kind === 'resume' ? (mode.position ?? '0') : '0';
      await redis.hset(k.meta, 'info', JSON.stringify(RunInfo.encode(info)), 'status', 'running', 'maxQueue', String(opts.maxQueue));
      lastTask = Number((await redis.get(k.tasksLast)) ?? -1);
    },
    async publishTasks(tasks) {
      const fresh = tasks.filter((t) => t.task > lastTask);
      if (fresh.length === 0) return;
      const m = need().multi();
      for (const t of fresh) m.call('XADD', [k.tasks, '*', 'task', JSON.stringify(AsyncTask.encode(t))]);
      const top = Math.max(...fresh.map((t) => t.task));
      m.set(k.tasksLast, String(top));
      await m.exec();
      lastTask = top;
    },
    async publishWeights(version, bytes) {
      await need().hset(k.weights, 'version', String(version), 'data', Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
    async next(timeoutMs) {
      if (buffer.length === 0) {
        if (!reader) throw new AsyncError(`${where}: the learner's transport is not open`);
        // Entries are taken from the learner's pending list after the last one received, never
        // straight from a '>' read: a '>' read whose reply was lost (the server restarted after
        // executing it) left its entries pending, and they come first, in stream order.
        const pending = async (r: Redis) => {
          const got = (await r.call('XREADGROUP', ['GROUP', 'learner', 'learner', 'COUNT', '64', 'STREAMS', k.groups, lastId])) as StreamReply;
          for (const [, entries] of got ?? []) for (const [id, fields] of entries) buffer.push({ id, text: fieldOf(fields, 'envelope') ?? '' });
        };
        await pending(reader);
        if (buffer.length === 0) {
          // Wait for new entries (they join the pending list), then take them from it.
          await reader.call('XREADGROUP', [
            'GROUP',
            'learner',
            'learner',
            'COUNT',
            '64',
            'BLOCK',
            String(Math.max(1, Math.round(timeoutMs))),
            'STREAMS',
            k.groups,
            '>',
          ]);
          await pending(reader);
        }
        const last = buffer.at(-1);
        if (last) lastId = last.id;
      }
      return buffer.shift();
    },
    async ack(entry) {
      await need().call('XACK', [k.groups, 'learner', entry.id]);
    },
    async deadLetter(entry, reason) {
      await need()
        .multi()
        .call('XADD', [k.dead, '*', 'entry', entry.id, 'reason', reason, 'envelope', entry.text])
        .call('XACK', [k.groups, 'learner', entry.id])
        .exec();
    },
    async queueDepth() {
      const info = (await need().call('XINFO', ['GROUPS', k.groups])) as unknown[][];
      for (const g of info) {
        const o: Record<string, unknown> = {};
        for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1];
        if (o['name'] === 'learner') {
          const lag = o['lag'];
          if (typeof lag === 'number') return lag + buffer.length;
        }
      }
      return Number(await need().xlen(k.groups));
    },
    async commit(position) {
      await need().call('XTRIM', [k.groups, 'MINID', position]);
    },
    async tasksPublished() {
      return Number((await need().get(k.tasksLast)) ?? -1) + 1;
    },
    async close(finished) {
      try {
        if (finished && redis?.status === 'ready') await redis.hset(k.meta, 'status', 'done');
      } finally {
        redis?.disconnect();
        reader?.disconnect();
        redis = undefined;
        reader = undefined;
      }
    },
  };
}

export interface RedisActorOptions {
  /** This actor's consumer name (default host-pid); a restarted actor of the same name takes its own pending task back at once. */
  name?: string;
  /** A task pending this long (its actor presumably dead) is taken over by another actor. Default 60 000 ms. */
  claimAfterMs?: number;
  /** How long to wait for the learner to create the run. Default 60 000 ms. */
  waitForRunMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An actor's end on Redis (see the module comment). */
export function redisActor(url: string, run: string, opts: RedisActorOptions = {}): ActorTransport {
  checkRunName(run);
  const where = `${redactUrl(url)} run ${run}`;
  const name = opts.name ?? `${hostname()}-${process.pid}`;
  const claimAfter = opts.claimAfterMs ?? 60_000;
  const k = keys(run);
  let redis: Redis | undefined;
  let reader: Redis | undefined;
  let maxQueue = Number.POSITIVE_INFINITY;
  let ownPendingChecked = false;
  const need = async (): Promise<Redis> => {
    redis ??= await connect(url, where);
    return redis;
  };
  const lease = (id: string, fields: string[] | null): TaskLease | undefined => {
    const text = fieldOf(fields, 'task');
    if (text === undefined) return undefined;
    const t = decodeJSON(AsyncTask, text);
    if (isLeft(t)) throw new AsyncError(`${where}: task entry ${id}: ${t.left.join('; ')}`);
    return { id, task: t.right };
  };
  return {
    where,
    name,
    async runInfo() {
      const r = await need();
      const deadline = Date.now() + (opts.waitForRunMs ?? 60_000);
      for (;;) {
        const [raw, mq] = (await r.hmget(k.meta, 'info', 'maxQueue')) as (string | null)[];
        if (raw) {
          const info = decodeJSON(RunInfo, raw);
          if (isLeft(info)) throw new AsyncError(`${where}: meta.info: ${info.left.join('; ')}`);
          maxQueue = Number(mq ?? Number.POSITIVE_INFINITY);
          return info.right;
        }
        if (Date.now() > deadline) throw new AsyncError(`${where}: no such run on the broker (start the learner: rxrl run FILE --broker URL --run ${run})`);
        await sleep(200);
      }
    },
    async nextTask(timeoutMs) {
      const r = await need();
      reader ??= await connect(url, where);
      if ((await r.hget(k.meta, 'status')) === 'done') return 'finished';
      // Back-pressure: no new work while the learner has more than maxQueue groups waiting.
      const info = (await r.call('XINFO', ['GROUPS', k.groups])) as unknown[][];
      for (const g of info) {
        const o: Record<string, unknown> = {};
        for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1];
        if (o['name'] === 'learner' && typeof o['lag'] === 'number' && o['lag'] > maxQueue) {
          await sleep(Math.min(timeoutMs, 100));
          return undefined;
        }
      }
      if (!ownPendingChecked) {
        // A restart under the same name takes its own pending task back first.
        ownPendingChecked = true;
        const mine = (await r.call('XREADGROUP', ['GROUP', 'actors', name, 'COUNT', '1', 'STREAMS', k.tasks, '0'])) as StreamReply;
        const e = mine?.[0]?.[1]?.[0];
        if (e) {
          const l = lease(e[0], e[1]);
          if (l) return l;
        }
      }
      const claimed = (await r.call('XAUTOCLAIM', [k.tasks, 'actors', name, String(claimAfter), '0-0', 'COUNT', '1'])) as [string, [string, string[] | null][]];
      const c = claimed?.[1]?.[0];
      if (c) {
        const l = lease(c[0], c[1]);
        if (l) return l;
      }
      const got = (await reader.call('XREADGROUP', [
        'GROUP',
        'actors',
        name,
        'COUNT',
        '1',
        'BLOCK',
        String(Math.max(1, Math.round(timeoutMs))),
        'STREAMS',
        k.tasks,
        '>',
      ])) as StreamReply;
      const e = got?.[0]?.[1]?.[0];
      return e ? lease(e[0], e[1]) : undefined;
    },
    async weights(since) {
      const r = await need();
      const v = Number((await r.hget(k.weights, 'version')) ?? -1);
      if (!(v > since)) return undefined;
      const [vb, data] = await r.hmgetBuffer(k.weights, 'version', 'data');
      if (!vb || !data) return undefined;
      return { version: Number(vb.toString()), bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    },
    async publish(l, text) {
      const r = await need();
      await r
        .multi()
        .call('XADD', [k.groups, '*', 'envelope', text, 'actor', name])
        .call('XACK', [k.tasks, 'actors', l.id])
        .call('XDEL', [k.tasks, l.id])
        .exec();
    },
    async close() {
      redis?.disconnect();
      reader?.disconnect();
      redis = undefined;
      reader = undefined;
    },
  };
}
