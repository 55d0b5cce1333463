import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { catchError, lastValueFrom, map, of } from 'rxjs';
import type { Batch } from '../lib/data.ts';
import type { CostAdvantagedGroup } from '../operators/constraintCost.ts';
import { combineAdvantages, primalDual } from '../operators/primalDual.ts';
import { LagrangeState, type LagrangeConfig } from '../lib/lagrange.ts';
import { discountedReturns } from '../operators/returns.ts';
import { makeBatch, makeTrajectory } from './helpers/fixtures.ts';

function near(a: number, b: number, tol = 1e-12): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}
function nearAll(a: readonly number[], b: readonly number[], tol = 1e-12): void {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => near(x, b[i]!, tol));
}

/** Runs `costs` (one number per batch, one constraint) through a fresh state; returns λ after each. */
function lambdasAfter(config: Partial<LagrangeConfig>, costs: number[], limit = 1): number[] {
  const s = new LagrangeState({ constraints: [{ name: 'c', limit }], ...config });
  return costs.map((c) => s.update([c]).lambdaAfter[0]!);
}

test('projected ascent: λ ← clip(λ + η(Ĵ − d), 0, λ_max) over several steps', () => {
  // d = 1, η = 0.5, λ_max = 2: 0 → 1 → 3↘2 → 1.5 → 1 → −2↗0.
  assert.deepEqual(lambdasAfter({ update: 'projected', lr: 0.5, lambdaMax: 2 }, [3, 5, 0, 0, -5]), [1, 2, 1.5, 1, 0]);
  // Unbounded (null) λ_max.
  assert.deepEqual(lambdasAfter({ update: 'projected', lr: 1, lambdaMax: null }, [1001]), [1000]);
});

test('log-space ascent (Safe RLHF Eq. 31 and the plain variant)', () => {
  // d = 0, η = 0.1, λ_0 = 1. Scaled: ln λ = 0 + 0.1·1·2 = 0.2, then 0.2 + 0.1·e^0.2·1.
  const scaled = lambdasAfter({ update: 'log', lr: 0.1 }, [2, 1], 0);
  nearAll(scaled, [Math.exp(0.2), Math.exp(0.2 + 0.1 * Math.exp(0.2))]);
  const plain = lambdasAfter({ update: 'log', lr: 0.1, logGradient: 'plain' }, [2, 1, -10], 0);
  nearAll(plain, [Math.exp(0.2), Math.exp(0.3), Math.exp(-0.7)]);
  // Clipped at λ_max in log space.
  nearAll(lambdasAfter({ update: 'log', lr: 0.1, lambdaMax: 1.25 }, [2, 1, -1], 0), [Math.exp(0.2), 1.25, Math.exp(Math.log(1.25) - 0.125)]);
  assert.throws(() => new LagrangeState({ constraints: [{ name: 'c', limit: 0 }], update: 'log', lambdaInit: 0 }), /needs lambdaInit > 0/);
});

test('PID Lagrangian against a hand-unrolled recurrence', () => {
  // K_P 1, K_I 0.5, K_D 2, d 1, J_prev starts at 0:
  // J=2: Δ=1, I=1, ∂=2 → 1 + 0.5 + 4 = 5.5
  // J=4: Δ=3, I=4, ∂=2 → 3 + 2 + 4 = 9
  // J=3: Δ=2, I=6, ∂=0 → 2 + 3 = 5
  // J=0: Δ=−1, I=5, ∂=0 → −1 + 2.5 = 1.5
  // J=−9: Δ=−10, I=0, ∂=0 → −10 → clipped to 0
  const cfg = { update: 'pid' as const, kP: 1, kI: 0.5, kD: 2 };
  assert.deepEqual(lambdasAfter(cfg, [2, 4, 3, 0, -9]), [5.5, 9, 5, 1.5, 0]);
  // λ_max clips the output, not the integral.
  assert.deepEqual(lambdasAfter({ ...cfg, lambdaMax: 6 }, [2, 4, 3]), [5.5, 6, 5]);
});

test('PID with EMA smoothing and derivative delay matches an independent (gain-folded) recurrence', () => {
  const kP = 0.3,
    kI = 0.2,
    kD = 0.7,
    aP = 0.9,
    aD = 0.8,
    delay = 3,
    d = 2,
    l0 = 0.4;
  const costs = [3, 5, 1, 4, 4.5, 0.5, 6, 2, 2, 7];
  const s = new LagrangeState({
    constraints: [{ name: 'c', limit: d }],
    update: 'pid',
    kP,
    kI,
    kD,
    emaP: aP,
    emaD: aD,
    derivativeDelay: delay,
    lambdaInit: l0,
  });
  // Reference in the style of the authors' code: the integral accumulates K_I·Δ and starts at λ_0.
  let iK = l0,
    deltaP = 0,
    costD = 0;
  const hist = [0];
  for (const J of costs) {
    const delta = J - d;
    iK = Math.max(0, iK + kI * delta);
    deltaP = aP * deltaP + (1 - aP) * delta;
    costD = aD * costD + (1 - aD) * J;
    const deriv = Math.max(0, costD - hist[0]!);
    const want = Math.min(100, Math.max(0, kP * deltaP + iK + kD * deriv));
    hist.push(costD);
    if (hist.length > delay) hist.shift();
    near(s.update([J]).lambdaAfter[0]!, want, 1e-12);
  }
});

