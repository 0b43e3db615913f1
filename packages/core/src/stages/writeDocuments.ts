/**
 * How the stages that write to the document sink — `process` and `restore` — write: envelopes
 * become documents keyed by record id, and the items the sink answers as retryable are written
 * again on `Schedules.sinkWrite` through the one partial-retry mechanism (`PartialRetry`).
 */
import { Effect, Metric } from "effect"
import type * as DocumentSink from "../DocumentSink.js"
import * as Metrics from "../Metrics.js"
import * as PartialRetry from "../PartialRetry.js"
import * as Schedules from "../Schedules.js"
import type { EnvelopeFields } from "../Telemetry.js"

/**
 * How a stream envelope becomes a document: flat, with times as ISO strings, keyed by record id;
 * the fields a client sent beyond the four of a record stay under `attributes`.
 */
export const toDocument = (envelope: EnvelopeFields): DocumentSink.Document => ({
  id: envelope.record.id,
  body: {
    id: envelope.record.id,
    type: envelope.record.type,
    timestamp: envelope.record.timestamp,
    tenant: envelope.tenant,
    receivedAt: new Date(envelope.receivedAt).toISOString(),
    payload: envelope.record.payload,
    ...(envelope.record.attributes === undefined ? {} : { attributes: envelope.record.attributes })
  }
})

const settled = (outcome: DocumentSink.WriteOutcome): boolean => outcome._tag !== "Retryable"

/**
 * Writes the envelopes, then writes again only the items still retryable, until
 * `Schedules.sinkWrite` gives up. `onLanded` sees the items of each attempt that the sink
 * confirmed, as soon as it confirms them (the processor marks them in the cache and records their
 * delay). Returns the last outcome of each envelope, in order.
 */
export const writeWithRetries = (
  sink: DocumentSink.Service,
  envelopes: ReadonlyArray<EnvelopeFields>,
  onLanded: (landed: ReadonlyArray<EnvelopeFields>) => Effect.Effect<void>
): Effect.Effect<ReadonlyArray<DocumentSink.WriteOutcome>> =>
  PartialRetry.retryPending({
    items: envelopes.map((envelope) => ({ envelope, document: toDocument(envelope) })),
    send: (pending) => sink.write(pending.map((p) => p.document)),
    isSettled: settled,
    whenCallFails: (error): DocumentSink.WriteOutcome => ({
      _tag: error.isRetryable ? "Retryable" : "Rejected",
      reason: error.message
    }),
    whenUnanswered: { _tag: "Retryable", reason: "the sink gave no answer for this item" },
    schedule: Schedules.sinkWrite,
    onAnswered: (answered) => {
      const landed: Array<EnvelopeFields> = []
      for (const a of answered) if (a.outcome._tag === "Written") landed.push(a.item.envelope)
      return landed.length === 0 ? Effect.void : onLanded(landed)
    },
    onRetry: () => Metric.update(Metrics.sinkRetries, 1)
  })
