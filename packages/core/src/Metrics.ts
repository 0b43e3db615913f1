/**
 * The pipeline's figures as Effect metrics. End-to-end delay — from the collector stamping
 * `receivedAt` to the sink confirming the write — is the number that matters; `readDelay` turns
 * the summary into avg / p50 / p99 / max.
 */
import { type Context, Effect, Metric } from "effect"

/** Milliseconds from `receivedAt` to indexed, one sample per record written. */
export const endToEndDelay = Metric.summary("spillway_end_to_end_delay_ms", {
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
 * Records each value into `metric` in one effect: what `Metric.update` does once per value, for a
 * batch (the processor records a delay per document; one effect per document cost as much as
 * writing the document's NDJSON line).
 */
export const updateEach = <Input>(metric: Metric.Metric<Input, unknown>, values: Iterable<Input>) =>
  Effect.contextWith((context: Context.Context<never>) =>
    Effect.sync(() => {
      for (const value of values) metric.updateUnsafe(value, context)
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
