/**
 * Time per TD3 update (critic step + actor step every 2nd, Polyak targets), batch 256, on the
 * wasm backend, for 64×64 and 256×256 networks on Pendulum-sized inputs (obs 3, action 1) and
 * Hopper-sized inputs (obs 11, action 3).
 *
 *   npx tsx test/bench/td3.bench.ts [updates=200]
 */
import { initBackend } from '../../lib/backend.ts';
import { Rng } from '../../lib/random.ts';
import { createTd3Learner, disposeTd3Learner, td3Step, td3UpdateConfig } from '../../operators/td3Update.ts';

const info = await initBackend({
  backend: (process.env.RXRL_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm',
  threads: Number(process.env.RXRL_THREADS ?? 1),
  quiet: true,
});
const updates = Number(process.argv[2] ?? 200);
const cfg = td3UpdateConfig({ batchSize: 256 });
console.log(`backend ${info.name}${info.threads ? ` (${info.threads} thread${info.threads > 1 ? 's' : ''})` : ''}, batch 256, ${updates} updates`);
for (const [obsDim, actDim] of [
  [3, 1],
  [11, 3],
] as const) {
  for (const width of [64, 256]) {
    const learner = createTd3Learner({
      obsDim,
      low: new Array(actDim).fill(-1),
      high: new Array(actDim).fill(1),
      hidden: [width, width],
      seed: 0,
      bufferCapacity: 10_000,
    });
    const rng = new Rng(1, 'bench');
    const n = 5000;
    learner.buffer.add({
      n,
      obsDim,
      actDim,
      obs: Float32Array.from(rng.normalArray(n * obsDim)),
      actions: Float32Array.from(rng.uniformArray(n * actDim, -1, 1)),
      rewards: Float32Array.from(rng.normalArray(n)),
      nextObs: Float32Array.from(rng.normalArray(n * obsDim)),
      dones: new Float32Array(n),
    });
    for (let i = 0; i < 20; i++) td3Step(learner, cfg); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < updates; i++) td3Step(learner, cfg);
    const ms = (performance.now() - t0) / updates;
    console.log(`obs ${obsDim}, act ${actDim}, ${width}×${width}: ${ms.toFixed(2)} ms/update`);
    disposeTd3Learner(learner);
  }
}
