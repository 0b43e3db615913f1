/**
 * The collector: authorize, validate, stamp `receivedAt`, put into the stream partitioned by
 * record id. What the stream does not take — throttled or failed entries, or the whole call during
 * an outage — is parked in the fallback queue for the redriver, never dropped.
 *
 * Every valid record ends in exactly one of three places, and the result says which:
 * the stream (`stored`), the fallback queue (`parked`), or `unavailable` (neither would take it:
 * the caller must retry). Invalid records are `rejected` with the index and reason of each.
 *
 * The stage itself (`collectFor`) takes an `ApiKeys.Tenant`, which only `ApiKeys.authorize`
 * produces: it cannot run for a key nobody checked, and a caller that checked the key already
 * (the HTTP contract does, before reading the body) does not check it again. `collect` is the
 * same stage for callers holding the raw key: it authorizes once, then runs `collectFor`, and
 * ends with `KeyStoreUnavailable` (retryable: nothing was collected) when the keys could not be read.
 */
import { Clock, Effect, Metric, Result, Schema } from "effect"
import { ApiKeys, type KeyStoreUnavailable, type Tenant, type Unauthorized } from "../ApiKeys.js"
import * as FallbackQueue from "../FallbackQueue.js"
import * as Metrics from "../Metrics.js"
import * as PartialRetry from "../PartialRetry.js"
import * as RecordStream from "../RecordStream.js"
import * as Schedules from "../Schedules.js"
import { decodeRecord, encodeEnvelope, makeEnvelope, type TelemetryEnvelope } from "../Telemetry.js"
import { encodeFallbackMessages } from "./fallbackMessages.js"

/** The request body was not a non-empty JSON array of at most `maxRecordsPerRequest` items. */
export class InvalidBody extends Schema.TaggedError<InvalidBody>()("InvalidBody", {
  reason: Schema.String
}) {
  get isRetryable(): boolean {
    return false
  }
}

export interface Rejection {
  readonly index: number
  readonly reason: string
}

export interface CollectResult {
  readonly tenant: string
  /** Records that are safe: in the stream or in the fallback queue. */
  readonly accepted: number
  readonly stored: number
  readonly parked: number
  readonly rejected: ReadonlyArray<Rejection>
  /** Valid records neither the stream nor the fallback queue took; the client must send them again. */
  readonly unavailable: ReadonlyArray<Rejection>
  readonly receivedAt: number
}

export interface CollectOptions {
  readonly streamLimits?: RecordStream.Limits
  readonly queueLimits?: FallbackQueue.Limits
  /** Records per request. @default defaultMaxRecordsPerRequest (1,000) */
  readonly maxRecordsPerRequest?: number
}

/**
 * 1,000 records a request: two `PutRecords` calls of Kinesis' 500-entry maximum, sent in one
 * round (`putConcurrency`), so a full request costs the client one stream round trip.
 */
export const defaultMaxRecordsPerRequest = 1000

interface Candidate extends RecordStream.PutEntry {
  readonly index: number
  readonly envelope: TelemetryEnvelope
}

const putConcurrency = 4

/** Authorizes `apiKey` (once), then collects `body` for its tenant. */
export const collect = Effect.fn("collect")(function* (
  apiKey: string | undefined,
  body: unknown,
  options: CollectOptions = {}
): Effect.fn.Return<
  CollectResult,
  Unauthorized | KeyStoreUnavailable | InvalidBody,
  ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue
> {
  const tenant = yield* (yield* ApiKeys).authorize(apiKey)
  return yield* collectFor(tenant, body, options)
})