test('moving-window cost estimate Ĵ_C over the last W batches', () => {
  const s = new LagrangeState({ constraints: [{ name: 'c', limit: 0 }], update: 'fixed', lambdaInit: 0.3, window: 2 });
  assert.deepEqual(
    [2, 4, 0, 1].map((c) => s.update([c]).estimate[0]),
    [2, 3, 2, 0.5],
  );
  assert.deepEqual(s.lambdas, [0.3]); // fixed never moves
  assert.throws(() => new LagrangeState({ constraints: [{ name: 'c', limit: 0 }], update: 'fixed' }), /'fixed' rule needs lambdaInit/);
});

test('combined advantages: A_R − Σλ A_C, with and without (1 + Σλ), and per-component normalisation', () => {
  const AR = [1, -1];
  const AC = [[1], [-3]];
  nearAll(combineAdvantages(AR, AC, [0.5], { normalize: 'none' }), [0.5, 0.5]);
  nearAll(combineAdvantages(AR, AC, [0.5], { normalize: 'one-plus-lambda' }), [0.5 / 1.5, 0.5 / 1.5]);
  // Two constraints, λ = [0.5, 2].
  const AC2 = [
    [1, 0],
    [0, 1],
  ];
  nearAll(combineAdvantages(AR, AC2, [0.5, 2], { normalize: 'none' }), [0.5, -3]);
  nearAll(combineAdvantages(AR, AC2, [0.5, 2]), [0.5 / 3.5, -3 / 3.5]);
  // Normalised: Z([1, 3]) = [−1, 1], Z([0, 10]) = [−1, 1] → [−1 + 0.5, 1 − 0.5].
  nearAll(combineAdvantages([1, 3], [[0], [10]], [0.5], { combine: 'normalized-lagrangian', normalize: 'none' }), [-0.5, 0.5], 1e-7);
  nearAll(combineAdvantages([1, 3], [[0], [10]], [0.5], { combine: 'normalized-lagrangian', eps: 0 }), [-0.5 / 1.5, 0.5 / 1.5]);
  assert.throws(() => combineAdvantages([1], [[1, 2]], [0.5]), /trajectory 0 has 2 cost advantages, expected 1/);
});

/** A one-group batch with reward advantages `ar`, cost advantages `ac` and a batch cost `cost`. */
function batchOf(iteration: number, ar: number[], ac: number[][], costs: Record<string, number>): Batch<CostAdvantagedGroup> {
  const start = { kind: 'seed' as const, envId: 'CartPole-v1', seed: 0 };
  const trajectories = ar.map((a, i) => ({ ...discountedReturns(makeTrajectory([a], { groupId: 'g', start })), advantage: a, costAdvantages: ac[i]! }));
  const b = makeBatch(iteration, [{ groupId: 'g', start, trajectories }]);
  return { ...b, metrics: Object.fromEntries(Object.entries(costs).map(([k, v]) => [`cost/${k}/mean`, v])) };
}

test('operator: current λ for the advantages, then the update (and after-update timing)', async () => {
  const cfg = { constraints: [{ name: 'c', limit: 1 }], update: 'projected' as const, lr: 0.5, lambdaInit: 0.5 };
  const before = new LagrangeState(cfg);
  const b = batchOf(0, [1, -1], [[1], [-3]], { c: 3 });
  const out = await lastValueFrom(of(b).pipe(primalDual(before, { normalize: 'none' })));
  nearAll(
    out.groups[0]!.trajectories.map((t) => t.advantage),
    [0.5, 0.5],
  ); // λ = 0.5 used
  assert.deepEqual(
    out.groups[0]!.trajectories.map((t) => t.scores!['advantage/reward']),
    [1, -1],
  );
  assert.equal(out.metrics['lambda'], 0.5);
  assert.equal(out.metrics['cost/mean'], 3);
  assert.equal(out.metrics['constraint/violation'], 2);
  assert.equal(out.metrics['constraint/limit'], 1);
  assert.equal(out.metrics['constraint/estimate'], 3);
  assert.deepEqual(before.lambdas, [1.5]); // then updated: 0.5 + 0.5·(3 − 1)

  const after = new LagrangeState(cfg);
  const out2 = await lastValueFrom(of(b).pipe(primalDual(after, { normalize: 'none', timing: 'after-update' })));
  nearAll(
    out2.groups[0]!.trajectories.map((t) => t.advantage),
    [1 - 1.5, -1 + 4.5],
  ); // λ = 1.5 used
  assert.equal(out2.metrics['lambda'], 1.5);
});

