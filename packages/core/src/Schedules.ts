/**
 * Every retry policy in Spillway, by name. A reader finds here every place the system waits and
 * tries again, and how long it can take at most; `test/Schedules.test.ts` proves the bounds.
 *
 * How these combine with AWS SDK retries: the AWS layers give each SDK client at most its first
 * attempt plus the SDK's own retries for connection-level faults only, and these schedules own
 * everything else (throttling, 5xx, per-entry failures the SDK never retries). The total time of a
 * stage's schedule stays below the Lambda timeout it runs under.
 */
import { Duration, Effect, Schedule } from "effect"

/** Anything that can say whether trying again may help. */
export interface Retryable {
  readonly isRetryable: boolean
}

export const isRetryable = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "isRetryable" in error &&
  (error as { readonly isRetryable: unknown }).isRetryable === true

/**
 * Collector → fallback queue, when the stream refused records. The collector answers an HTTP
 * client, so it tries briefly (≈ 50 + 100 + 200 ms) and then answers 503 so that the client's own
 * retry takes over.
 */
export const fallbackSend = Schedule.exponential("50 millis", 2).pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 3 })
)

/**
 * Processor → document sink, for items the sink answered as retryable (429, circuit breaker,
 * 503) and for whole-request outages. Capped exponential with jitter, bounded by elapsed time so
 * that the invocation returns its partial-batch response well inside the function timeout; what
 * is still failing then is reported and the event source mapping retries it.
 */
export const sinkWrite = Schedule.min([
  Schedule.exponential("100 millis", 2),
  Schedule.spaced("5 seconds")
]).pipe(Schedule.jittered, Schedule.upTo({ duration: "20 seconds" }))

/**
 * Redriver → fallback queue, for records the stream refused one by one (per-shard throttling).
 * They are parked again as a new message that SQS holds back (`DelaySeconds`) for 1, 2, 4, 8
 * seconds by attempt, so a hot shard is not hammered in a loop while its per-second budget is
 * spent. The cap is low because shard budgets refill every second: a longer wait only adds
 * delay (the simulator's black-friday run showed a 60 s cap pushing p99 past two minutes).
 */
export const reparkDelaySeconds = (attempt: number): number => Math.min(8, 2 ** Math.max(0, attempt - 1))

/**
 * Redriver → stream, for records the stream refused one by one (per-shard throttling): the
 * redriver puts them again, oldest first, this many times a second apart (a shard's budget
 * refills every second) before it parks what is still refused. Holding them in the invocation
 * paces the redrive: the redriver's concurrency is bounded (5 in the CDK app), so after an outage
 * the parked backlog goes back at about the shards' spare rate and about in the order it was
 * parked, instead of all at once to be refused and parked again. Two retries cost an invocation
 * at most 2 s of its 60 s timeout. (On the simulator's `kinesis-outage`, one shard, seed 1: at
 * 50,000 records, a 58.3 s outage, p99 75.6 s without them and 59.4 s with two.)
 */
export const redriveThrottledRetries = 2
export const redriveThrottledSpacing = Duration.seconds(1)

/** A run of refused records (`from` … `to`, exclusive, oldest first) parked with one delay. */
export interface ReparkSlot {
  readonly from: number
  readonly to: number
  readonly delaySeconds: number
}

/**
 * Redriver → fallback queue: the `refused` records (oldest first) still refused after the retries
 * are parked spread evenly over the attempt's `reparkDelaySeconds` (1, 2, 4, then 8 s): as many
 * groups as whole seconds in it (fewer with fewer records), the last held back the whole delay
 * and the oldest the least, so a backlog comes back over the window instead of all in its last
 * second. A single record waits the whole delay, as before.
 */
export const reparkSlots = (refused: number, attempt: number): ReadonlyArray<ReparkSlot> => {
  if (refused <= 0) return []
  const window = reparkDelaySeconds(attempt)
  const groups = Math.min(refused, window)
  return Array.from({ length: groups }, (_, k) => ({
    from: Math.floor((refused * k) / groups),
    to: Math.floor((refused * (k + 1)) / groups),
    delaySeconds: Math.ceil((window * (k + 1)) / groups)
  }))
}

/**
 * Redriver → fallback queue, for a message whose records the stream refused as a whole (an
 * outage): before reporting it failed, the redriver sets its visibility (`ChangeMessageVisibility`)
 * to a fiftieth of how long its oldest record has waited since the collector received it,
 * from 1 s up to `redriveVisibilityCapSeconds`: 1 s for the first 50 s, 2 s up to 100 s, 30 s after
 * 25 minutes. This is exponential backoff in small steps (each wait about 2% longer than the
 * last) rather than doubling, so that however long the outage, a message parked when it began is
 * tried again within about 2% of it after the stream is back; doubling left up to the whole
 * outage again (records parked 16 s before a 23 s outage ended came back 8 to 15 s after it). A
 * message whose records had already waited long before the outage (parked again and again) is
 * held back by that longer wait, at most 30 s. The queue's
 * `maxReceiveCount` bounds the outage a message rides out before it is dead-lettered: 10 receives
 * about 10 s, 1,000 (SQS's maximum) about 7 hours.
 */
export const redriveVisibilityCapSeconds = 30

