/**
 * Document sinks: where processed records land (OpenSearch in production). This is Spillway's
 * extension point — a user adds a destination by implementing `Service` and providing it, or
 * combining it with others through `fanOut`.
 *
 * Contract: `write` answers once per document, in order. Writes are keyed by `id` and must be
 * idempotent: writing the same id twice leaves one document, so replays never duplicate.
 */
import { Array as Arr, Context, Effect, Schema } from "effect"

export interface Document {
  /** Stable id (the record id); the sink's primary key. */
  readonly id: string
  readonly body: Readonly<Record<string, unknown>>
}

export type WriteOutcome =
  | { readonly _tag: "Written" }
  /** Transient (429, circuit breaker, 503): the same write may succeed later. */
  | { readonly _tag: "Retryable"; readonly reason: string }
  /** The document itself is refused (mapping error, 400): retrying as is will not help. */
  | { readonly _tag: "Rejected"; readonly reason: string }

export const written: WriteOutcome = { _tag: "Written" }

export const ErrorReason = Schema.Literals([
  "Throttled",
  "Unavailable",
  "InvalidRequest",
  "AccessDenied",
  "TooLarge"
])
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

/** The whole write failed: no document in it can be assumed written. */
export class DocumentSinkError extends Schema.TaggedError<DocumentSinkError>()("DocumentSinkError", {
  sink: Schema.String,
  reason: ErrorReason,
  message: Schema.String,
  /** What the backend threw or answered, when there was something (an SDK error, say). */
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface Service {
  /** Names the sink in metrics, logs and errors. */
  readonly name: string
  readonly write: (
    documents: ReadonlyArray<Document>
  ) => Effect.Effect<ReadonlyArray<WriteOutcome>, DocumentSinkError>
}

export class DocumentSink extends Context.Service<DocumentSink, Service>()("spillway/DocumentSink") {}

const severity = (outcome: WriteOutcome): number =>
  outcome._tag === "Written" ? 0 : outcome._tag === "Retryable" ? 1 : 2

/** The worse of two outcomes: Rejected over Retryable over Written. */
export const worst = (a: WriteOutcome, b: WriteOutcome): WriteOutcome => (severity(b) > severity(a) ? b : a)

/**
 * Writes every document to all `sinks` concurrently; each document's outcome is the worst of its
 * outcomes across sinks, so a document counts as written only when every sink has it. A sink
 * whose whole call fails contributes `Retryable` (or `Rejected` when retrying cannot help) for
 * every document rather than failing the others: re-writing to the sinks that did succeed is
 * harmless because writes are idempotent.
 */
export const fanOut = (sinks: Arr.NonEmptyReadonlyArray<Service>): Service => ({
  name: sinks.map((s) => s.name).join("+"),
  write: (documents) =>
    Effect.forEach(
      sinks,
      (sink) =>
        sink.write(documents).pipe(
          Effect.catch((error) =>
            Effect.succeed(
              Arr.makeBy(
                documents.length,
                (): WriteOutcome => ({
                  _tag: error.isRetryable ? "Retryable" : "Rejected",
                  reason: `${sink.name}: ${error.message}`
                })
              )
            )
          )
        ),
      { concurrency: "unbounded" }
    ).pipe(
      Effect.map((perSink) =>
        documents.map((_, i) => perSink.map((outcomes) => outcomes[i] ?? written).reduce(worst))
      )
    )
})
