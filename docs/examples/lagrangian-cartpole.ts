/**
 * Constrained GRPO: keep the cart near the centre of the track while balancing the pole.
 * Runs the `grpo-control` pipeline twice, with and without the Lagrange multiplier, and prints the
 * cost and λ side by side.
 *
 *     npx tsx docs/examples/lagrangian-cartpole.ts
 *     RXRL_SMOKE=1 npx tsx docs/examples/lagrangian-cartpole.ts
 */
import { initBackend } from 'rxrl';
import { runGrpoControl } from 'rxrl/pipelines';

const smoke = process.env['RXRL_SMOKE'] === '1';
await initBackend();

const base = {
  seed: 1,
  iterations: smoke ? 2 : 40,
  env: { id: 'CartPoleConstrained-v1', options: { costBand: 0.5, xThreshold: 6 } },
  evaluation: { every: 1000, episodes: 1 },
};
const limit = 25;
const constrained = await runGrpoControl({ ...base, algorithm: { constraint: { limit, update: 'projected', lr: 0.02 } } });
const plain = await runGrpoControl(base);

console.log(`cost limit d = ${limit} (mean steps per episode with |x| > 0.5)`);
console.log('iter | GRPO return  cost | Lagrangian return  cost  lambda');
constrained.history.forEach((m, i) => {
  const p = plain.history[i]!;
  if (i % 4 !== 3 && i !== constrained.history.length - 1) return;
  const f = (x: number | undefined, w: number, d = 1) => (x ?? NaN).toFixed(d).padStart(w);
  console.log(`${String(m.iteration).padStart(4)} | ${f(p['reward/mean'], 11, 0)} ${f(p['cost/mean'], 5)} | ${f(m['reward/mean'], 17, 0)} ${f(m['cost/mean'], 5)} ${f(m['lambda'], 7, 2)}`);
});
constrained.policy.dispose();
plain.policy.dispose();
