/**
 * The redriver: puts records parked in the fallback queue back into the stream.
 *
 * Per message: when every record is stored, the message is done. When the stream takes some and
 * refuses others, the refused ones are parked again as a new message, held back by
 * `Schedules.reparkDelaySeconds`, and the original is done, so stored records are not put twice.
 *
 * When the stream refuses the whole call (outage), the message is reported failed, and when its
 * receipt handle is known (an SQS event) its visibility is first set to
 * `Schedules.redriveVisibilitySeconds` of its receive count: a second at first, then a few, so it
 * comes back within seconds of the stream's recovery rather than after the queue's visibility
 * timeout. If that call fails, the queue's timeout applies, as before. A body that is not a
 * fallback message is reported failed too, with its visibility left alone, so the queue's redrive
 * policy moves it to its dead-letter queue after `maxReceiveCount` receives: kept, never dropped.
 */
import { Effect, Metric, Result } from "effect"
import * as FallbackQueue from "../FallbackQueue.js"
import type * as LambdaEvents from "../LambdaEvents.js"
import * as Metrics from "../Metrics.js"
import * as RecordStream from "../RecordStream.js"
import * as Schedules from "../Schedules.js"
import { encodeEnvelope, type TelemetryEnvelope } from "../Telemetry.js"
import { decodeFallbackMessage, encodeFallbackMessages } from "./fallbackMessages.js"

export interface ParkedMessage {
  readonly messageId: string
  readonly body: string
  /** The handle of this receive: with it, a message that must come back is held back briefly. */
  readonly receiptHandle?: string
  /** `ApproximateReceiveCount`, this receive included; `redriveVisibilitySeconds` grows with it. */
  readonly receiveCount?: number
}

export interface RedriveFailure {
  readonly messageId: string
  readonly reason: string
}

export interface RedriveResult {
  /** Records now in the stream. */
  readonly stored: number
  /** Records the stream refused that were parked again in a new message. */
  readonly reparked: number
  /** Messages to leave on the queue (their records come back after the visibility timeout). */
  readonly failed: ReadonlyArray<RedriveFailure>
}

export interface RedriveOptions {
  readonly streamLimits?: RecordStream.Limits
  readonly queueLimits?: FallbackQueue.Limits
}

interface Entry extends RecordStream.PutEntry {
  readonly message: number
  readonly index: number
  readonly envelope: TelemetryEnvelope
}

export const redrive = Effect.fn("redrive")(function* (
  messages: ReadonlyArray<ParkedMessage>,
  options: RedriveOptions = {}
): Effect.fn.Return<RedriveResult, never, RecordStream.RecordStream | FallbackQueue.FallbackQueue> {
  const stream = yield* RecordStream.RecordStream
  const queue = yield* FallbackQueue.FallbackQueue
  const failures = new Map<number, string>()
  // Messages whose body cannot be redriven: trying them sooner cannot help.
  const malformed = new Set<number>()
  const attempts = new Map<number, number>()
  const entries: Array<Entry> = []
  messages.forEach((m, message) => {
    const decoded = decodeFallbackMessage(m.body)
    if (Result.isFailure(decoded)) {
      failures.set(message, decoded.failure)
      malformed.add(message)
      return
    }
    attempts.set(message, decoded.success.attempt)
    decoded.success.records.forEach((envelope, index) =>
      entries.push({
        message,
        index,
        envelope,
        partitionKey: envelope.record.id,
        data: encodeEnvelope(envelope)
      })
    )
  })

  const refused: Array<Entry> = []
  let stored = 0
  yield* Effect.forEach(
    RecordStream.chunkEntries(entries, options.streamLimits),
    (chunk) =>
      stream.putRecords(chunk).pipe(
        Effect.map((outcomes) => {
          chunk.forEach((entry, i) => {
            if (outcomes[i]?._tag === "Stored") stored++
            else refused.push(entry)
          })
        }),
        Effect.catchTag("RecordStreamError", (error) =>
          Effect.sync(() => {
            for (const entry of chunk)
              failures.set(entry.message, `stream refused the call: ${error.message}`)
          })
        )
      ),
    { concurrency: 4 }
  )

  // Re-park what was refused entry by entry, for messages not already failing as a whole.
  const toRepark = refused.filter((e) => !failures.has(e.message))
  let reparked = 0
  if (toRepark.length > 0) {
    const attempt = 1 + Math.max(...toRepark.map((e) => attempts.get(e.message) ?? 0))
    const packed = encodeFallbackMessages(
      toRepark.map((e, index) => ({ index, data: e.data })),
      options.queueLimits ?? FallbackQueue.defaultLimits,
      { attempt, delaySeconds: Schedules.reparkDelaySeconds(attempt) }
    )
    for (const batch of packed.batches) {
      const outcomes = yield* queue.send(batch.map((p) => p.message)).pipe(Effect.result)
      batch.forEach((p, i) => {
        const outcome = Result.isSuccess(outcomes) ? outcomes.success[i] : undefined
        if (outcome?._tag === "Sent") reparked += p.indexes.length
        else {
          const reason = Result.isFailure(outcomes)
            ? outcomes.failure.message
            : (outcome?.message ?? "not sent")
          for (const index of p.indexes)
            failures.set(toRepark[index]!.message, `could not park refused records: ${reason}`)
        }
      })
    }
  }

  // What must come back is held back briefly, not for the queue's whole visibility timeout.
  yield* Effect.forEach(
    failures.keys(),
    (message) => {
      const { receiptHandle, receiveCount } = messages[message]!
      return malformed.has(message) || receiptHandle === undefined
        ? Effect.void
        : queue
            .changeVisibility(receiptHandle, Schedules.redriveVisibilitySeconds(receiveCount ?? 1))
            .pipe(Effect.ignore)
    },
    { concurrency: 10, discard: true }
  )

  yield* Metric.update(Metrics.recordsRedriven, stored)
  return {
    stored,
    reparked,
    failed: [...failures].map(([message, reason]) => ({ messageId: messages[message]!.messageId, reason }))
  }
})

/** The Lambda side of the redriver: failed messages are reported so that SQS keeps them. */
export const redriveSqsEvent = (
  event: LambdaEvents.SqsEvent,
  options: RedriveOptions = {}
): Effect.Effect<
  LambdaEvents.BatchResponse & { readonly result: RedriveResult },
  never,
  RecordStream.RecordStream | FallbackQueue.FallbackQueue
> =>
  redrive(
    event.Records.map((r) => {
      const receiveCount = Number(r.attributes.ApproximateReceiveCount)
      return {
        messageId: r.messageId,
        body: r.body,
        receiptHandle: r.receiptHandle,
        ...(Number.isInteger(receiveCount) && receiveCount > 0 ? { receiveCount } : {})
      }
    }),
    options
  ).pipe(
    Effect.map((result) => ({
      result,
      batchItemFailures: result.failed.map((f) => ({ itemIdentifier: f.messageId }))
    }))
  )
