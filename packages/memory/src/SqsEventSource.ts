/**
 * An emulation of Lambda's SQS event source mapping over a `MemoryQueue`, so the redriver's
 * handler runs in tests exactly as Lambda would call it (docs/aws-behaviour.md §3).
 *
 * Pollers receive batches (up to `batchSize`, waiting up to the batching window to fill one, and
 * never past Lambda's 6 MB synchronous payload), build the event in Lambda's shape and invoke the
 * handler. The outcome decides what is deleted, as in §3.4: success deletes the batch; an error
 * deletes nothing, so every message comes back after its visibility timeout with a higher receive
 * count and the queue's redrive policy, not the mapping, decides when it is dead-lettered; with
 * `ReportBatchItemFailures`, only the messages not listed are deleted, and a list naming anything
 * but a message of the batch fails the whole batch. Runs until its scope closes; time comes only
 * from Effect's `Clock`.
 *
 * Not emulated: scaling (a fixed number of pollers), backing off after function errors, filters,
 * FIFO queues. Idle pollers wake on the queue's events instead of re-polling every 20 s, which
 * changes nothing observable and keeps long `TestClock.adjust` calls cheap.
 */
import type { LambdaEvents } from "@spillway/core"
import { Cause, Clock, Duration, Effect, Exit, Result, type Scope } from "effect"
import type * as MemoryQueue from "./MemoryQueue.js"

export interface Config {
  /** 1–10,000; more than 10 needs `maximumBatchingWindowInSeconds` ≥ 1. @default 10 */
  readonly batchSize?: number
  /** 0–300: how long a poller waits to fill a batch. @default 0 */
  readonly maximumBatchingWindowInSeconds?: number
  /** How long a poller waits before receiving again after the queue refused a receive. @default 1000 */
  readonly pollIntervalMillis?: number
  /** `FunctionResponseTypes: ["ReportBatchItemFailures"]`. @default false */
  readonly reportBatchItemFailures?: boolean
  /**
   * Concurrent pollers, each with at most one batch in flight. Lambda starts with 5 and scales
   * (`ScalingConfig.MaximumConcurrency` 2–1,000); 1 is allowed here to serialize a test.
   * @default 5
   */
  readonly maxConcurrency?: number
  /**
   * The function timeout, 1–900: an invocation still running then counts as an error. Lambda
   * refuses a mapping whose function timeout exceeds the queue's visibility timeout, so this does.
   * @default no timeout
   */
  readonly functionTimeoutSeconds?: number
  /** @default the queue's ARN */
  readonly queueArn?: string
  /** @default the queue's region */
  readonly region?: string
}

export type Handler<R> = (event: LambdaEvents.SqsEvent) => Effect.Effect<unknown, unknown, R>

export interface Stats {
  readonly invocations: number
  /** Invocations that failed, timed out or answered an invalid batch item failure list. */
  readonly errors: number
  /** Invocations that reported some (valid) batch item failures. */
  readonly partialFailures: number
  /** Messages handed to the function, counting redeliveries. */
  readonly delivered: number
  /** Messages the mapping deleted after a successful invocation. */
  readonly deleted: number
  /** Receive or delete calls the queue refused (outage). */
  readonly queueErrors: number
  /** Batches being invoked right now. */
  readonly inFlightBatches: number
}

export interface Handle {
  readonly stats: Effect.Effect<Stats>
  /** No batch in flight and nothing left in the queue, visible or not: the mapping has no more work. */
  readonly idle: Effect.Effect<boolean>
}

/** Lambda's synchronous invocation payload limit; a batch is flushed before it would pass it. */
const maxPayloadBytes = 6 * 1024 * 1024

const inRange = (value: number, min: number, max: number): boolean =>
  Number.isInteger(value) && value >= min && value <= max

interface Validated {
  readonly batchSize: number
  readonly windowMillis: number
  readonly pollIntervalMillis: number
  readonly reportBatchItemFailures: boolean
  readonly maxConcurrency: number
  readonly functionTimeoutSeconds: number | undefined
  readonly queueArn: string
  readonly region: string
}

