/**
 * Summary statistics of plain number lists, computed in float64 (the one place for them: metrics,
 * advantages, multipliers and evaluations all summarise through here).
 *
 * ```ts
 * meanStd([1, 2, 3, 4], 1);  // { mean: 2.5, std: 1.29… } (sample std)
 * moments([1, 2, 3, 4]);     // { mean: 2.5, std: 1.118…, min: 1, max: 4 } (population std)
 * ```
 */

/** The arithmetic mean (0 for an empty list), summed left to right. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/**
 * Mean and standard deviation with `ddof` delta degrees of freedom: 0 = population std,
 * 1 = sample (Bessel-corrected) std. `{0, 0}` for an empty list; std 0 when n − ddof ≤ 0.
 */
export function meanStd(xs: readonly number[], ddof: 0 | 1 = 0): { mean: number; std: number } {
  const n = xs.length;
  if (n === 0) return { mean: 0, std: 0 };
  const m = mean(xs);
  if (n - ddof <= 0) return { mean: m, std: 0 };
  let v = 0;
  for (const x of xs) v += (x - m) ** 2;
  return { mean: m, std: Math.sqrt(v / (n - ddof)) };
}

/** Mean, population std, min and max of a list of numbers (0s for an empty list). */
export function moments(xs: readonly number[]): { mean: number; std: number; min: number; max: number } {
  if (xs.length === 0) return { mean: 0, std: 0, min: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { ...meanStd(xs, 0), min, max };
}