test('operator with several constraints emits per-constraint metrics', async () => {
  const s = new LagrangeState({
    constraints: [
      { name: 'a', limit: 1, lambdaInit: 0.5 },
      { name: 'b', limit: 10, lambdaInit: 2 },
    ],
    lr: 1,
  });
  const out = await lastValueFrom(
    of(
      batchOf(
        4,
        [1, -1],
        [
          [1, 0],
          [0, 1],
        ],
        { a: 2, b: 4 },
      ),
    ).pipe(primalDual(s)),
  );
  nearAll(
    out.groups[0]!.trajectories.map((t) => t.advantage),
    [0.5 / 3.5, -3 / 3.5],
  );
  assert.equal(out.metrics['lambda'], 2.5);
  assert.equal(out.metrics['lambda/a'], 0.5);
  assert.equal(out.metrics['lambda/b'], 2);
  assert.equal(out.metrics['constraint/a/violation'], 1);
  assert.equal(out.metrics['constraint/b/violation'], -6);
  assert.equal(out.metrics['constraint/violation'], 1);
  assert.equal(out.metrics['constraint/b/limit'], 10);
  assert.deepEqual(s.lambdas, [1.5, 0]);
});

test('state round-trips through JSON and continues identically (every rule)', () => {
  const costs = [3, 0.5, 2.25, 7, 1, 0, 4.5, 2, 2, 9.75];
  const configs: Array<Partial<LagrangeConfig>> = [
    { update: 'projected', lr: 0.3, lambdaMax: 5 },
    { update: 'log', lr: 0.05 },
    { update: 'pid', kP: 0.5, kI: 0.1, kD: 0.2, emaP: 0.9, emaD: 0.95, derivativeDelay: 3, window: 4 },
  ];
  for (const c of configs) {
    const a = new LagrangeState({
      constraints: [
        { name: 'x', limit: 2 },
        { name: 'y', limit: 1, lambdaMax: 3 },
      ],
      ...c,
    });
    for (const j of costs.slice(0, 5)) a.update([j, j / 2]);
    const text = JSON.stringify(a.state());
    const b = LagrangeState.fromState(JSON.parse(text));
    assert.equal(b.updates, 5);
    for (const j of costs.slice(5)) {
      const ra = a.update([j, j / 2]);
      const rb = b.update([j, j / 2]);
      assert.deepEqual(rb, ra, `rule ${c.update}`);
    }
    assert.deepEqual(b.state(), a.state());
  }
  assert.throws(() => LagrangeState.fromState({ version: 2 }), /version 1/);
});

test('missing cost metrics and mismatched cost advantages are clear errors', async () => {
  const s = new LagrangeState({ constraints: [{ name: 'compliance', limit: 0.1 }] });
  await assert.rejects(
    lastValueFrom(of(batchOf(7, [1, -1], [[1], [2]], {})).pipe(primalDual(s))),
    /batch 7 lacks metrics 'cost\/compliance\/mean': put constraintCost/,
  );
  await assert.rejects(
    lastValueFrom(
      of(
        batchOf(
          0,
          [1, -1],
          [
            [1, 0],
            [2, 0],
          ],
          { compliance: 0 },
        ),
      ).pipe(primalDual(s)),
    ),
    /group 'g', trajectory 0 has 2 cost advantages, expected 1/,
  );
  // An empty batch (all groups dropped) leaves λ alone.
  const empty = { ...makeBatch<CostAdvantagedGroup>(0, []), metrics: {} };
  const out = await lastValueFrom(of(empty).pipe(primalDual(s)));
  assert.equal(out.metrics['lambda'], 0);
  assert.equal(s.updates, 0);
});

test('primalDual emits one batch per batch with λ evolving; errors propagate (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const s = new LagrangeState({ constraints: [{ name: 'c', limit: 1 }], lr: 0.5 });
    const src = cold('-a-b-c-d|', {
      a: batchOf(0, [1, -1], [[1], [-1]], { c: 3 }),
      b: batchOf(1, [1, -1], [[1], [-1]], { c: 3 }),
      c: batchOf(2, [1, -1], [[1], [-1]], { c: 0 }),
      d: batchOf(3, [1, -1], [[1], [-1]], {}),
    });
    const out = src.pipe(
      primalDual(s, { normalize: 'none' }),
      map((b) => [b.iteration, b.metrics['lambda'], b.groups[0]!.trajectories[0]!.advantage]),
      catchError((e: Error) => of(e.message.slice(0, 36))),
    );
    // λ: 0 → 1 → 2 → 1.5; advantage of the first trajectory = 1 − λ.
    expectObservable(out).toBe('-a-b-c-(d|)', {
      a: [0, 0, 1],
      b: [1, 1, 0],
      c: [2, 2, -1],
      d: "primalDual: batch 3 lacks metrics 'c",
    });
  });
});