const validate = (queue: MemoryQueue.Handle, config: Config): Effect.Effect<Validated> => {
  const batchSize = config.batchSize ?? 10
  const window = config.maximumBatchingWindowInSeconds ?? 0
  const pollIntervalMillis = config.pollIntervalMillis ?? 1000
  const maxConcurrency = config.maxConcurrency ?? 5
  const timeout = config.functionTimeoutSeconds
  const problem = !inRange(batchSize, 1, 10_000)
    ? `BatchSize must be an integer in 1–10000, got ${batchSize}`
    : !inRange(window, 0, 300)
      ? `MaximumBatchingWindowInSeconds must be an integer in 0–300, got ${window}`
      : batchSize > 10 && window < 1
        ? `BatchSize ${batchSize} > 10 requires MaximumBatchingWindowInSeconds ≥ 1 (got ${window})`
        : !(pollIntervalMillis > 0)
          ? `pollIntervalMillis must be positive, got ${pollIntervalMillis}`
          : !inRange(maxConcurrency, 1, 1000)
            ? `maxConcurrency must be an integer in 1–1000, got ${maxConcurrency}`
            : timeout !== undefined && !inRange(timeout, 1, 900)
              ? `functionTimeoutSeconds must be an integer in 1–900, got ${timeout}`
              : timeout !== undefined && timeout > queue.visibilityTimeoutSeconds
                ? `The function timeout (${timeout} s) exceeds the visibility timeout of ${queue.queueName} (${queue.visibilityTimeoutSeconds} s)`
                : undefined
  return problem === undefined
    ? Effect.succeed({
        batchSize,
        windowMillis: window * 1000,
        pollIntervalMillis,
        reportBatchItemFailures: config.reportBatchItemFailures ?? false,
        maxConcurrency,
        functionTimeoutSeconds: timeout,
        queueArn: config.queueArn ?? queue.queueArn,
        region: config.region ?? queue.region
      })
    : Effect.die(new Error(`SqsEventSource: ${problem}`))
}

const exactBytes = (record: LambdaEvents.SqsEventRecord): number =>
  Buffer.byteLength(JSON.stringify(record), "utf8")

/**
 * At least `exactBytes`, without serialising: a UTF-16 unit of a key or a string takes at most 6
 * bytes of JSON (`\u001f`), a key's quotes, colon and comma 4, a string's quotes 2, an object's
 * braces 2, a number 24, `true`/`false`/`null` 5.
 */
const boundBytes = (value: unknown): number => {
  if (typeof value === "string") return 6 * value.length + 2
  if (typeof value !== "object" || value === null) return typeof value === "number" ? 24 : 5
  let bytes = 2
  for (const [key, inner] of Object.entries(value)) bytes += 6 * key.length + 4 + boundBytes(inner)
  return bytes
}

/** The event entry Lambda builds for a received message (§3.5): every attribute is a string. */
export const toEventRecord = (
  message: MemoryQueue.ReceivedMessage,
  context: { readonly queueArn: string; readonly region: string }
): LambdaEvents.SqsEventRecord => ({
  messageId: message.messageId,
  receiptHandle: message.receiptHandle,
  body: message.body,
  attributes: {
    ApproximateReceiveCount: String(message.receiveCount),
    SentTimestamp: String(message.sentAt),
    SenderId: message.senderId,
    ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt)
  },
  messageAttributes: {},
  md5OfBody: message.md5OfBody,
  eventSource: "aws:sqs",
  eventSourceARN: context.queueArn,
  awsRegion: context.region
})

/**
 * How Lambda reads a handler's answer with `ReportBatchItemFailures`: `"all"` deletes the batch,
 * `"none"` keeps it, a set keeps only those message ids. No answer, `{}`, or an empty or null list
 * is success; an entry that is not an object with a non-empty `itemIdentifier` naming a message
 * of the batch fails the whole batch.
 */
export const interpretResponse = (
  response: unknown,
  messageIds: ReadonlySet<string>
): "all" | "none" | ReadonlySet<string> => {
  if (response === null || typeof response !== "object") return "all"
  if (!("batchItemFailures" in response)) return "all"
  const failures: unknown = response.batchItemFailures
  if (failures === null || failures === undefined) return "all"
  if (!Array.isArray(failures)) return "none"
  if (failures.length === 0) return "all"
  const failed = new Set<string>()
  for (const failure of failures) {
    if (failure === null || typeof failure !== "object" || !("itemIdentifier" in failure)) return "none"
    const id: unknown = failure.itemIdentifier
    if (typeof id !== "string" || !messageIds.has(id)) return "none"
    failed.add(id)
  }
  return failed
}

/**
 * Starts the mapping: `maxConcurrency` pollers run in the current scope and stop when it closes.
 * A bad configuration is a defect (as `CreateEventSourceMapping` would refuse it), with a message
 * naming the parameter.
 */
