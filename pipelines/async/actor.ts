/**
 * The actor loop (`rxrl actor`, and each child of `rxrl run --actors N`): join a run, then for
 * every task
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
export async function runActor(transport: ActorTransport, opts: { shouldStop?: () => boolean } = {}): Promise<ActorOutcome> {
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
  let lease: TaskLease | undefined;
  const sink = {
    publish: async (group: Group, batch: Batch<Group>) => {
      if (!lease) throw new AsyncError(`${where}: a group without a task`);
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
  };
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
    for (;;) {
      if (opts.shouldStop?.()) break;
      const next = await transport.nextTask(1000);
      if (next === 'finished') break;
      if (!next) continue;
      lease = next;
      await syncWeights();
      const t0 = now();
      const group = part.rollout(next.task, version);
      const rolloutMs = now() - t0;
      const batch: Batch<Group> = { iteration: next.task.task, groups: [group], metrics: { 'async/rollout_ms': rolloutMs, 'async/idle_ms': t0 - idleSince } };
      await lastValueFrom(of(batch).pipe(publishGroups(sink)));
      published++;
      lease = undefined;
      idleSince = now();
    }
  } finally {
    part.close();
    await transport.close();
  }
  return { groups: published };
}
