/**
 * The cleaner: raw clickstream records (one event, or a JSON array of events, per record) →
 * normalized clean events in the clean stream, partitioned by session.
 *
 * Per event, in order: decode and normalize (`Clickstream.normalize`); drop what is invalid
 * (with its reason), of a type not configured (`unwantedType`), sent by a bot (its user agent
 * matches `botUserAgents`) or older than `maxEventAgeMillis` (`tooOld`) — each drop counted by
 * reason; then remove the configured PII fields. A session's events of the batch become one
 * clean record (more when they exceed a record's size), partitioned by session id.
 *
 * Order: PutRecords does not keep order inside one call, and retrying only the refused entries
 * reorders them (docs/aws-behaviour.md §1.3), so each call carries at most one record per
 * session: a session's second record is sent only once its first is stored. A call that stored
 * some records is followed by the next after `Schedules.cleanPutProgressPause`; calls that store
 * nothing are retried on `Schedules.cleanPut` (≤ 20 s); the raw records whose events could still not be put are
 * returned as `failed`, for the partial batch response (Lambda sends everything from the lowest
 * of them again; the metrics stage skips events it already counted, by event id).
 */
import { Clock, Effect, Metric, Result } from "effect"
import * as Clickstream from "../Clickstream.js"
import type * as LambdaEvents from "../LambdaEvents.js"
import { toStreamRecord } from "../LambdaEvents.js"
import * as RecordStream from "../RecordStream.js"
import * as Schedules from "../Schedules.js"

/** The event types a shop's dashboard is built on; others are dropped as unwanted. */
export const defaultEventTypes: ReadonlyArray<string> = [
  "page_view",
  "product_view",
  "search",
  "add_to_cart",
  "remove_from_cart",
  "checkout",
  "purchase"
]

/** User agents of crawlers, monitors, headless browsers and HTTP libraries. */
export const defaultBotUserAgents =
  /bot\b|bot\/|crawler|spider|crawling|slurp|headless|phantomjs|puppeteer|playwright|lighthouse|facebookexternalhit|bingpreview|python-requests|python-urllib|curl\/|wget\/|go-http-client|okhttp|java\/|apache-httpclient|axios\/|node-fetch|pingdom|uptimerobot|statuscake/i

export interface CleanConfig {
  /** Normalized event types to keep; `"all"` keeps every type. */
  readonly eventTypes: ReadonlySet<string> | "all"
  readonly botUserAgents: RegExp
  /** Events older than this (by their own timestamp, against the cleaner's clock) are dropped. */
  readonly maxEventAgeMillis: number
  /** Events further than this in the future are invalid (a client clock that is wrong). */
  readonly maxClockSkewMillis: number
  /** Fields removed from every clean event (`client.ip`, `attributes.email`, …). */
  readonly piiFields: ReadonlyArray<Clickstream.FieldPath>
  readonly streamLimits?: RecordStream.Limits
}

export const defaultConfig: CleanConfig = {
  eventTypes: new Set(defaultEventTypes),
  botUserAgents: defaultBotUserAgents,
  // Half of the Datadog intake's one-hour window, so a metric still lands after delays downstream.
  maxEventAgeMillis: 30 * 60_000,
  // The intake refuses points more than 10 minutes ahead.
  maxClockSkewMillis: 5 * 60_000,
  piiFields: [
    ["client", "ip"],
    ["attributes", "email"],
    ["attributes", "phone"]
  ]
}

export type DropReason = "invalid" | "unwantedType" | "bot" | "tooOld"

export interface CleanResult {
  readonly records: number
  readonly events: number
  /** Clean events now in the clean stream. */
  readonly kept: number
  readonly dropped: Readonly<Record<DropReason, number>>
  /** The first invalid events, with their reasons (for the log). */
  readonly invalid: ReadonlyArray<{ readonly sequenceNumber: string; readonly reason: string }>
  /** Clean records stored. */
  readonly put: number
  /** Raw records with events that could not be put: report them so the mapping sends them again. */
  readonly failed: ReadonlyArray<{ readonly sequenceNumber: string; readonly reason: string }>
}

export const eventsRead = Metric.counter("clickstream_events_read", { incremental: true })
export const eventsKept = Metric.counter("clickstream_events_kept", { incremental: true })
export const droppedInvalid = Metric.counter("clickstream_events_dropped_invalid", { incremental: true })
export const droppedUnwantedType = Metric.counter("clickstream_events_dropped_unwanted_type", {
  incremental: true
})
export const droppedBot = Metric.counter("clickstream_events_dropped_bot", { incremental: true })
export const droppedTooOld = Metric.counter("clickstream_events_dropped_too_old", { incremental: true })
export const recordsNotPut = Metric.counter("clickstream_records_not_put", { incremental: true })

