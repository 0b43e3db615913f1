/**
 * A CloudWatch Logs log group in memory, and its subscription filter to a Lambda function: where
 * `derive` writes its metric lines (`writer` is the `MetricLog` backend) and how they reach the
 * forwarder, so the whole metrics-through-logs path runs in memory.
 *
 * What is emulated (docs/aws-behaviour.md §7.1):
 * - each write appends log events to a log stream, stamped with the writer's clock and a
 *   56-digit decimal id, unique in the group;
 * - the subscription delivers events matching its filter (every event by default — a pattern
 *   is a predicate here), batched per log stream as CloudWatch Logs does: a delivery holds one
 *   stream's events in order, and is sent once the events have waited `batchWindowMillis`, or
 *   earlier when `maxBatchEvents` or `maxBatchBytes` (of the `logEvents` JSON) is reached;
 * - a delivery is `{"awslogs":{"data":base64(gzip(JSON))}}` with the documented fields, handed
 *   to the handler as an asynchronous invocation: deliveries run concurrently (the forwarder
 *   scales with the log volume, not with anything upstream); a failed invocation is retried
 *   after each of `retryDelaysMillis` (Lambda retries an async invocation twice, about a minute
 *   and then two apart) and, when every try failed, lands in `discarded` (the function's
 *   on-failure destination).
 *
 * Choices where AWS documents nothing precise: the batching window (1 s by default; CloudWatch
 * delivers "in near real time") and the payload cap (256 KiB of events by default, the async
 * invocation limit before 2025, under today's 1 MB).
 */
import { CloudWatchLogs, type MetricLog } from "@spillway/core"
import { Clock, Effect, Exit, type Scope } from "effect"

export interface Options {
  /** @default "/aws/lambda/clickstream-metrics" */
  readonly logGroupName?: string
  /** @default "123456789012" */
  readonly owner?: string
}

export interface SubscriptionConfig {
  /** @default "to-forwarder" */
  readonly filterName?: string
  /** Which messages the filter passes. @default every message */
  readonly filter?: (message: string) => boolean
  /** @default 1000 */
  readonly batchWindowMillis?: number
  /** @default 10,000 */
  readonly maxBatchEvents?: number
  /** Bytes of the `logEvents` JSON per delivery. @default 262,144 */
  readonly maxBatchBytes?: number
  /** @default [60_000, 120_000] */
  readonly retryDelaysMillis?: ReadonlyArray<number>
}

export interface StoredEvent extends CloudWatchLogs.LogEvent {
  readonly logStream: string
}

/** The handler of the subscribed function: a failure or a defect is a function error. */
export type Handler<R> = (event: CloudWatchLogs.SubscriptionEvent) => Effect.Effect<unknown, unknown, R>

export interface Counters {
  readonly deliveries: number
  readonly invocations: number
  readonly functionErrors: number
  readonly retries: number
  /** Deliveries whose every try failed (sent to the on-failure destination). */
  readonly discarded: number
  readonly eventsDelivered: number
}

export interface Subscription {
  readonly counters: Effect.Effect<Counters>
  readonly discarded: Effect.Effect<ReadonlyArray<CloudWatchLogs.SubscriptionEvent>>
  /** Every matching event delivered and no invocation in flight or waiting to be retried. */
  readonly isIdle: Effect.Effect<boolean>
}

export interface Handle {
  readonly logGroupName: string
  /** The `MetricLog` that writes to `logStream` of this group. */
  readonly writer: (logStream: string) => MetricLog.Service
  /** Every event the group holds, stream by stream. */
  readonly events: Effect.Effect<ReadonlyArray<StoredEvent>>
  /** Starts the subscription filter; it delivers while the scope is open. */
  readonly subscribe: <R>(
    handler: Handler<R>,
    config?: SubscriptionConfig
  ) => Effect.Effect<Subscription, never, Scope.Scope | R>
}

interface Stream {
  readonly name: string
  readonly events: Array<CloudWatchLogs.LogEvent>
}

const idDigits = 56

