/**
 * GRPO on CartPole, composed operator by operator — a notebook you can read top to bottom.
 *
 *     npx tsx --conditions=rxrl-source docs/examples/grpo-cartpole.ts          # ~25 iterations, well under a minute
 *     RXRL_SMOKE=1 npx tsx --conditions=rxrl-source docs/examples/grpo-cartpole.ts   # 2 iterations (what the test suite runs)
 */
import * as tf from '@tensorflow/tfjs-core';
import { range, map, lastValueFrom, toArray, takeWhile } from 'rxjs';
import { initBackend, makeVectorEnv, RngStreams, MlpPolicy } from 'rxrl';
import { rollout, policyActor, returns, groupAdvantages, policyUpdate, stepBatchOf, metrics, consoleSink } from 'rxrl/operators';

const smoke = process.env['RXRL_SMOKE'] === '1';
await initBackend();

// One seed; independent random streams per purpose (init, env resets, action sampling).
const streams = new RngStreams(1);

// G = 16 copies of the env step in lockstep: one group = 16 rollouts from the same reset state.
const G = 16;
const venv = await makeVectorEnv('CartPole-v1', G, { seed: 1 }, { autoreset: 'disabled' });

// A CleanRL-style MLP policy (64-64 tanh, categorical head) and its learner state.
const policy = new MlpPolicy({ obsDim: venv.obsDim, actionSpace: venv.actionSpace, seed: streams.get('init').seed() });
const learner = { policy, optimizer: tf.train.adam(0.02), version: 0, batchOf: stepBatchOf };

// Four reset states per iteration, each drawn from the reset stream.
const resets = streams.get('env/reset');
const starts = (iteration: number) => ({
  iteration,
  starts: [0, 1, 2, 3].map(() => ({ kind: 'seed' as const, envId: 'CartPole-v1', seed: resets.seed() })),
});

const history = await lastValueFrom(
  range(0, smoke ? 2 : 40).pipe(
    map(starts),
    rollout({ venv, actor: policyActor(policy, () => learner.version), rng: streams.get('action') }),
    returns(), // G_t from rewards; targets untouched
    groupAdvantages({ estimator: 'grpo' }), // A_i = (R_i − mean_g) / (std_g + ε)
    policyUpdate(learner, { epochs: 4, minibatches: 4, clipEps: 0.2, maxGradNorm: 0.5 }),
    metrics({ sinks: [consoleSink({ keys: ['reward/mean', 'clip_frac', 'entropy', 'kl'] })] }),
    map((b) => b.metrics['reward/mean']!),
    takeWhile((r) => r < 475, true), // stop once the policy balances
    toArray(),
  ),
);

console.log(`\nmean return per iteration: ${history.map((r) => r.toFixed(0)).join(' ')}`);
venv.close();
policy.dispose();
learner.optimizer.dispose();