/** Share of the time a message has been parked that it is held back on its next failure. */
export const redriveVisibilityShare = 1 / 50

export const redriveVisibilitySeconds = (parkedForSeconds: number): number =>
  Number.isFinite(parkedForSeconds)
    ? Math.min(redriveVisibilityCapSeconds, Math.max(1, Math.ceil(parkedForSeconds * redriveVisibilityShare)))
    : 1

/**
 * Replay → stream reads (GetRecords shares 5 calls/s per shard with every consumer): a read that
 * was throttled or hit an outage is tried again a few times before the range is reported unread.
 */
export const streamRead = Schedule.exponential("200 millis", 2).pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 5 })
)

/**
 * Backup replayer → stream: entries the shards refused (`ProvisionedThroughputExceededException`)
 * and calls refused whole (throttling, an outage). A replay runs next to live traffic with no
 * client waiting, so it backs off to the rate the shards take — doubling from 200 ms to a 5 s cap,
 * jittered — for up to a minute; what is still refused then ends the run at its checkpoint, and
 * the next run starts there.
 */
export const replayPut = Schedule.min([
  Schedule.exponential("200 millis", 2),
  Schedule.spaced("5 seconds")
]).pipe(Schedule.jittered, Schedule.upTo({ duration: "1 minute" }))

/**
 * Restore → backup archive (S3 `ListObjectsV2` / `GetObject`): S3 answers 503 SlowDown under load;
 * the restore is an operator's run, so it waits up to two minutes before reporting the archive
 * unreadable.
 */
export const archiveRead = Schedule.min([
  Schedule.exponential("200 millis", 2),
  Schedule.spaced("10 seconds")
]).pipe(Schedule.jittered, Schedule.upTo({ duration: "2 minutes" }))

/**
 * The longest a processor invocation can spend retrying sink writes (used to size the Lambda
 * timeout): `sinkWrite` may start a delay until 20 s have passed, and that delay is at most its
 * 5 s cap jittered up by 20%.
 */
export const sinkWriteBudget = Duration.seconds(26)

/**
 * Cleaner → clean stream, for entries the shards refused (per-entry throttling) and calls refused
 * whole: like `sinkWrite`, doubling from 100 ms to a 5 s cap, jittered, for up to 20 s, so the
 * invocation still answers its partial batch response (the records not put) well inside its
 * timeout; the event source mapping sends those again.
 */
export const cleanPut = Schedule.min([
  Schedule.exponential("100 millis", 2),
  Schedule.spaced("5 seconds")
]).pipe(Schedule.jittered, Schedule.upTo({ duration: "20 seconds" }))

/**
 * Cleaner → clean stream, between calls that stored some records and left others (the next
 * records of the same sessions, and the refused ones): a short pause, so a shard over its
 * per-second budget is not called again in a tight loop. Such calls do not count against
 * `cleanPut`, which bounds the calls that store nothing.
 */
export const cleanPutProgressPause = Duration.millis(100)

/**
 * A 429's reset (`X-RateLimit-Reset`) further away than this is not waited for inside an
 * invocation: the payload goes to the spool at once and the retrier sends it after the reset.
 */
export const metricsRateLimitWaitCap = Duration.seconds(10)

const retryAfterOf = (input: unknown): number | undefined => {
  const value =
    typeof input === "object" && input !== null && "retryAfterMillis" in input
      ? (input as { readonly retryAfterMillis: unknown }).retryAfterMillis
      : undefined
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : undefined
}

/**
 * Forwarder and retrier → metrics sink (the Datadog intake), for 429s and 5xx (and timeouts):
 * doubling from 200 ms to a 5 s cap, jittered, for up to 20 s; after a 429 the next try waits at
 * least until the reset the intake named (`retryAfterMillis` on the error). What still fails is
 * spooled, never dropped. Use it with `while: isRetryable` and a `retryAfterMillis` at most
 * `metricsRateLimitWaitCap`.
 */
export const metricsSubmit = Schedule.min([
  Schedule.exponential("200 millis", 2),
  Schedule.spaced("5 seconds")
]).pipe(
  Schedule.jittered,
  Schedule.upTo({ duration: "20 seconds" }),
  Schedule.modifyDelay(({ input, duration }) => {
    const floor = retryAfterOf(input)
    return Effect.succeed(floor === undefined ? duration : Duration.max(duration, Duration.millis(floor)))
  })
)

/**
 * The longest a payload can spend in `metricsSubmit` (to size the forwarder's timeout): delays
 * may start until 20 s have passed, and the last is at most the rate-limit cap (10 s), which is
 * longer than the 5 s spacing jittered up by 20%.
 */
export const metricsSubmitBudget = Duration.seconds(30)

/**
 * Forwarder → spool (S3 `PutObject`): 503 SlowDown and outages, tried for about three seconds
 * (100 ms doubling, jittered, 5 retries). A spool that still refuses fails the invocation, so
 * Lambda delivers the log event again: nothing is acknowledged that is not stored.
 */
export const spoolWrite = Schedule.exponential("100 millis", 2).pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 5 })
)

/**
 * How often the forward retrier runs (its EventBridge rule, `rate(1 minute)`): the longest a
 * spooled payload waits for its next try once the intake is back.
 */
export const spoolRetryInterval = Duration.minutes(1)