export const start = <R>(
  queue: MemoryQueue.Handle,
  handler: Handler<R>,
  config: Config = {}
): Effect.Effect<Handle, never, Scope.Scope | R> =>
  Effect.gen(function* () {
    const settings = yield* validate(queue, config)
    const counters = {
      invocations: 0,
      errors: 0,
      partialFailures: 0,
      delivered: 0,
      deleted: 0,
      queueErrors: 0,
      inFlightBatches: 0
    }
    const context = { queueArn: settings.queueArn, region: settings.region }
    // One batch, never empty: pollers long-poll while the queue is empty (woken by a send, not by
    // a timer); the window opens with the first message, and the batch is invoked when it is full,
    // when the window closes, or when the next message would take the payload past 6 MB.
    const collect = Effect.gen(function* () {
      const batch: Array<LambdaEvents.SqsEventRecord> = []
      // An upper bound of the event's size while far from the limit (a body of n UTF-16 units
      // takes at most 6n bytes in JSON), exact from the first message that might not fit: the
      // same cut as counting every message exactly, without serialising every body.
      let payloadBytes = 0
      let exact = false
      let deadline = Number.POSITIVE_INFINITY
      while (true) {
        const wanted = Math.min(10, settings.batchSize - batch.length)
        const received = yield* Effect.result(queue.receive({ maxMessages: wanted }))
        if (Result.isFailure(received)) {
          counters.queueErrors += 1
          yield* Effect.sleep(Duration.millis(settings.pollIntervalMillis))
          continue
        }
        // Whole milliseconds, as the queue keeps time, so the window's waits are whole milliseconds too.
        const now = Math.floor(yield* Clock.currentTimeMillis)
        if (batch.length === 0 && received.success.length > 0) deadline = now + settings.windowMillis
        let full = false
        for (const message of received.success) {
          const record = toEventRecord(message, context)
          let bytes = exact ? exactBytes(record) : boundBytes(record)
          if (!exact && batch.length > 0 && payloadBytes + bytes > maxPayloadBytes) {
            exact = true
            payloadBytes = batch.reduce((sum, earlier) => sum + exactBytes(earlier), 0)
            bytes = exactBytes(record)
          }
          if (full || (batch.length > 0 && payloadBytes + bytes > maxPayloadBytes)) {
            // Over the payload limit: hand it back at once (its receive count has grown, as in Lambda).
            full = true
            yield* queue.changeVisibility(message.receiptHandle, 0).pipe(Effect.ignore)
            continue
          }
          batch.push(record)
          payloadBytes += bytes
        }
        if (full || batch.length >= settings.batchSize || (batch.length > 0 && now >= deadline)) return batch
        // A receive that filled its request may have left more behind: ask again at once.
        if (received.success.length < wanted) {
          // An idle poller waits for the queue's next event rather than re-polling every 20 s as
          // Lambda's long polls do: the empty receives in between change nothing.
          yield* queue.awaitVisible(batch.length === 0 ? Number.POSITIVE_INFINITY : deadline - now)
        }
      }
    })

    const invoke = (handlerEffect: Effect.Effect<unknown, unknown, R>) =>
      settings.functionTimeoutSeconds === undefined
        ? handlerEffect
        : handlerEffect.pipe(
            Effect.timeoutOrElse({
              duration: Duration.seconds(settings.functionTimeoutSeconds),
              orElse: () => Effect.fail("Task timed out")
            })
          )

    const settle = (records: ReadonlyArray<LambdaEvents.SqsEventRecord>, keep: ReadonlySet<string>) =>
      Effect.forEach(
        records.filter((record) => !keep.has(record.messageId)),
        (record) =>
          queue.delete(record.receiptHandle).pipe(
            Effect.matchEffect({
              onFailure: () =>
                Effect.sync(() => {
                  counters.queueErrors += 1
                }),
              onSuccess: () =>
                Effect.sync(() => {
                  counters.deleted += 1
                })
            })
          ),
        { discard: true }
      )

    const poller = Effect.gen(function* () {
      const records = yield* collect
      counters.inFlightBatches += 1
      counters.invocations += 1
      counters.delivered += records.length
      // A handler that throws instead of returning an effect is a function error too.
      const exit = yield* Effect.exit(invoke(Effect.suspend(() => handler({ Records: records }))))
      counters.inFlightBatches -= 1
      if (Exit.isFailure(exit)) {
        if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
        // Nothing deleted: the batch comes back after the visibility timeout.
        counters.errors += 1
        return
      }
      const ids = new Set(records.map((record) => record.messageId))
      const outcome = settings.reportBatchItemFailures ? interpretResponse(exit.value, ids) : "all"
      if (outcome === "none") {
        counters.errors += 1
        return
      }
      if (outcome !== "all") counters.partialFailures += 1
      yield* settle(records, outcome === "all" ? new Set() : outcome)
    }).pipe(Effect.forever)

    for (let i = 0; i < settings.maxConcurrency; i++) {
      yield* Effect.forkScoped(poller)
    }

    return {
      stats: Effect.sync(() => ({ ...counters })),
      idle: Effect.map(queue.stats, (queueStats) => counters.inFlightBatches === 0 && queueStats.total === 0)
    }
  })
