/**
 * The summary `spillway dev` prints when it stops: what was sent, what the collector accepted and
 * rejected, what reached the index, and the end-to-end delay.
 *
 * "Lost" is strict: a record the collector accepted (answered 202 for) whose id is not in the index.
 * Records the processor gave up on sit in the on-failure destination and can be replayed, but they
 * are not indexed, so they count as lost here too — a local run should index everything.
 */
import { Metrics } from "@spillway/core"
import { Effect, Metric } from "effect"
import type * as DemoTraffic from "./DemoTraffic.js"
import type { Ledger } from "./Ledger.js"

export interface Summary {
  /** Distinct records the demo generator sent. */
  readonly sent: number
  /** Demo records sent a second time on purpose. */
  readonly resent: number
  readonly accepted: number
  readonly distinctAccepted: number
  readonly rejected: number
  /** Requests refused whole (bad key, size, type, JSON). */
  readonly refusedRequests: number
  /** Accepted ids found in the index. */
  readonly indexed: number
  readonly duplicatesSkipped: number
  readonly onFailure: number
  /** Accepted ids not in the index. */
  readonly lost: number
  readonly delay: Metrics.DelayFigures
  /** Whether the pipeline had nothing left in flight when the summary was taken. */
  readonly drained: boolean
}

/** What the summary and the live view read from a pipeline, whichever its backend. */
export interface Observed {
  readonly index: { readonly documents: Effect.Effect<ReadonlyArray<{ readonly id: string }>> }
  readonly processor: { readonly counters: Effect.Effect<{ readonly recordsDiscarded: number }> }
  readonly queue: { readonly stats: Effect.Effect<{ readonly total: number }> }
}

export const compute = (
  pipeline: Observed,
  ledger: Ledger,
  demo: DemoTraffic.Stats | undefined,
  drained: boolean
): Effect.Effect<Summary> =>
  Effect.gen(function* () {
    const figures = yield* ledger.figures
    const ids = yield* ledger.acceptedIds
    const documents = new Set((yield* pipeline.index.documents).map((d) => d.id))
    let indexed = 0
    for (const id of ids) if (documents.has(id)) indexed++
    return {
      sent: demo?.sent ?? 0,
      resent: demo?.resent ?? 0,
      accepted: figures.accepted,
      distinctAccepted: figures.distinctAccepted,
      rejected: figures.rejected,
      refusedRequests: figures.refusedRequests,
      indexed,
      duplicatesSkipped: (yield* Metric.value(Metrics.duplicatesSkipped)).count,
      onFailure: (yield* pipeline.processor.counters).recordsDiscarded,
      lost: ids.size - indexed,
      delay: yield* Metrics.readDelay,
      drained
    }
  })

export const format = (s: Summary): string => {
  const row = (label: string, value: number | string, note = "") =>
    `  ${label.padEnd(20)}${String(value).padStart(8)}${note === "" ? "" : `   ${note}`}`
  const ms = (v: number) => String(Math.round(v))
  return [
    "summary",
    row("sent", s.sent, s.resent > 0 ? `demo records (+${s.resent} sent twice on purpose)` : "demo records"),
    row("accepted", s.accepted, `${s.distinctAccepted} distinct ids`),
    row(
      "rejected",
      s.rejected,
      s.refusedRequests > 0 ? `records; ${s.refusedRequests} requests refused` : ""
    ),
    row("indexed", s.indexed),
    row("duplicates skipped", s.duplicatesSkipped),
    row("on-failure", s.onFailure),
    row("lost", s.lost, s.drained ? "" : "pipeline not drained in time"),
    `  ${"delay (ms)".padEnd(20)}avg ${ms(s.delay.avg)}  p50 ${ms(s.delay.p50)}  p99 ${ms(s.delay.p99)}  max ${ms(s.delay.max)}`
  ].join("\n")
}
