// `publishGroups`: the actor's sink of finished groups — documented on the exported `publishGroups` (hover it).
import { concatMap, type MonoTypeOperatorFunction } from 'rxjs';
import type { Batch, Group } from '../lib/data.ts';

/** Where finished groups go: a transport's actor end (lib/async), or anything else that takes plain data. */
export interface GroupSink<G> {
  /** Publishes one group of `batch` (awaited before the next group). */
  publish(group: G, batch: Batch<G>): Promise<void>;
}

/**
 * `publishGroups` — the actor's sink: every finished group leaves the process as plain data.
 *
 * In and out: `Batch<G>`. For each batch, each group is handed to `sink.publish` in order and
 * awaited before the next one and before the batch goes on downstream, so a group counts as
 * published only once the sink has it (a Redis stream entry, a message on the learner's IPC
 * channel). Groups hold only numbers, strings and typed arrays, so they cross unchanged. Emits
 * `async/published` (groups of this batch).
 *
 * @param sink The {@link GroupSink} (e.g. the actor loop's, wrapping `ActorTransport.publish`).
 * @returns An operator that publishes each batch's groups and passes the batch on with the count added.
 * @example
 * ```ts
 * tasks$.pipe(map(rolloutTask), publishGroups({ publish: (g) => transport.publish(lease, encodeEnvelope(envelopeOf(g))) }));
 * ```
 */
export function publishGroups<G = Group>(sink: GroupSink<G>): MonoTypeOperatorFunction<Batch<G>> {
  return concatMap(async (batch) => {
    for (const g of batch.groups) await sink.publish(g, batch);
    return { ...batch, metrics: { ...batch.metrics, 'async/published': batch.groups.length } };
  });
}
