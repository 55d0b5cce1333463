/**
 * A tour of the environments: Gymnasium conventions, snapshots, vectorised stepping, MuJoCo.
 *
 *     npx tsx --conditions=rxrl-source docs/examples/environments.ts
 */
import { makeEnv, makeVectorEnv, Rng, d4rlNormalizedScore } from 'rxrl';

const smoke = process.env['RXRL_SMOKE'] === '1';

// Classic control: reset(seed) → observation; step(action) → reward, cost, terminated, truncated.
const cart = await makeEnv('CartPoleConstrained-v1');
const { observation } = cart.reset(42);
console.log('CartPoleConstrained-v1 first observation', [...observation].map((x) => x.toFixed(3)).join(' '));

// Snapshots: the full state as plain data. Restoring and replaying gives the same numbers.
const saved = cart.snapshot();
const a = [1, 1, 0, 1, 0].map((act) => cart.step(act).observation[0]);
cart.restore(saved);
const b = [1, 1, 0, 1, 0].map((act) => cart.step(act).observation[0]);
console.log(
  'replay after restore is identical:',
  a.every((x, i) => x === b[i]),
);
cart.close();

// MuJoCo locomotion through the official WebAssembly build, with a random policy.
const hopper = await makeEnv('Hopper-v4');
const rng = new Rng(0, 'action');
for (let ep = 0; ep < (smoke ? 1 : 3); ep++) {
  hopper.reset(ep);
  let ret = 0;
  for (;;) {
    const r = hopper.step(Float32Array.from({ length: 3 }, () => rng.uniform(-1, 1)));
    ret += r.reward;
    if (r.terminated || r.truncated) break;
  }
  console.log(`Hopper-v4 random episode ${ep}: return ${ret.toFixed(1)}, D4RL score ${d4rlNormalizedScore('Hopper-v4', ret)!.toFixed(2)}`);
}
hopper.close();

// Vectorised: 8 copies from one reset state (what a GRPO group needs).
const venv = await makeVectorEnv('HalfCheetah-v4', 8, {}, { autoreset: 'disabled' });
venv.reset(new Array(8).fill(7));
const step = venv.step(Float32Array.from({ length: 8 * 6 }, () => rng.uniform(-1, 1)));
console.log('HalfCheetah-v4 ×8 rewards after one step:', [...step.rewards].map((r) => r.toFixed(2)).join(' '));
venv.close();
