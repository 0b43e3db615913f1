/**
 * The clickstream metrics pipeline on in-memory backends, wired as it is deployed:
 *
 *   raw stream → (event source mapping) cleaner → clean stream, partitioned by session
 *     → (event source mapping) metrics function → metric lines in the metrics log group
 *     → (subscription filter) forwarder → the metrics intake, or the spool
 *     ← forward retrier, every `retryIntervalMillis` (an EventBridge rule in production)
 *
 * The stages are the core programs, unchanged; only the layers differ (`layers` are the four
 * functions' layers, as `@spillway/aws`' `AwsClickstream` offers them over AWS). Tests drive it
 * on `TestClock`, the simulator on virtual time.
 */
import {
  Clean,
  DedupCache,
  Derive,
  Forward,
  MetricLog,
  MetricSpool,
  MetricsSink,
  RecordStream,
  RetrySpool,
  Schedules
} from "@spillway/core"
import { Duration, Effect, Layer, type Scope } from "effect"
import * as KinesisEventSource from "./KinesisEventSource.js"
import * as MemoryLogGroup from "./MemoryLogGroup.js"
import * as MemoryMetricSpool from "./MemoryMetricSpool.js"
import * as MemoryMetricsIntake from "./MemoryMetricsIntake.js"
import * as MemoryStream from "./MemoryStream.js"

export interface Options {
  readonly raw?: MemoryStream.Options
  readonly clean?: MemoryStream.Options
  readonly cleaner?: {
    readonly config?: Clean.CleanConfig
    readonly mapping?: Partial<KinesisEventSource.Config>
  }
  readonly metrics?: {
    readonly options?: Derive.DeriveOptions
    readonly mapping?: Partial<KinesisEventSource.Config>
  }
  readonly logGroup?: MemoryLogGroup.Options
  readonly subscription?: MemoryLogGroup.SubscriptionConfig
  readonly forward?: Forward.ForwardOptions
  readonly intake?: MemoryMetricsIntake.Options
  /** @default Schedules.spoolRetryInterval (1 minute) */
  readonly retryIntervalMillis?: number
}

/**
 * The mapping the clickstream functions are deployed with: the seed's 200-event batches, bisect
 * and partial batch responses, three retries (a record that keeps failing goes to the on-failure
 * destination instead of blocking its shard).
 */
export const recommendedMapping: KinesisEventSource.Config = {
  startingPosition: "TRIM_HORIZON",
  batchSize: 200,
  maximumBatchingWindowInSeconds: 0,
  bisectBatchOnFunctionError: true,
  reportBatchItemFailures: true,
  maximumRetryAttempts: 3
}

export interface Layers {
  readonly cleaner: Layer.Layer<RecordStream.RecordStream>
  readonly metrics: Layer.Layer<MetricLog.MetricLog | DedupCache.DedupCache>
  readonly forwarder: Layer.Layer<MetricsSink.MetricsSink | MetricSpool.MetricSpool | DedupCache.DedupCache>
  readonly forwardRetrier: Layer.Layer<MetricsSink.MetricsSink | MetricSpool.MetricSpool>
}

export interface CleanerTotals {
  readonly invocations: number
  readonly events: number
  readonly kept: number
  readonly dropped: Readonly<Record<Clean.DropReason, number>>
  readonly put: number
  readonly failed: number
}

export interface Pipeline {
  readonly layers: Layers
  readonly raw: MemoryStream.Service
  readonly clean: MemoryStream.Service
  readonly logGroup: MemoryLogGroup.Handle
  readonly intake: MemoryMetricsIntake.Handle
  readonly spool: MemoryMetricSpool.Handle
  readonly cleaner: KinesisEventSource.EventSource
  readonly metrics: KinesisEventSource.EventSource
  readonly subscription: MemoryLogGroup.Subscription
  /** The cleaner's results summed over its invocations (a retried batch counts again). */
  readonly cleanerTotals: Effect.Effect<CleanerTotals>
  /** Every retrier run so far, in order. */
  readonly retrierRuns: Effect.Effect<ReadonlyArray<RetrySpool.RetryResult>>
  /** Both streams read to their tips, every line delivered, the spool empty. */
  readonly isIdle: Effect.Effect<boolean>
}

/** The log stream the metrics function writes to (one execution environment's). */
export const metricsLogStream = "2026/11/27/[$LATEST]00000000000000000000000000000001"

