/**
 * The forwarder: what the metrics log group's subscription filter delivers (base64 of gzip of
 * `{logEvents}`, `CloudWatchLogs`) → metric lines (`MetricLine`) → series aggregated per metric,
 * tag set and second (`MetricsSink.aggregate`) → the metrics sink, in payloads within its limits
 * (`sendSeries`), and what the sink would not take → the spool, before the invocation answers.
 *
 * Guarantees (the Datadog forwarder's lost metrics, platform-facts §8, are what they rule out):
 * - nothing is acknowledged that is not delivered or stored: the stage succeeds only once every
 *   point is accepted by the sink or written to the spool (`pending` to be retried, `parked` when
 *   the intake can never take it: refused for its content, or outside its one-hour window). A
 *   spool that cannot be written fails the stage (`SpoolUnavailable`), so Lambda delivers the
 *   event again rather than losing it;
 * - every non-2xx answer is a failure; reading the API key is the sink's first step of a send,
 *   so a key that cannot be read spools the payload instead of losing it;
 * - what cannot be read is counted and reported, and never stops the rest: data that is not
 *   base64, gzip that is truncated, a message that is not a subscription message, a metric line
 *   that is truncated or has a bad field (`MetricLine.parse`);
 * - a log event delivered again (CloudWatch Logs is at-least-once, Lambda retries async
 *   invocations) is skipped by id while the execution environment remembers it.
 */
import { Clock, Effect, Metric, Result, Schema } from "effect"
import * as CloudWatchLogs from "../CloudWatchLogs.js"
import { DedupCache } from "../DedupCache.js"
import * as MetricLine from "../MetricLine.js"
import * as MetricSpool from "../MetricSpool.js"
import * as MetricsSink from "../MetricsSink.js"
import * as Schedules from "../Schedules.js"
import { sendSeries } from "./sendMetrics.js"

/** The spool could not be written: the invocation must fail so that Lambda delivers it again. */
export class SpoolUnavailable extends Schema.TaggedError<SpoolUnavailable>()("SpoolUnavailable", {
  message: Schema.String,
  /** Points that were neither delivered nor stored. */
  points: Schema.Int
}) {
  get isRetryable(): boolean {
    return true
  }
}

export interface ForwardOptions {
  /** EMF namespaces to forward; documents of others are skipped (counted). @default every namespace */
  readonly namespaces?: ReadonlySet<string> | undefined
}

export interface Problem {
  readonly reason: string
  /** The log event, when the problem is one line's. */
  readonly logEventId?: string
}

export interface ForwardResult {
  readonly payloads: number
  readonly controlMessages: number
  /** Payloads that could not be read at all, with why. */
  readonly invalidPayloads: ReadonlyArray<Problem>
  readonly logEvents: number
  readonly duplicateLogEvents: number
  readonly metricLines: number
  /** Lines that are not metrics (the function's own logs, START/END/REPORT). */
  readonly otherLines: number
  /** EMF documents of namespaces not forwarded. */
  readonly skippedLines: number
  readonly malformedLines: number
  /** The first malformed lines, with why. */
  readonly malformed: ReadonlyArray<Problem>
  readonly samples: number
  /** Points after aggregation. */
  readonly points: number
  readonly delivered: number
  readonly requests: number
  /** Points written to the spool to be retried. */
  readonly spooled: number
  /** Points set aside in the spool (never retried automatically). */
  readonly parked: number
  readonly spoolKeys: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
}

export const invalidPayloads = Metric.counter("spillway_forwarder_invalid_payloads", { incremental: true })
export const malformedLines = Metric.counter("spillway_forwarder_malformed_lines", { incremental: true })
export const pointsDelivered = Metric.counter("spillway_forwarder_points_delivered", { incremental: true })
export const pointsSpooled = Metric.counter("spillway_forwarder_points_spooled", { incremental: true })
export const pointsParked = Metric.counter("spillway_forwarder_points_parked", { incremental: true })

const maxProblemsReported = 10

/**
 * Writes an entry on `Schedules.spoolWrite`; the failure says what could not be stored.
 * Shared with the retrier.
 */
export const store = (
  entry: MetricSpool.Entry,
  area: MetricSpool.Area
): Effect.Effect<string, MetricSpool.MetricSpoolError, MetricSpool.MetricSpool> =>
  MetricSpool.MetricSpool.use((spool) =>
    spool.put(entry, area).pipe(Effect.retry({ schedule: Schedules.spoolWrite, while: (e) => e.isRetryable }))
  )

