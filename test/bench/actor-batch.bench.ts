/**
 * What an actor gains by stepping the tasks it holds as one batch (docs/scaling.md): grpo-hopper's
 * actor side rolls out M tasks one at a time (`rollout`) and as one batch (`rolloutMany`), in one
 * process, alternately, 10 times each per repeat; prints ms per M groups and the ratio.
 *
 *     npx tsx --conditions=rxrl-source test/bench/actor-batch.bench.ts [M ...]   # default 4 8
 */
import { initBackend } from '../../lib/backend.ts';
import { taskGroupId } from '../../lib/async/messages.ts';
import { readPipelineFile } from '../../pipelines/config-file.ts';
import { grpoControlActor, type GrpoControlConfig } from '../../pipelines/grpo-control.ts';
import { decodePipelineConfig } from '../../pipelines/registry.ts';

await initBackend({ quiet: true });
const sizes = process.argv.slice(2).map(Number);
for (const M of sizes.length > 0 ? sizes : [4, 8]) {
  const { config } = decodePipelineConfig(readPipelineFile('pipelines/examples/grpo-hopper.yaml'), [`algorithm.startsPerIteration=${M}`]);
  const part = await grpoControlActor(config as GrpoControlConfig);
  const tasks = Array.from({ length: M }, (_, n) => ({
    task: n,
    groupId: taskGroupId(n),
    start: { kind: 'seed' as const, envId: 'Hopper-v4', seed: 100 + n },
    seed: 7 + n,
  }));
  try {
    for (let rep = 0; rep < 4; rep++) {
      let t = performance.now();
      let steps = 0;
      for (let k = 0; k < 10; k++) for (const task of tasks) steps += part.rollout(task, 0).trajectories.reduce((s, tr) => s + tr.length, 0);
      const alone = (performance.now() - t) / 10;
      t = performance.now();
      for (let k = 0; k < 10; k++) part.rolloutMany!(tasks, 0);
      const batched = (performance.now() - t) / 10;
      console.log(
        `M ${M}: one at a time ${alone.toFixed(1)} ms (${steps / 10} env steps), as one batch ${batched.toFixed(1)} ms, ratio ${(alone / batched).toFixed(2)}`,
      );
    }
  } finally {
    part.close();
  }
}