/** The stage: validates, stamps and stores the records of `body` for an authorized tenant. */
export const collectFor = Effect.fn("collectFor")(function* (
  tenant: Tenant,
  body: unknown,
  options: CollectOptions = {}
): Effect.fn.Return<CollectResult, InvalidBody, RecordStream.RecordStream | FallbackQueue.FallbackQueue> {
  const streamLimits = options.streamLimits ?? RecordStream.defaultLimits
  const queueLimits = options.queueLimits ?? FallbackQueue.defaultLimits
  const maxRecords = options.maxRecordsPerRequest ?? defaultMaxRecordsPerRequest

  if (!Array.isArray(body)) return yield* new InvalidBody({ reason: "body must be a JSON array of records" })
  if (body.length === 0) return yield* new InvalidBody({ reason: "body must contain at least one record" })
  if (body.length > maxRecords) {
    return yield* new InvalidBody({
      reason: `body has ${body.length} records; at most ${maxRecords} per request (send the rest in another request)`
    })
  }

  const receivedAt = yield* Clock.currentTimeMillis
  // A record must fit one stream entry and, if parked, one queue message (with room for the
  // message's JSON wrapper).
  const maxRecordBytes = Math.min(streamLimits.maxBytesPerRecord, queueLimits.maxMessageBytes - 256)
  const rejected: Array<Rejection> = []
  const candidates: Array<Candidate> = []
  body.forEach((input, index) => {
    const decoded = decodeRecord(input)
    if (Result.isFailure(decoded)) {
      rejected.push({ index, reason: decoded.failure.reason })
      return
    }
    const envelope = makeEnvelope(tenant, receivedAt, decoded.success)
    const data = encodeEnvelope(envelope)
    const entry = { index, envelope, partitionKey: decoded.success.id, data }
    const size = RecordStream.entrySize(entry)
    if (size > maxRecordBytes) {
      rejected.push({ index, reason: `record is ${size} bytes; at most ${maxRecordBytes} bytes per record` })
      return
    }
    candidates.push(entry)
  })

  const stream = yield* RecordStream.RecordStream
  const notStored = yield* Effect.forEach(
    RecordStream.chunkEntries(candidates, streamLimits),
    (chunk) =>
      stream.putRecords(chunk).pipe(
        Effect.map((outcomes) => chunk.filter((_, i) => outcomes[i]?._tag !== "Stored")),
        // The stream refused the whole call: every entry of it goes to the fallback queue.
        Effect.catchTag("RecordStreamError", () => Effect.succeed(chunk))
      ),
    { concurrency: putConcurrency }
  ).pipe(Effect.map((chunks) => chunks.flat()))

  const unavailable = yield* park(notStored, queueLimits)
  const parked = notStored.length - unavailable.length
  const stored = candidates.length - notStored.length

  yield* Metric.update(Metrics.recordsCollected, parked + stored)
  yield* Metric.update(Metrics.recordsRejected, rejected.length)
  yield* Metric.update(Metrics.recordsParked, parked)

  return {
    tenant,
    accepted: stored + parked,
    stored,
    parked,
    rejected,
    unavailable,
    receivedAt
  }
})

/**
 * Sends records to the fallback queue, retrying whole-call and per-entry transient failures on
 * `Schedules.fallbackSend`. Returns the records that could not be parked.
 */
const park = (
  records: ReadonlyArray<Candidate>,
  limits: FallbackQueue.Limits
): Effect.Effect<ReadonlyArray<Rejection>, never, FallbackQueue.FallbackQueue> =>
  Effect.gen(function* () {
    if (records.length === 0) return []
    const queue = yield* FallbackQueue.FallbackQueue
    const messages = encodeFallbackMessages(records, limits)
    const failed: Array<Rejection> = []
    for (const batch of messages.batches) {
      const outcomes = yield* sendBatch(
        queue,
        batch.map((m) => m.message)
      )
      batch.forEach((m, i) => {
        const outcome = outcomes[i]
        if (outcome?._tag !== "Sent") {
          const reason = `stream and fallback queue unavailable: ${outcome?.message ?? "not sent"}`
          for (const index of m.indexes) failed.push({ index, reason })
        }
      })
    }
    return failed
  })

/**
 * One `send`, with the entries that failed transiently (and whole-call failures) tried again on
 * `Schedules.fallbackSend`. Entries refused for their own content (`senderFault`) are not retried.
 */
const sendBatch = (
  queue: FallbackQueue.Service,
  messages: ReadonlyArray<FallbackQueue.OutgoingMessage>
): Effect.Effect<ReadonlyArray<FallbackQueue.SendOutcome>> =>
  PartialRetry.retryPending({
    items: messages,
    send: queue.send,
    isSettled: (outcome) => outcome._tag === "Sent" || outcome.senderFault,
    whenCallFails: (error): FallbackQueue.SendOutcome => ({
      _tag: "Failed",
      code: error.reason,
      senderFault: false,
      message: error.message
    }),
    whenUnanswered: { _tag: "Failed", code: "Unavailable", senderFault: false, message: "not sent" },
    schedule: Schedules.fallbackSend
  })
