/**
 * The pipeline's figures as Effect metrics. End-to-end delay — from the collector stamping
 * `receivedAt` to the sink confirming the write — is the number that matters; `readDelay` turns
 * the summary into avg / p50 / p99 / max.
 */
import { type Context, Effect, Metric } from "effect"

/**
 * Milliseconds from `receivedAt` to indexed, one sample per record written. Samples are
 * `[delay, at]` pairs (`Metric.summaryWithTimestamp`): a batch's samples share the instant it was
 * confirmed, so `recordDelays` reads the clock once per batch, not once per record.
 */
export const endToEndDelay = Metric.summaryWithTimestamp("spillway_end_to_end_delay_ms", {
  description: "Delay from collector receipt to confirmed write, per record",
  maxAge: "3650 days",
  maxSize: 200_000,
  quantiles: [0.5, 0.9, 0.99]
})

export const recordsCollected = Metric.counter("spillway_records_collected", { incremental: true })
export const recordsRejected = Metric.counter("spillway_records_rejected", { incremental: true })
export const recordsParked = Metric.counter("spillway_records_parked_in_fallback", { incremental: true })
export const recordsRedriven = Metric.counter("spillway_records_redriven", { incremental: true })
export const recordsReplayed = Metric.counter("spillway_records_replayed", { incremental: true })
export const recordsWritten = Metric.counter("spillway_records_written", { incremental: true })
export const duplicatesSkipped = Metric.counter("spillway_duplicates_skipped", { incremental: true })
export const recordsFailed = Metric.counter("spillway_records_failed", { incremental: true })
export const sinkRetries = Metric.counter("spillway_sink_retries", { incremental: true })

/**
 * Records the end-to-end delay of documents confirmed at `now` (epoch ms) that were received at
 * `receivedAt`, in one effect: `Metric.update` once per document cost as much as writing its
 * NDJSON line (the processor's hot path).
 */
export const recordDelays = (now: number, receivedAt: ReadonlyArray<number>): Effect.Effect<void> =>
  Effect.contextWith((context: Context.Context<never>) =>
    Effect.sync(() => {
      for (const at of receivedAt) endToEndDelay.updateUnsafe([now - at, now], context)
    })
  )

export interface DelayFigures {
  readonly count: number
  readonly avg: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

const quantile = (state: Metric.SummaryState, q: number): number =>
  state.quantiles.find(([k]) => k === q)?.[1] ?? 0

/** Reads the end-to-end delay summary. */
export const readDelay: Effect.Effect<DelayFigures> = Metric.value(endToEndDelay).pipe(
  Effect.map((state) => ({
    count: state.count,
    avg: state.count === 0 ? 0 : state.sum / state.count,
    p50: quantile(state, 0.5),
    p99: quantile(state, 0.99),
    max: state.count === 0 ? 0 : state.max
  }))
)
