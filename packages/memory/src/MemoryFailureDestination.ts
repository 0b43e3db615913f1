/**
 * An in-memory on-failure destination (the SQS queue of the Kinesis event source mapping in
 * production): keeps every `OnFailureRecord` it accepts, in arrival order.
 *
 * Each record is serialized to the JSON body SQS would carry and decoded back before it is kept,
 * so a record that could not travel through a real queue fails here too (`InvalidRequest`), and
 * what tests read is exactly what a replay tool would read. An injected outage makes `send` fail
 * with the retryable `Unavailable`, to exercise the sender's retry path.
 */
import { FailureDestination, OnFailure } from "@spillway/core"
import { Clock, Context, Duration, Effect, Layer, Schema } from "effect"
import type { FaultWindow } from "./MemoryStream.js"

export interface Service extends FailureDestination.Service {
  /** Accepted records, oldest first. */
  readonly records: Effect.Effect<ReadonlyArray<OnFailure.OnFailureRecord>>
  /** The JSON message bodies, as a consumer of the queue would receive them. */
  readonly messages: Effect.Effect<ReadonlyArray<string>>
  /** `send` fails `Unavailable` for the window (until `clearOutage` when omitted). */
  readonly startOutage: (window?: FaultWindow) => Effect.Effect<void>
  readonly clearOutage: Effect.Effect<void>
  /** Sends refused, by outage or by an invalid record. */
  readonly failedSends: Effect.Effect<number>
}

export class MemoryFailureDestination extends Context.Service<MemoryFailureDestination, Service>()(
  "spillway/memory/MemoryFailureDestination"
) {}

const encode = Schema.encodeEffect(OnFailure.OnFailureRecordJson)
const decode = Schema.decodeEffect(OnFailure.OnFailureRecordJson)

export const make: Effect.Effect<Service> = Effect.sync(() => {
  const records: Array<OnFailure.OnFailureRecord> = []
  const messages: Array<string> = []
  let outageUntil: number | undefined
  let failedSends = 0

  const refuse = (reason: FailureDestination.FailureDestinationError["reason"], message: string) =>
    Effect.suspend(() => {
      failedSends++
      return Effect.fail(new FailureDestination.FailureDestinationError({ reason, message }))
    })

  const send = Effect.fn("MemoryFailureDestination.send")(function* (record: OnFailure.OnFailureRecord) {
    const now = yield* Clock.currentTimeMillis
    if (outageUntil !== undefined && now < outageUntil) {
      return yield* refuse("Unavailable", "on-failure destination is unavailable (injected outage)")
    }
    const body = yield* encode(record).pipe(
      Effect.catchTag("SchemaError", (error) =>
        refuse("InvalidRequest", `not a valid on-failure record: ${error.message}`)
      )
    )
    const stored = yield* decode(body).pipe(
      Effect.catchTag("SchemaError", (error) =>
        refuse("InvalidRequest", `on-failure record does not round-trip: ${error.message}`)
      )
    )
    messages.push(body)
    records.push(stored)
  })

  return MemoryFailureDestination.of({
    send,
    records: Effect.sync(() => [...records]),
    messages: Effect.sync(() => [...messages]),
    startOutage: (window) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          outageUntil =
            window === undefined
              ? Number.POSITIVE_INFINITY
              : "until" in window
                ? window.until
                : now + Duration.toMillis(Duration.fromInputUnsafe(window.for))
        })
      ),
    clearOutage: Effect.sync(() => {
      outageUntil = undefined
    }),
    failedSends: Effect.sync(() => failedSends)
  })
})

/** One destination behind both tags: the ESM sees `FailureDestination`, tests `MemoryFailureDestination`. */
export const layerMemory: Layer.Layer<FailureDestination.FailureDestination | MemoryFailureDestination> =
  Layer.effectContext(
    Effect.map(make, (destination) =>
      Context.make(MemoryFailureDestination, destination).pipe(
        Context.add(FailureDestination.FailureDestination, destination)
      )
    )
  )
