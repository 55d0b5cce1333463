/**
 * A throwaway `redis-server` for tests: a free loopback port, a temporary directory, AOF on with
 * fsync on every write (so what the server acknowledged survives its own crash), no RDB
 * snapshots. `stop()` ends it and removes the directory. Without `redis-server` on PATH,
 * `redisServerMissing()` says so (tests skip, except under CI, where .ci/run installs it).
 *
 * ```ts
 * const redis = await startRedis();
 * try { … redis.url … } finally { await redis.stop(); }
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
  /** A client (closed by stop). */
  readonly client: Redis;
  stop(): Promise<void>;
}

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
  const proc: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const auth = opts.password ? `:${opts.password}@` : '';
  const url = `redis://${auth}127.0.0.1:${port}`;
  const client = new Redis(url, { protocol: 2, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start: ${(e as Error).message}`);
      }
      client.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    port,
    client,
    async stop() {
      client.disconnect();
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