export const make = (options: Options = {}): Effect.Effect<Handle> =>
  Effect.sync(() => {
    const logGroupName = options.logGroupName ?? "/aws/lambda/clickstream-metrics"
    const owner = options.owner ?? "123456789012"
    const streams = new Map<string, Stream>()
    let counter = 0n

    const streamOf = (name: string): Stream => {
      let stream = streams.get(name)
      if (stream === undefined) {
        stream = { name, events: [] }
        streams.set(name, stream)
      }
      return stream
    }

    const writer = (logStream: string): MetricLog.Service => ({
      write: (lines) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const stream = streamOf(logStream)
          const timestamp = Math.floor(now)
          for (const message of lines) {
            counter++
            const id = (BigInt(timestamp) * 10n ** 20n + counter).toString().padStart(idDigits, "0")
            stream.events.push({ id, timestamp, message })
          }
        })
    })

    const subscribe = <R>(handler: Handler<R>, config: SubscriptionConfig = {}) =>
      Effect.gen(function* () {
        const filterName = config.filterName ?? "to-forwarder"
        const filter = config.filter ?? (() => true)
        const windowMillis = config.batchWindowMillis ?? 1000
        const maxEvents = config.maxBatchEvents ?? 10_000
        const maxBytes = config.maxBatchBytes ?? 262_144
        const retryDelays = config.retryDelaysMillis ?? [60_000, 120_000]
        const cursors = new Map<string, number>()
        const counters = {
          deliveries: 0,
          invocations: 0,
          functionErrors: 0,
          retries: 0,
          discarded: 0,
          eventsDelivered: 0
        }
        const discarded: Array<CloudWatchLogs.SubscriptionEvent> = []
        let inFlight = 0

        /** Events of a stream not yet delivered, past the filter, and the cursor after them. */
        const pendingOf = (stream: Stream) => {
          const from = cursors.get(stream.name) ?? 0
          return { from, events: stream.events.slice(from).filter((e) => filter(e.message)) }
        }

        const invoke = (event: CloudWatchLogs.SubscriptionEvent) =>
          Effect.gen(function* () {
            for (let attempt = 0; ; attempt++) {
              counters.invocations++
              if (attempt > 0) counters.retries++
              const exit = yield* Effect.exit(Effect.suspend(() => handler(event)))
              if (Exit.isSuccess(exit)) return
              counters.functionErrors++
              const delay = retryDelays[attempt]
              if (delay === undefined) {
                counters.discarded++
                discarded.push(event)
                return
              }
              yield* Effect.sleep(delay)
            }
          }).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                inFlight--
              })
            )
          )

        const deliver = (stream: Stream, events: ReadonlyArray<CloudWatchLogs.LogEvent>) => {
          const message: CloudWatchLogs.LogsMessage = {
            messageType: "DATA_MESSAGE",
            owner,
            logGroup: logGroupName,
            logStream: stream.name,
            subscriptionFilters: [filterName],
            logEvents: events
          }
          counters.deliveries++
          counters.eventsDelivered += events.length
          inFlight++
          return Effect.forkScoped(invoke({ awslogs: { data: CloudWatchLogs.encodeData(message) } }))
        }

        /** One look at every stream: what has waited a window (or filled a batch) is delivered. */
        const sweep = Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          for (const stream of streams.values()) {
            const { events } = pendingOf(stream)
            if (events.length === 0) {
              cursors.set(stream.name, stream.events.length)
              continue
            }
            let batch: Array<CloudWatchLogs.LogEvent> = []
            let bytes = 2
            let deliveredThrough = cursors.get(stream.name) ?? 0
            for (const event of events) {
              const size = Buffer.byteLength(JSON.stringify(event)) + 1
              if (batch.length > 0 && (batch.length >= maxEvents || bytes + size > maxBytes)) {
                yield* deliver(stream, batch)
                batch = []
                bytes = 2
              }
              batch.push(event)
              bytes += size
            }
            // The last, partial batch waits for its window (measured from its oldest event).
            const full = batch.length >= maxEvents || bytes >= maxBytes
            if (full || now - batch[0]!.timestamp >= windowMillis) {
              yield* deliver(stream, batch)
              deliveredThrough = stream.events.length
            } else {
              deliveredThrough = stream.events.indexOf(batch[0]!, deliveredThrough)
            }
            cursors.set(stream.name, deliveredThrough)
          }
        })

        yield* Effect.forkScoped(
          Effect.forever(Effect.andThen(sweep, Effect.sleep(Math.max(1, Math.min(windowMillis, 250)))))
        )

        return {
          counters: Effect.sync(() => ({ ...counters })),
          discarded: Effect.sync(() => [...discarded]),
          isIdle: Effect.sync(
            () =>
              inFlight === 0 && [...streams.values()].every((stream) => pendingOf(stream).events.length === 0)
          )
        } satisfies Subscription
      })

    return {
      logGroupName,
      writer,
      events: Effect.sync(() =>
        [...streams.values()].flatMap((stream) =>
          stream.events.map((e) => ({ ...e, logStream: stream.name }))
        )
      ),
      subscribe
    } satisfies Handle
  })
