/**
 * Constrained GRPO: keep the cart near the centre of the track while balancing the pole.
 * Runs the `grpo-control` pipeline twice, with and without the Lagrange multiplier, and prints the
 * cost and λ side by side.
 *
 *     npx tsx --conditions=rxrl-source docs/examples/lagrangian-cartpole.ts
 *     RXRL_SMOKE=1 npx tsx --conditions=rxrl-source docs/examples/lagrangian-cartpole.ts
 */
import { initBackend } from 'rxrl';
import { runGrpoControl, decodePipelineConfig, readPipelineFile, type GrpoControlConfig } from 'rxrl/pipelines';

const smoke = process.env['RXRL_SMOKE'] === '1';
await initBackend();

// The same typed config the CLI runs: pipelines/examples/lagrangian-cartpole.yaml.
const file = new URL('../../pipelines/examples/lagrangian-cartpole.yaml', import.meta.url).pathname;
const config = decodePipelineConfig(readPipelineFile(file), smoke ? ['iterations=2'] : []).config as unknown as GrpoControlConfig;
const limit = config.algorithm.constraint!.limit;
const quiet = { evaluation: { every: 1000, episodes: 1 }, checkpointEvery: 0 };
const constrained = await runGrpoControl({ ...config, ...quiet });
const plain = await runGrpoControl({ ...config, ...quiet, algorithm: { ...config.algorithm, constraint: null } });

console.log(`cost limit d = ${limit} (mean steps per episode with |x| > ${config.env.options['costBand']})`);
console.log('iter | GRPO return  cost | Lagrangian return  cost  lambda');
constrained.history.forEach((m, i) => {
  const p = plain.history[i]!;
  if (i % 4 !== 3 && i !== constrained.history.length - 1) return;
  const f = (x: number | undefined, w: number, d = 1) => (x ?? NaN).toFixed(d).padStart(w);
  console.log(
    `${String(m.iteration).padStart(4)} | ${f(p['reward/mean'], 11, 0)} ${f(p['cost/mean'], 5)} | ${f(m['reward/mean'], 17, 0)} ${f(m['cost/mean'], 5)} ${f(m['lambda'], 7, 2)}`,
  );
});
constrained.policy.dispose();
plain.policy.dispose();