export const make = (
  options: Options = {}
): Effect.Effect<Pipeline, KinesisEventSource.InvalidConfig, Scope.Scope> =>
  Effect.gen(function* () {
    const raw = yield* MemoryStream.make({ streamName: "clickstream-raw", shardCount: 2, ...options.raw })
    const clean = yield* MemoryStream.make({
      streamName: "clickstream-clean",
      shardCount: 2,
      ...options.clean
    })
    const logGroup = yield* MemoryLogGroup.make(options.logGroup)
    const intake = yield* MemoryMetricsIntake.make(options.intake)
    const spool = yield* MemoryMetricSpool.make()
    const metricsCache = DedupCache.make({ capacity: 1_000_000 })
    const forwarderCache = DedupCache.make({ capacity: 1_000_000 })

    const sinkAndSpool = Layer.mergeAll(
      Layer.succeed(MetricsSink.MetricsSink, intake),
      Layer.succeed(MetricSpool.MetricSpool, spool)
    )
    const layers: Layers = {
      cleaner: Layer.succeed(RecordStream.RecordStream, clean),
      metrics: Layer.mergeAll(
        Layer.succeed(MetricLog.MetricLog, logGroup.writer(metricsLogStream)),
        Layer.succeed(DedupCache.DedupCache, metricsCache)
      ),
      forwarder: Layer.merge(sinkAndSpool, Layer.succeed(DedupCache.DedupCache, forwarderCache)),
      forwardRetrier: sinkAndSpool
    }
    const cleanerServices = yield* Layer.build(layers.cleaner)
    const metricsServices = yield* Layer.build(layers.metrics)
    const forwarderServices = yield* Layer.build(layers.forwarder)
    const retrierServices = yield* Layer.build(layers.forwardRetrier)

    const cleanConfig = options.cleaner?.config ?? Clean.defaultConfig
    const totals = {
      invocations: 0,
      events: 0,
      kept: 0,
      dropped: { invalid: 0, unwantedType: 0, bot: 0, tooOld: 0 },
      put: 0,
      failed: 0
    }
    const cleaner = yield* KinesisEventSource.start(
      raw,
      (event) =>
        Clean.cleanKinesisEvent(event, cleanConfig).pipe(
          Effect.tap(({ result }) =>
            Effect.sync(() => {
              totals.invocations++
              totals.events += result.events
              totals.kept += result.kept
              totals.put += result.put
              totals.failed += result.failed.length
              for (const reason of Object.keys(totals.dropped) as Array<Clean.DropReason>) {
                totals.dropped[reason] += result.dropped[reason]
              }
            })
          )
        ),
      {
        ...recommendedMapping,
        functionArn: "arn:aws:lambda:us-east-1:123456789012:function:clickstream-cleaner",
        ...options.cleaner?.mapping
      }
    ).pipe(Effect.provide(cleanerServices))
    const deriveOptions = options.metrics?.options ?? Derive.defaultOptions
    const metrics = yield* KinesisEventSource.start(
      clean,
      (event) => Derive.deriveKinesisEvent(event, deriveOptions),
      {
        ...recommendedMapping,
        functionArn: "arn:aws:lambda:us-east-1:123456789012:function:clickstream-metrics",
        ...options.metrics?.mapping
      }
    ).pipe(Effect.provide(metricsServices))
    const subscription = yield* logGroup
      .subscribe((event) => Forward.forwardSubscriptionEvent(event, options.forward), options.subscription)
      .pipe(Effect.provide(forwarderServices))

    const runs: Array<RetrySpool.RetryResult> = []
    const interval = options.retryIntervalMillis ?? Duration.toMillis(Schedules.spoolRetryInterval)
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          yield* Effect.sleep(interval)
          const run = yield* Effect.result(RetrySpool.retrySpool())
          if (run._tag === "Success") runs.push(run.success)
        }).pipe(Effect.provide(retrierServices))
      )
    )

    return {
      layers,
      raw,
      clean,
      logGroup,
      intake,
      spool,
      cleaner,
      metrics,
      subscription,
      cleanerTotals: Effect.sync(() => ({ ...totals, dropped: { ...totals.dropped } })),
      retrierRuns: Effect.sync(() => [...runs]),
      isIdle: Effect.map(
        Effect.all([cleaner.isIdle, metrics.isIdle, subscription.isIdle, spool.size("pending")]),
        ([a, b, c, pending]) => a && b && c && pending === 0
      )
    } satisfies Pipeline
  })
