/**
 * Every retry policy in Spillway, by name. A reader finds here every place the system waits and
 * tries again, and how long it can take at most; `test/Schedules.test.ts` proves the bounds.
 *
 * How these combine with AWS SDK retries: the AWS layers give each SDK client at most its first
 * attempt plus the SDK's own retries for connection-level faults only, and these schedules own
 * everything else (throttling, 5xx, per-entry failures the SDK never retries). The total time of a
 * stage's schedule stays below the Lambda timeout it runs under.
 */
import { Duration, Schedule } from "effect"

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
