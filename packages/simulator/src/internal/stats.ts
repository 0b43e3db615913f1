/**
 * The figures every run reports, computed one way: nearest-rank quantiles, a one-decimal mean,
 * and counts per simulated second. The scenarios and the comparison both summarise their delays
 * here, so "p99" means the same thing in every table.
 */

/** Rounds to one decimal, as every average in a report is printed. */
export const round1 = (n: number): number => Math.round(n * 10) / 10

/** Nearest-rank percentile of ascending `sorted` samples; 0 without samples. */
export const percentile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

/** Mean of ascending `sorted` samples, summed in that order, to one decimal; 0 without samples. */
export const mean1 = (sorted: ReadonlyArray<number>): number =>
  round1(sorted.length === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / sorted.length)

export interface Summary {
  readonly avg: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/**
 * Avg, p50, p99 and max of ascending `sorted` samples. `quantile` rounds the three order
 * statistics (the comparison's jittered retries give fractions of a millisecond it does not print).
 */
export const summarize = (
  sorted: ReadonlyArray<number>,
  quantile: (n: number) => number = (n) => n
): Summary => ({
  avg: mean1(sorted),
  p50: quantile(percentile(sorted, 0.5)),
  p99: quantile(percentile(sorted, 0.99)),
  max: quantile(sorted.at(-1) ?? 0)
})

/** Ascending copy of `samples`. */
export const ascending = (samples: ReadonlyArray<number>): Array<number> => [...samples].sort((a, b) => a - b)

/** Counts per simulated second, growing as the run goes. */
export class PerSecond {
  readonly values: Array<number> = []
  add(second: number, n = 1): void {
    while (this.values.length <= second) this.values.push(0)
    this.values[second] = (this.values[second] ?? 0) + n
  }
  set(second: number, n: number): void {
    while (this.values.length <= second) this.values.push(0)
    this.values[second] = n
  }
  at(second: number): number {
    return this.values[second] ?? 0
  }
}
