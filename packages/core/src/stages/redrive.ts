/**
 * The redriver: puts records parked in the fallback queue back into the stream.
 *
 * Per message: when every record is stored, the message is done. What the stream refuses entry
 * by entry (per-shard throttling) is put again a second later, oldest first, up to
 * `Schedules.redriveThrottledRetries` times (the shard's budget refills every second, and holding
 * the records in the invocation paces the redrive to the redriver's bounded concurrency); what is
 * still refused is parked again as new messages spread over `Schedules.reparkDelaySeconds`
 * (`Schedules.reparkSlots`, the oldest records the soonest), and the original is done, so stored
 * records are not put twice. (A refused call on such a retry parks its entries again too, for the
 * same reason. Records are put twice only when a message is reported failed after some of its
 * records were stored: when its records span calls of the first pass and one of them is refused,
 * or when parking the refused ones fails; the processor skips the copies by id.)
 *
 * When the stream refuses the whole call (outage), the message is reported failed, and when its
 * receipt handle is known (an SQS event) its visibility is first set to
 * `Schedules.redriveVisibilitySeconds` of how long its oldest record has waited: a second
 * for the first 50 s, then about 2% of that time, so it comes back within seconds of the stream's
 * recovery rather than after the queue's visibility timeout. If that call fails, the queue's
 * timeout applies, as before. A body that is not a fallback message is reported failed too, with
 * its visibility left alone, so the queue's redrive policy moves it to its dead-letter queue
 * after `maxReceiveCount` receives: kept, never dropped.
 */
import { Clock, Effect, Metric, Result } from "effect"
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
  // Per message, when the collector received its oldest record: how long it has been parked.
  const oldest = new Map<number, number>()
  const entries: Array<Entry> = []
  messages.forEach((m, message) => {
    const decoded = decodeFallbackMessage(m.body)
    if (Result.isFailure(decoded)) {
      failures.set(message, decoded.failure)
      malformed.add(message)
      return
    }
    attempts.set(message, decoded.success.attempt)
    let first = Number.POSITIVE_INFINITY
    decoded.success.records.forEach((envelope, index) => {
      first = Math.min(first, envelope.receivedAt)
      entries.push({
        message,
        index,
        envelope,
        partitionKey: envelope.record.id,
        data: encodeEnvelope(envelope)
      })
    })
    oldest.set(message, first)
  })

  let stored = 0
  /**
   * Puts `batch`; what the stream refused entry by entry comes back, oldest first, except the
   * entries of messages failing as a whole. A refused call fails its messages on the first pass;
   * on a retry (`retrying`), their other records may already be stored, so its entries come back
   * as refused too, to be parked again rather than put twice.
   */
  const putAll = (batch: ReadonlyArray<Entry>, retrying: boolean) =>
    Effect.gen(function* () {
      const refusedNow: Array<Entry> = []
      yield* Effect.forEach(
        RecordStream.chunkEntries(batch, options.streamLimits),
        (chunk) =>
          stream.putRecords(chunk).pipe(
            Effect.map((outcomes) => {
              chunk.forEach((entry, i) => {
                if (outcomes[i]?._tag === "Stored") stored++
                else refusedNow.push(entry)
              })
            }),
            Effect.catchTag("RecordStreamError", (error) =>
              Effect.sync(() => {
                if (retrying) refusedNow.push(...chunk)
                else
                  for (const entry of chunk)
                    failures.set(entry.message, `stream refused the call: ${error.message}`)
              })
            )
          ),
        { concurrency: 4 }
      )
      return refusedNow
        .filter((e) => !failures.has(e.message))
        .sort((a, b) => a.envelope.receivedAt - b.envelope.receivedAt)
    })

  // What the stream refused entry by entry is put again after its budget refills, oldest first.
  let toRepark = yield* putAll(entries, false)
  for (let retry = 0; retry < Schedules.redriveThrottledRetries && toRepark.length > 0; retry++) {
    yield* Effect.sleep(Schedules.redriveThrottledSpacing)
    toRepark = yield* putAll(toRepark, true)
  }

  // Re-park what is still refused, spread over the attempt's delay (`reparkSlots`), the oldest
  // records in the earliest seconds.
  let reparked = 0
  if (toRepark.length > 0) {
    const attempt = 1 + Math.max(...toRepark.map((e) => attempts.get(e.message) ?? 0))
    for (const slot of Schedules.reparkSlots(toRepark.length, attempt)) {
      const group = toRepark.slice(slot.from, slot.to)
      const packed = encodeFallbackMessages(
        group.map((e, index) => ({ index, data: e.data })),
        options.queueLimits ?? FallbackQueue.defaultLimits,
        { attempt, delaySeconds: slot.delaySeconds }
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
              failures.set(group[index]!.message, `could not park refused records: ${reason}`)
          }
        })
      }
    }
  }

  // What must come back is held back briefly, not for the queue's whole visibility timeout.
  const now = yield* Clock.currentTimeMillis
  yield* Effect.forEach(
    failures.keys(),
    (message) => {
      const { receiptHandle } = messages[message]!
      const parkedSince = oldest.get(message) ?? now
      return malformed.has(message) || receiptHandle === undefined
        ? Effect.void
        : queue
            .changeVisibility(receiptHandle, Schedules.redriveVisibilitySeconds((now - parkedSince) / 1000))
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
    event.Records.map((r) => ({ messageId: r.messageId, body: r.body, receiptHandle: r.receiptHandle })),
    options
  ).pipe(
    Effect.map((result) => ({
      result,
      batchItemFailures: result.failed.map((f) => ({ itemIdentifier: f.messageId }))
    }))
  )
