/**
 * The actor loop (`rxrl actor`, and each child of `rxrl run --actors N`): join a run, then for
 * every task — or every few tasks, when the pipeline's actor side steps several as one batch
 * (`ActorPart.rolloutMany`) and more than one is already handed to this actor —
 *
 *   take a task (a lease) → pick up newer weights → rollout → publishGroups
 *
 * The pipeline's actor side (`PipelineDef.actor`) builds the envs and the policy from the run's
 * config, which the learner published; weights are loaded between groups only, so a group is
 * sampled by exactly one policy version (the one its trajectories carry).
 *
 * ```ts
 * const { groups } = await runActor(redisActor('redis://127.0.0.1:6379', 'run-1'));
 * ```
 */
import { lastValueFrom, of } from 'rxjs';
import type { Batch, Group } from '../../lib/data.ts';
import { decodeWeights, encodeEnvelope, weightsProblems } from '../../lib/async/messages.ts';
import { configHash } from '../../lib/async/config-hash.ts';
import { AsyncError, type ActorTransport, type TaskLease } from '../../lib/async/transport.ts';
import { publishGroups } from '../../operators/publishGroups.ts';
import { decodePipelineConfig } from '../registry.ts';

const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ActorOutcome {
  /** Groups this actor published. */
  groups: number;
}

/** Runs one actor until the learner ends the run (see the module comment). */
export async function runActor(transport: ActorTransport, opts: { shouldStop?: () => boolean; batch?: number } = {}): Promise<ActorOutcome> {
  const { where } = transport;
  const info = await transport.runInfo();
  const { def, config } = decodePipelineConfig(info.config, [], `${where}: meta.info.config`);
  if (def.name !== info.pipeline) throw new AsyncError(`${where}: meta.info.pipeline: ${info.pipeline}, but its config is a ${def.name} config`);
  if (configHash(config) !== info.configHash)
    throw new AsyncError(`${where}: meta.info.configHash: ${info.configHash} does not match its config (${configHash(config)})`);
  if (!def.actor) throw new AsyncError(`${where}: pipeline ${def.name} has no actor side`);
  const part = await def.actor();
  let version = -1;
  let published = 0;
  const sink = (lease: TaskLease) => ({
    publish: async (group: Group, batch: Batch<Group>) => {
      const text = encodeEnvelope({
        run: info.run,
        configHash: info.configHash,
        task: lease.task.task,
        actor: transport.name,
        policyVersion: version,
        rolloutMs: batch.metrics['async/rollout_ms'] ?? 0,
        idleMs: batch.metrics['async/idle_ms'] ?? 0,
        group,
      });
      await transport.publish(lease, text);
    },
  });
  /** Loads weights newer than the ones held; waits for the first version. */
  const syncWeights = async () => {
    for (;;) {
      const w = await transport.weights(version);
      if (w) {
        const { version: v, record } = decodeWeights(w.bytes, where);
        const problems = weightsProblems(record, part.params.map);
        if (problems.length > 0) throw new AsyncError(`${where}: weights of version ${v} do not fit the policy: ${problems.join('; ')}`);
        part.params.load(record);
        version = v;
      }
      if (version >= 0) return;
      await sleep(50);
    }
  };
  try {
    let idleSince = now();
    let finished = false;
    for (;;) {
      if (finished || opts.shouldStop?.()) break;
      const next = await transport.nextTask(1000);
      if (next === 'finished') break;
      if (!next) continue;
      // Tasks already handed to this actor are taken together (one batched rollout), up to maxTasks.
      const leases = [next];
      const most = part.rolloutMany ? Math.min(part.maxTasks ?? 1, transport.assigned ? Number.POSITIVE_INFINITY : (opts.batch ?? 1)) : 1;
      while (leases.length < most) {
        const more = await transport.nextTask(0);
        if (more === 'finished') finished = true;
        if (!more || more === 'finished') break;
        leases.push(more);
      }
      await syncWeights();
      const t0 = now();
      const groups =
        leases.length > 1 && part.rolloutMany
          ? part.rolloutMany(
              leases.map((l) => l.task),
              version,
            )
          : [part.rollout(next.task, version)];
      // Each group is charged its share of the batch's time; the wait before it goes to the first.
      const rolloutMs = (now() - t0) / leases.length;
      for (const [j, l] of leases.entries()) {
        const batch: Batch<Group> = {
          iteration: l.task.task,
          groups: [groups[j]!],
          metrics: { 'async/rollout_ms': rolloutMs, 'async/idle_ms': j === 0 ? t0 - idleSince : 0 },
        };
        await lastValueFrom(of(batch).pipe(publishGroups(sink(l))));
        published++;
      }
      idleSince = now();
    }
  } finally {
    part.close();
    await transport.close();
  }
  return { groups: published };
}