const maxInvalidReported = 10
const putConcurrency = 4
const utf8 = new TextDecoder("utf-8", { fatal: true })

interface Session {
  readonly events: Array<Clickstream.CleanEvent>
  readonly sequenceNumbers: Set<string>
}

interface Packed extends RecordStream.PutEntry {
  readonly sessionId: string
  readonly events: number
}

/** The events of a raw record: a JSON object, or a JSON array of them. */
const eventsOf = (data: Uint8Array): Result.Result<ReadonlyArray<unknown>, string> => {
  let text: string
  try {
    text = utf8.decode(data)
  } catch {
    return Result.fail("record data is not valid UTF-8")
  }
  try {
    const value: unknown = JSON.parse(text)
    return Result.succeed(Array.isArray(value) ? value : [value])
  } catch {
    return Result.fail("record data is not JSON")
  }
}

/** A session's clean events as records of at most the stream's record size, in order. */
const pack = (
  sessionId: string,
  events: ReadonlyArray<Clickstream.CleanEvent>,
  limits: RecordStream.Limits
): Array<Packed> => {
  const maxBytes = limits.maxBytesPerRecord - Buffer.byteLength(sessionId, "utf8")
  const whole = Clickstream.encodeCleanRecord({ v: 1, sessionId, events: [...events] })
  if (whole.byteLength <= maxBytes || events.length === 1) {
    return [{ partitionKey: sessionId, data: whole, sessionId, events: events.length }]
  }
  const middle = Math.ceil(events.length / 2)
  return [
    ...pack(sessionId, events.slice(0, middle), limits),
    ...pack(sessionId, events.slice(middle), limits)
  ]
}

class StillPending {
  readonly _tag = "StillPending"
  constructor(readonly isRetryable: boolean) {}
}

/**
 * Puts each session's records in order (see the module header): at most one record per session
 * per call. A call that stored some records is followed at once (after
 * `Schedules.cleanPutProgressPause`) by the next, with every session's next record; only calls
 * that store nothing count against `Schedules.cleanPut`, so a session with many records is not
 * given up on while the stream takes some of them. Returns the records never stored, with the
 * last reason.
 */
const putInOrder = (
  stream: RecordStream.Service,
  queues: ReadonlyArray<Array<Packed>>,
  limits: RecordStream.Limits
): Effect.Effect<{
  readonly stored: number
  readonly unstored: ReadonlyArray<{ packed: Packed; reason: string }>
}> => {
  let stored = 0
  let lastReason = "not sent"
  /** One call per chunk of heads; whether it stored anything and whether a retry can help. */
  const call = Effect.gen(function* () {
    const heads = queues.flatMap((queue) => (queue.length > 0 ? [queue] : []))
    if (heads.length === 0) return { done: true, progress: true, retryable: true }
    const outcomes = yield* Effect.forEach(
      RecordStream.chunkEntries(
        heads.map((queue) => queue[0]!),
        limits
      ),
      (chunk) =>
        stream.putRecords(chunk).pipe(
          Effect.map((answers) => ({ chunk, answers, error: undefined })),
          Effect.catch((error) =>
            Effect.succeed({ chunk, answers: [] as ReadonlyArray<RecordStream.PutOutcome>, error })
          )
        ),
      { concurrency: putConcurrency }
    )
    let progress = false
    let retryable = true
    for (const { chunk, answers, error } of outcomes) {
      if (error !== undefined) {
        retryable &&= error.isRetryable
        lastReason = `${error.reason}: ${error.message}`
        continue
      }
      chunk.forEach((packed, i) => {
        const answer = answers[i]
        if (answer?._tag === "Stored") {
          stored++
          progress = true
          queues.find((queue) => queue[0] === packed)?.shift()
        } else {
          lastReason =
            answer === undefined
              ? "the stream gave no answer for this record"
              : `${answer.errorCode}: ${answer.message}`
        }
      })
    }
    return { done: queues.every((queue) => queue.length === 0), progress, retryable }
  })
  const untilStuck = Effect.gen(function* () {
    while (true) {
      const { done, progress, retryable } = yield* call
      if (done) return
      if (!progress) return yield* Effect.fail(new StillPending(retryable))
      yield* Effect.sleep(Schedules.cleanPutProgressPause)
    }
  })
  return untilStuck.pipe(
    Effect.retry({ schedule: Schedules.cleanPut, while: (e) => e.isRetryable }),
    Effect.ignore,
    Effect.map(() => ({
      stored,
      unstored: queues.flatMap((queue) => queue.map((packed) => ({ packed, reason: lastReason })))
    }))
  )
}

