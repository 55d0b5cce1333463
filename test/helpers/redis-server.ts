/**
 * A throwaway `redis-server` for tests: a free loopback port, a temporary directory, AOF on with
 * fsync on every write (so what the server acknowledged survives its own crash), no RDB
 * snapshots. `restart(signal)` ends the server (SIGTERM: a clean shutdown; SIGKILL: a crash) and
 * starts it again on the same port and directory, so all it knows afterwards is what its AOF
 * kept. `stop()` ends it and removes the directory. Without `redis-server` on PATH,
 * `redisServerMissing()` says so (tests skip, except under CI, where .ci/run installs it).
 *
 * ```ts
 * const redis = await startRedis();
 * try { … redis.url … await redis.restart('SIGKILL'); … } finally { await redis.stop(); }
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A reason to skip when redis-server is not installed (undefined when it is, or under CI). */
export function redisServerMissing(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  if (process.env['CI']) throw new Error('redis-server is not installed (.ci/run installs the Debian package redis-server)');
  return 'redis-server is not installed (apt-get install redis-server)';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** A client (a new one after a restart; closed by stop). */
  readonly client: Redis;
  /** Ends the server with `signal`, waits `downMs`, starts it again on the same port and directory. */
  restart(signal?: 'SIGTERM' | 'SIGKILL', downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

export async function startRedis(opts: { password?: string } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    '--daemonize',
    'no',
  ];
  if (opts.password) args.push('--requirepass', opts.password);
  const auth = opts.password ? `:${opts.password}@` : '';
  const url = `redis://${auth}127.0.0.1:${port}`;
  const launch = async (): Promise<{ proc: ChildProcess; client: Redis }> => {
    const proc: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
    const client = new Redis(url, { protocol: 2, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => {});
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await client.connect();
        await client.ping();
        return { proc, client };
      } catch (e) {
        if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          throw new Error(`redis-server on port ${port} did not start: ${(e as Error).message}`);
        }
        client.disconnect();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  let server = await launch();
  const end = async (signal: 'SIGTERM' | 'SIGKILL') => {
    server.client.disconnect();
    if (server.proc.exitCode === null && server.proc.signalCode === null) {
      const done = exited(server.proc);
      server.proc.kill(signal);
      await done;
    }
  };
  return {
    url,
    port,
    get client() {
      return server.client;
    },
    async restart(signal = 'SIGTERM', downMs = 0) {
      await end(signal);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      server = await launch();
    },
    async stop() {
      await end('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
