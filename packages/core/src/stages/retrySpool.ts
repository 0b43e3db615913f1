/**
 * The forward retrier: run on a schedule (`Schedules.spoolRetryInterval`, an EventBridge rule in
 * production), it sends what the spool holds, oldest first, through the forwarder's own
 * mechanism (`sendSeries`), until every entry lands.
 *
 * Per entry: delivered whole → removed; delivered in part (a payload split after `TooLarge`) →
 * the rest stored as a new entry, then the old one removed (a crash between the two sends the
 * delivered part twice, never loses the rest); points that have left the intake's one-hour
 * window, or that it refuses for their content, are moved to the `parked` area. When the intake
 * is still unavailable (or throttling past the wait cap, or refusing the key) the run stops at
 * that entry: the next run starts there, and nothing later is tried for nothing. An entry that
 * cannot be read is counted and left where it is, for a person to look at (it keeps the spool's
 * age alarm raised). The run also stops when `continueWhile` says so (the deadline).
 *
 * It fails only when the spool itself cannot be listed or written: nothing is lost then either,
 * and the next run tries again.
 */
import { Clock, Effect, Metric } from "effect"
import * as MetricSpool from "../MetricSpool.js"
import * as MetricsSink from "../MetricsSink.js"
import * as Schedules from "../Schedules.js"
import { store } from "./forward.js"
import { sendSeries } from "./sendMetrics.js"

export interface RetryOptions {
  /** Entries listed per run. @default 100 */
  readonly maxEntries?: number
  /** Looked at before each entry; `false` ends the run there. @default always true */
  readonly continueWhile?: Effect.Effect<boolean>
}

export interface RetryResult {
  /** Pending entries listed. */
  readonly listed: number
  /** Entries delivered whole and removed. */
  readonly delivered: number
  readonly deliveredPoints: number
  /** Entries delivered in part, their rest stored again. */
  readonly requeued: number
  readonly parkedPoints: number
  readonly unreadable: ReadonlyArray<{ readonly key: string; readonly reason: string }>
  /** Seconds since the oldest points still pending first failed; `undefined` when none is left. */
  readonly oldestPendingAgeSeconds: number | undefined
  /** Why the run ended before the end of its listing, when it did. */
  readonly stopped?: string
}

export const spoolOldestAge = Metric.gauge("spillway_metric_spool_oldest_age_seconds")
export const spoolDelivered = Metric.counter("spillway_metric_spool_points_delivered", { incremental: true })
export const spoolUnreadable = Metric.counter("spillway_metric_spool_unreadable_entries", {
  incremental: true
})

const withRetries = <A>(effect: Effect.Effect<A, MetricSpool.MetricSpoolError>) =>
  effect.pipe(Effect.retry({ schedule: Schedules.spoolWrite, while: (e) => e.isRetryable }))

export const retrySpool = Effect.fn("Clickstream.retrySpool")(function* (
  options: RetryOptions = {}
): Effect.fn.Return<
  RetryResult,
  MetricSpool.MetricSpoolError,
  MetricsSink.MetricsSink | MetricSpool.MetricSpool
> {
  const spool = yield* MetricSpool.MetricSpool
  const items = yield* withRetries(spool.list(options.maxEntries ?? 100))
  const now = yield* Clock.currentTimeMillis
  const unreadable: Array<{ key: string; reason: string }> = []
  let delivered = 0
  let deliveredPoints = 0
  let requeued = 0
  let parkedPoints = 0
  let stopped: string | undefined
  /** `firstFailedAt` of what is still pending, oldest first matters only. */
  let oldestPending: number | undefined
  const notePending = (at: number) => {
    oldestPending = oldestPending === undefined ? at : Math.min(oldestPending, at)
  }

  for (const [index, item] of items.entries()) {
    if (options.continueWhile !== undefined && !(yield* options.continueWhile)) {
      stopped = "deadline"
      for (const rest of items.slice(index)) notePending(rest.spooledAt)
      break
    }
    const read = yield* Effect.result(withRetries(spool.read(item.key)))
    if (read._tag === "Failure") {
      if (read.failure.reason !== "Corrupt" && read.failure.reason !== "NotFound") return yield* read.failure
      if (read.failure.reason === "Corrupt") {
        unreadable.push({ key: item.key, reason: read.failure.message })
        notePending(item.spooledAt)
      }
      continue
    }
    const entry = read.success
    const { current, outside } = MetricsSink.splitByWindow(entry.series, Math.floor(now / 1000))
    if (outside.length > 0) {
      yield* store(
        {
          ...entry,
          series: outside,
          reason: "outside the intake's window (more than 1 hour old or 10 minutes ahead) when retried"
        },
        "parked"
      )
      parkedPoints += MetricsSink.countPoints(outside)
    }
    const outcome = yield* sendSeries(current)
    deliveredPoints += outcome.delivered
    if (outcome.undelivered.length === 0) {
      yield* withRetries(spool.remove(item.key))
      delivered++
      continue
    }
    const retryLater = outcome.undelivered.filter((u) => !u.park)
    for (const u of outcome.undelivered) {
      yield* store(
        { ...entry, series: u.series, attempts: entry.attempts + 1, reason: u.reason },
        u.park ? "parked" : "pending"
      )
      if (u.park) parkedPoints += MetricsSink.countPoints(u.series)
    }
    // Stored again (pending or parked) before the old entry goes: a crash here repeats, never loses.
    yield* withRetries(spool.remove(item.key))
    if (retryLater.length > 0) {
      notePending(entry.firstFailedAt)
      if (outcome.delivered > 0 || retryLater.length < outcome.undelivered.length) requeued++
      stopped = retryLater[0]!.reason
      for (const rest of items.slice(index + 1)) notePending(rest.spooledAt)
      break
    }
  }

  const oldestPendingAgeSeconds =
    oldestPending === undefined ? undefined : Math.max(0, Math.round((now - oldestPending) / 1000))
  yield* Metric.update(spoolOldestAge, oldestPendingAgeSeconds ?? 0)
  yield* Metric.update(spoolDelivered, deliveredPoints)
  yield* Metric.update(spoolUnreadable, unreadable.length)
  return {
    listed: items.length,
    delivered,
    deliveredPoints,
    requeued,
    parkedPoints,
    unreadable,
    oldestPendingAgeSeconds,
    ...(stopped === undefined ? {} : { stopped })
  } satisfies RetryResult
})