export const clean = Effect.fn("Clickstream.clean")(function* (
  records: ReadonlyArray<RecordStream.StreamRecord>,
  config: CleanConfig = defaultConfig
): Effect.fn.Return<CleanResult, never, RecordStream.RecordStream> {
  const limits = config.streamLimits ?? RecordStream.defaultLimits
  const now = yield* Clock.currentTimeMillis
  const dropped: Record<DropReason, number> = { invalid: 0, unwantedType: 0, bot: 0, tooOld: 0 }
  const invalid: Array<{ sequenceNumber: string; reason: string }> = []
  const drop = (reason: DropReason, sequenceNumber: string, why?: string) => {
    dropped[reason]++
    if (reason === "invalid" && invalid.length < maxInvalidReported)
      invalid.push({ sequenceNumber, reason: why ?? "" })
  }
  const sessions = new Map<string, Session>()
  let events = 0
  let kept = 0

  for (const record of records) {
    const inputs = eventsOf(record.data)
    if (Result.isFailure(inputs)) {
      events++
      drop("invalid", record.sequenceNumber, inputs.failure)
      continue
    }
    for (const input of inputs.success) {
      events++
      const decoded = Clickstream.decodeClickEvent(input)
      if (Result.isFailure(decoded)) {
        drop("invalid", record.sequenceNumber, decoded.failure.reason)
        continue
      }
      const normalized = Clickstream.normalize(decoded.success.event, decoded.success.attributes)
      if (Result.isFailure(normalized)) {
        drop("invalid", record.sequenceNumber, normalized.failure.reason)
        continue
      }
      const event = normalized.success
      if (event.timestamp - now > config.maxClockSkewMillis) {
        drop(
          "invalid",
          record.sequenceNumber,
          `timestamp: is ${Math.round((event.timestamp - now) / 1000)} s in the future (at most ${config.maxClockSkewMillis / 1000} s)`
        )
        continue
      }
      if (config.eventTypes !== "all" && !config.eventTypes.has(event.type)) {
        drop("unwantedType", record.sequenceNumber)
        continue
      }
      const userAgent = event.client.userAgent
      if (userAgent !== undefined && config.botUserAgents.test(userAgent)) {
        drop("bot", record.sequenceNumber)
        continue
      }
      if (now - event.timestamp > config.maxEventAgeMillis) {
        drop("tooOld", record.sequenceNumber)
        continue
      }
      let session = sessions.get(event.sessionId)
      if (session === undefined) {
        session = { events: [], sequenceNumbers: new Set() }
        sessions.set(event.sessionId, session)
      }
      session.events.push(Clickstream.removeFields(event, config.piiFields))
      session.sequenceNumbers.add(record.sequenceNumber)
      kept++
    }
  }

  const queues = [...sessions].map(([sessionId, session]) => pack(sessionId, session.events, limits))
  const { stored, unstored } =
    queues.length === 0
      ? { stored: 0, unstored: [] }
      : yield* putInOrder(yield* RecordStream.RecordStream, queues, limits)
  const failedSequences = new Map<string, string>()
  let notPutEvents = 0
  for (const { packed, reason } of unstored) {
    notPutEvents += packed.events
    for (const sequenceNumber of sessions.get(packed.sessionId)?.sequenceNumbers ?? []) {
      if (!failedSequences.has(sequenceNumber)) failedSequences.set(sequenceNumber, reason)
    }
  }

  yield* Metric.update(eventsRead, events)
  yield* Metric.update(eventsKept, kept - notPutEvents)
  yield* Metric.update(droppedInvalid, dropped.invalid)
  yield* Metric.update(droppedUnwantedType, dropped.unwantedType)
  yield* Metric.update(droppedBot, dropped.bot)
  yield* Metric.update(droppedTooOld, dropped.tooOld)
  yield* Metric.update(recordsNotPut, unstored.length)
  return {
    records: records.length,
    events,
    kept: kept - notPutEvents,
    dropped,
    invalid,
    put: stored,
    failed: [...failedSequences].map(([sequenceNumber, reason]) => ({ sequenceNumber, reason }))
  }
})

/** The cleaner on a Kinesis event: the partial batch response names the raw records not put, lowest first. */
export const cleanKinesisEvent = (
  event: LambdaEvents.KinesisEvent,
  config: CleanConfig = defaultConfig
): Effect.Effect<
  LambdaEvents.BatchResponse & { readonly result: CleanResult },
  never,
  RecordStream.RecordStream
> =>
  clean(event.Records.map(toStreamRecord), config).pipe(
    Effect.map((result) => ({
      result,
      batchItemFailures: [...result.failed]
        .sort((a, b) => RecordStream.compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber))
        .map((f) => ({ itemIdentifier: f.sequenceNumber }))
    }))
  )