export const forward = Effect.fn("Clickstream.forward")(function* (
  payloads: ReadonlyArray<string>,
  options: ForwardOptions = {}
): Effect.fn.Return<
  ForwardResult,
  SpoolUnavailable,
  MetricsSink.MetricsSink | MetricSpool.MetricSpool | DedupCache
> {
  const cache = yield* DedupCache
  const invalid: Array<Problem> = []
  const malformed: Array<Problem> = []
  const samples: Array<MetricsSink.Sample> = []
  const sources = new Set<string>()
  let controlMessages = 0
  let logEvents = 0
  let duplicates = 0
  let metricLines = 0
  let otherLines = 0
  let skippedLines = 0
  let malformedCount = 0
  const seen = new Set<string>()
  const parseOptions = { namespaces: options.namespaces }

  for (const data of payloads) {
    const decoded = CloudWatchLogs.decodeData(data)
    if (Result.isFailure(decoded)) {
      invalid.push({ reason: `${decoded.failure.reason}: ${decoded.failure.message}` })
      continue
    }
    const message = decoded.success
    if (message.messageType === "CONTROL_MESSAGE") {
      controlMessages++
      continue
    }
    sources.add(`${message.logGroup} ${message.logStream}`)
    const keys = message.logEvents.map((e) => `logevent\u0000${message.logGroup}\u0000${e.id}`)
    const known = yield* cache.seen(keys)
    message.logEvents.forEach((logEvent, i) => {
      logEvents++
      if (known[i] === true || seen.has(keys[i]!)) {
        duplicates++
        return
      }
      seen.add(keys[i]!)
      const parsed = MetricLine.parse(logEvent.message, parseOptions)
      switch (parsed._tag) {
        case "Samples":
          metricLines++
          samples.push(...parsed.samples)
          break
        case "Skipped":
          skippedLines++
          break
        case "NotMetric":
          otherLines++
          break
        case "Malformed":
          malformedCount++
          if (malformed.length < maxProblemsReported)
            malformed.push({ reason: parsed.reason, logEventId: logEvent.id })
      }
    })
  }

  const series = MetricsSink.aggregate(samples)
  const points = MetricsSink.countPoints(series)
  const now = yield* Clock.currentTimeMillis
  const { current, outside } = MetricsSink.splitByWindow(series, Math.floor(now / 1000))
  const outcome = yield* sendSeries(current)

  const source = [...sources].slice(0, 3).join(", ")
  const toStore: Array<{ readonly entry: MetricSpool.Entry; readonly area: MetricSpool.Area }> =
    outcome.undelivered.map((u) => ({
      entry: {
        series: u.series,
        firstFailedAt: now,
        attempts: 1,
        reason: u.reason,
        ...(source === "" ? {} : { source })
      },
      area: u.park ? "parked" : "pending"
    }))
  if (outside.length > 0) {
    toStore.push({
      entry: {
        series: outside,
        firstFailedAt: now,
        attempts: 0,
        reason: "outside the intake's window (more than 1 hour old or 10 minutes ahead)",
        ...(source === "" ? {} : { source })
      },
      area: "parked"
    })
  }
  const spoolKeys: Array<string> = []
  let spooled = 0
  let parked = 0
  for (const { entry, area } of toStore) {
    const stored = yield* Effect.result(store(entry, area))
    if (Result.isFailure(stored)) {
      const left = toStore
        .slice(spoolKeys.length)
        .reduce((n, s) => n + MetricsSink.countPoints(s.entry.series), 0)
      return yield* new SpoolUnavailable({
        message: `${left} points could not be delivered nor spooled (${stored.failure.reason}: ${stored.failure.message}); failing so that Lambda delivers the log events again`,
        points: left
      })
    }
    spoolKeys.push(stored.success)
    if (area === "pending") spooled += MetricsSink.countPoints(entry.series)
    else parked += MetricsSink.countPoints(entry.series)
  }
  if (seen.size > 0) yield* cache.markProcessed([...seen])

  yield* Metric.update(invalidPayloads, invalid.length)
  yield* Metric.update(malformedLines, malformedCount)
  yield* Metric.update(pointsDelivered, outcome.delivered)
  yield* Metric.update(pointsSpooled, spooled)
  yield* Metric.update(pointsParked, parked)
  return {
    payloads: payloads.length,
    controlMessages,
    invalidPayloads: invalid.slice(0, maxProblemsReported),
    logEvents,
    duplicateLogEvents: duplicates,
    metricLines,
    otherLines,
    skippedLines,
    malformedLines: malformedCount,
    malformed,
    samples: samples.length,
    points,
    delivered: outcome.delivered,
    requests: outcome.requests,
    spooled,
    parked,
    spoolKeys,
    warnings: outcome.warnings.slice(0, maxProblemsReported)
  } satisfies ForwardResult
})

/** The forwarder on the event a subscription filter hands to Lambda. */
export const forwardSubscriptionEvent = (
  event: CloudWatchLogs.SubscriptionEvent,
  options: ForwardOptions = {}
): Effect.Effect<
  ForwardResult,
  SpoolUnavailable,
  MetricsSink.MetricsSink | MetricSpool.MetricSpool | DedupCache
> => forward([event.awslogs.data], options)
