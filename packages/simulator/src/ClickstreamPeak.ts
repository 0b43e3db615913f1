/**
 * `spillway simulate --scenario clickstream-peak`: the e-commerce team's peak day, measured. The
 * same seeded clickstream — a normal morning, a peak near the raw stream's write limit, the
 * evening — goes through the clickstream pipeline twice, on virtual time:
 *
 * - `inline`: the metrics function derives the metrics and calls Datadog itself, in the
 *   invocation, before the mapping may move on (their original design);
 * - `logs+forwarder`: the metrics function writes the metrics as log lines and returns; the log
 *   group's subscription hands the lines to the forwarder, which calls Datadog on its own
 *   concurrency (their fix, and Spillway's).
 *
 * The model, every number a named constant in `model` (the seed's own figures where it gave
 * them): processing takes 70–120 ms per 200 events (uniform, scaled to the events of the batch)
 * and a Datadog call 100–200 ms; the cleaner takes 30–60 ms per 200 events (an assumption: it
 * does less); Lambda polls each shard once a second and at once after a full batch of 200
 * records; CloudWatch Logs delivers a log stream's lines after a 1 s window. The clean stream
 * packs a session's events of a cleaner batch into one record, so a metrics batch of 200
 * records holds a few more than 200 events. Both runs see the same traffic (same seed) and the
 * stages are the real ones; only the durations are slept, on the virtual clock.
 *
 * Measured, per run: the metrics function's iterator age (at each invocation, the age of the
 * batch's newest record — Lambda's `IteratorAge`), and the metric delay (from an event's arrival
 * in the raw stream to the moment the intake accepted the points it counts in). "Falling behind"
 * means the iterator age at the end of the peak exceeds its value at the start of the peak by
 * more than a poll interval: the backlog grew while the peak lasted. Both runs must deliver the
 * same totals, every kept event counted once. The same seed and event count give the same
 * report (virtual time, one seeded `Random` per run).
 */
import {
  Clean,
  CloudWatchLogs,
  DedupCache,
  Derive,
  Forward,
  LambdaEvents,
  MetricLog,
  MetricSpool,
  MetricsSink,
  RecordStream,
  Schedules
} from "@spillway/core"
import {
  KinesisEventSource,
  MemoryLogGroup,
  MemoryMetricSpool,
  MemoryMetricsIntake,
  MemoryStream
} from "@spillway/memory"
import { Clock, Duration, Effect, Layer, Random, Result, Schema } from "effect"
import { TestClock } from "effect/testing"
import { refused, SimulationError } from "./internal/error.js"
import { isolate, makeClockDriver, startTime, type TimeProvider } from "./internal/harness.js"
import { ascending, round1, summarize } from "./internal/stats.js"

export const scenarioName = "clickstream-peak"

export const model = {
  /** Shards of the raw and of the clean stream. */
  shards: 1,
  /** Events per second outside the peak. */
  baseRate: 300,
  /** Events per second during the peak: 95% of a shard's 1,000 records/s write limit. */
  peakRate: 950,
  /** Shares of the run's events: before, during and after the peak. */
  shares: [0.1, 0.8, 0.1] as const,
  batchSize: 200,
  pollIntervalMillis: 1000,
  /** The seed's figures: per 200 events processed, and per Datadog call. */
  processMillis: [70, 120] as const,
  sendMillis: [100, 200] as const,
  /** Per 200 events cleaned (an assumption). */
  cleanMillis: [30, 60] as const,
  /** Sessions browsing at once (a session ends, and a new one starts, on 2% of events). */
  sessions: 2000,
  /** CloudWatch Logs' delivery window for a log stream's lines. */
  logWindowMillis: 1000
}

export const Variant = Schema.Literals(["inline", "logs+forwarder"])
export type Variant = typeof Variant.Type

const Millis = Schema.Number
const Figures = Schema.Struct({ avg: Millis, p50: Millis, p99: Millis, max: Millis })

export const VariantReport = Schema.Struct({
  variant: Variant,
  /** Invocations of the metrics function. */
  batches: Schema.Int,
  iteratorAgeMs: Figures,
  iteratorAgeAtPeakStartMs: Millis,
  iteratorAgeAtPeakEndMs: Millis,
  fallingBehind: Schema.Boolean,
  /** Seconds after the peak until the iterator age is under a poll interval again. */
  caughtUpSecondsAfterPeak: Schema.Number,
  metricDelayMs: Figures,
  /** Calls made to the intake (the inline variant makes one per batch). */
  intakeRequests: Schema.Int,
  pointsDelivered: Schema.Int,
  /** Events the cleaner kept. */
  keptEvents: Schema.Int,
  /** The sum of `clickstream.events` at the intake: every kept event, once. */
  eventsCounted: Schema.Int
})
export type VariantReport = typeof VariantReport.Type

export const Report = Schema.Struct({
  scenario: Schema.Literal(scenarioName),
  seed: Schema.Int,
  events: Schema.Int,
  peakSeconds: Schema.Number,
  model: Schema.Struct({
    shards: Schema.Int,
    baseRate: Schema.Int,
    peakRate: Schema.Int,
    batchSize: Schema.Int,
    processMillis: Schema.String,
    sendMillis: Schema.String
  }),
  variants: Schema.Array(VariantReport)
})
export type Report = typeof Report.Type

export interface RunOptions {
  readonly seed: number
  /** Events in the run. 1,000–1,000,000. @default 60,000 */
  readonly events?: number
}

export const defaultEvents = 60_000

const between = ([low, high]: readonly [number, number]) => Random.nextIntBetween(low, high)

/** A duration drawn from `range` (per 200 events) for `events` events. */
const perEvents = (range: readonly [number, number], events: number) =>
  Effect.map(between(range), (millis) => Duration.millis((millis * events) / 200))

// ---- traffic ---------------------------------------------------------------------------------------

interface Planned {
  readonly at: number
  readonly sessionId: string
  readonly body: string
}

const types = [
  "page_view",
  "page_view",
  "product_view",
  "search",
  "add_to_cart",
  "checkout",
  "purchase"
] as const

/** The run's events at their planned instants, and when the peak starts and ends (Effect `Random`, so the seed decides). */
const plan = (events: number, trafficStart: number) =>
  Effect.gen(function* () {
    const out: Array<Planned> = []
    const rates = [model.baseRate, model.peakRate, model.baseRate]
    const bounds: Array<number> = []
    let at = trafficStart
    let n = 0
    const sessions = Array.from({ length: model.sessions }, (_, i) => `s-${i}`)
    for (const [phase, share] of model.shares.entries()) {
      bounds.push(at)
      const count = phase === model.shares.length - 1 ? events - n : Math.round(events * share)
      for (let i = 0; i < count; i++, n++) {
        at += 1000 / rates[phase]!
        const slot = yield* Random.nextIntBetween(0, sessions.length, { halfOpen: true })
        // Sessions end and new ones begin.
        if ((yield* Random.next) < 0.02) sessions[slot] = `s-${n}`
        const type = types[yield* Random.nextIntBetween(0, types.length, { halfOpen: true })]!
        const body = {
          eventId: `e-${n}`,
          type,
          sessionId: sessions[slot]!,
          timestamp: Math.floor(at),
          client: { platform: ["web", "ios", "android"][slot % 3], userAgent: "Mozilla/5.0" },
          ...(type === "purchase" ? { price: 10 + (n % 90), currency: ["EUR", "USD"][n % 2] } : {})
        }
        out.push({ at: Math.floor(at), sessionId: body.sessionId, body: JSON.stringify(body) })
      }
    }
    return { planned: out, peakStart: bounds[1]!, peakEnd: bounds[2]! }
  })

/** Puts each event into the raw stream at its instant (every 100 ms, what is due). */
const produce = (stream: RecordStream.Service, planned: ReadonlyArray<Planned>) =>
  Effect.gen(function* () {
    const encoder = new TextEncoder()
    let i = 0
    while (i < planned.length) {
      const now = yield* Clock.currentTimeMillis
      const due: Array<Planned> = []
      while (i < planned.length && planned[i]!.at <= now) due.push(planned[i++]!)
      for (const chunk of RecordStream.chunkEntries(
        due.map((p) => ({ partitionKey: p.sessionId, data: encoder.encode(p.body) }))
      )) {
        const outcomes = yield* stream.putRecords(chunk).pipe(Effect.orDie)
        if (outcomes.some((o) => o._tag !== "Stored"))
          return yield* Effect.die(new Error("the raw stream refused events"))
      }
      yield* Effect.sleep(100)
    }
  })

// ---- one run ---------------------------------------------------------------------------------------

interface Measures {
  readonly ages: Array<{ readonly at: number; readonly age: number }>
  /** Per metrics batch: when its points became visible (undefined until then) and its records' raw arrival. */
  readonly batches: Array<{
    visibleAt: number | undefined
    readonly arrivals: ReadonlyArray<number>
    readonly writtenAt: number
  }>
}

const runVariant = (
  variant: Variant,
  planned: ReadonlyArray<Planned>,
  peak: { start: number; end: number }
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const raw = yield* MemoryStream.make({ streamName: "clickstream-raw", shardCount: model.shards })
      const clean = yield* MemoryStream.make({ streamName: "clickstream-clean", shardCount: model.shards })
      const intake = yield* MemoryMetricsIntake.make({
        latency: Effect.map(between(model.sendMillis), Duration.millis)
      })
      const spool = yield* MemoryMetricSpool.make()
      const logGroup = yield* MemoryLogGroup.make()
      const metricsCache = DedupCache.make({ capacity: 2_000_000 })
      const forwarderCache = DedupCache.make({ capacity: 2_000_000 })
      const measures: Measures = { ages: [], batches: [] }
      const arrivalOf = new Map<string, number>()
      const mapping = {
        startingPosition: "TRIM_HORIZON" as const,
        batchSize: model.batchSize,
        pollIntervalMillis: model.pollIntervalMillis,
        bisectBatchOnFunctionError: true,
        reportBatchItemFailures: true,
        maximumRetryAttempts: 3
      }
      const cleanConfig = { ...Clean.defaultConfig, maxEventAgeMillis: 24 * 3_600_000 }
      let kept = 0
      const cleaner = yield* KinesisEventSource.start(
        raw,
        (event) =>
          Effect.gen(function* () {
            yield* Effect.sleep(yield* perEvents(model.cleanMillis, event.Records.length))
            for (const r of event.Records) {
              const body = JSON.parse(Buffer.from(r.kinesis.data, "base64").toString("utf8")) as {
                eventId: string
              }
              arrivalOf.set(body.eventId, Math.round(r.kinesis.approximateArrivalTimestamp * 1000))
            }
            const response = yield* Clean.cleanKinesisEvent(event, cleanConfig)
            kept += response.result.kept
            return response
          }).pipe(Effect.provideService(RecordStream.RecordStream, clean)),
        mapping
      )

      const writer = logGroup.writer("2026/11/27/[$LATEST]metrics")
      const metricsLayer = Layer.succeed(DedupCache.DedupCache, metricsCache)
      const sinkLayer = Layer.succeed(MetricsSink.MetricsSink, intake)
      const metrics = yield* KinesisEventSource.start(
        clean,
        (event) =>
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            const last = event.Records.at(-1)
            if (last !== undefined)
              measures.ages.push({
                at: now,
                age: now - Math.round(last.kinesis.approximateArrivalTimestamp * 1000)
              })
            const records = event.Records.map(LambdaEvents.toStreamRecord)
            const arrivals = records.flatMap((r) => {
              const decoded = JSON.parse(new TextDecoder().decode(r.data)) as {
                events: Array<{ eventId: string }>
              }
              return decoded.events.map((e) => arrivalOf.get(e.eventId) ?? r.approximateArrivalTimestamp)
            })
            yield* Effect.sleep(yield* perEvents(model.processMillis, arrivals.length))
            if (variant === "inline") {
              const computed = yield* Derive.computeSamples(records)
              const series = MetricsSink.aggregate(computed.samples)
              yield* MetricsSink.MetricsSink.use((sink) =>
                sink
                  .submit(series)
                  .pipe(Effect.retry({ schedule: Schedules.metricsSubmit, while: (e) => e.isRetryable }))
              ).pipe(Effect.orDie)
              yield* Derive.remember(computed)
              measures.batches.push({ visibleAt: yield* Clock.currentTimeMillis, arrivals, writtenAt: now })
            } else {
              yield* Derive.derive(records).pipe(Effect.provideService(MetricLog.MetricLog, writer))
              measures.batches.push({
                visibleAt: undefined,
                arrivals,
                writtenAt: Math.floor(yield* Clock.currentTimeMillis)
              })
            }
            return { batchItemFailures: [] }
          }).pipe(Effect.provide(Layer.merge(metricsLayer, sinkLayer))),
        mapping
      )

      const subscription =
        variant === "inline"
          ? undefined
          : yield* logGroup.subscribe(
              (event) =>
                Effect.gen(function* () {
                  const result = yield* Forward.forwardSubscriptionEvent(event)
                  const visibleAt = yield* Clock.currentTimeMillis
                  if (result.delivered !== result.points) return
                  const message = CloudWatchLogs.decodeData(event.awslogs.data)
                  if (Result.isFailure(message)) return
                  const written = new Set(message.success.logEvents.map((e) => e.timestamp))
                  for (const batch of measures.batches) {
                    if (written.has(batch.writtenAt))
                      batch.visibleAt = Math.max(batch.visibleAt ?? 0, visibleAt)
                  }
                }).pipe(
                  Effect.provide(
                    Layer.mergeAll(
                      sinkLayer,
                      Layer.succeed(MetricSpool.MetricSpool, spool),
                      Layer.succeed(DedupCache.DedupCache, forwarderCache)
                    )
                  )
                ),
              { batchWindowMillis: model.logWindowMillis }
            )

      const driver = makeClockDriver({
        scenario: scenarioName,
        deadline: (planned.at(-1)?.at ?? startTime) + 2 * 3_600_000,
        stuckMessage: (now) =>
          `${variant}: the pipeline still had work ${Duration.format(Duration.millis(now - startTime))} into the run`,
        isIdle: Effect.gen(function* () {
          const streams = (yield* cleaner.isIdle) && (yield* metrics.isIdle)
          const delivered = subscription === undefined || (yield* subscription.isIdle)
          return streams && delivered && measures.batches.every((b) => b.visibleAt !== undefined)
        })
      })
      const producer = yield* Effect.forkChild(
        produce(raw, planned).pipe(Effect.mapError(refused(scenarioName)))
      )
      yield* driver.settle([producer])

      const points = yield* intake.points
      const ages = measures.ages
      const ageAt = (instant: number) => [...ages].reverse().find((a) => a.at <= instant)?.age ?? 0
      const startAge = ageAt(peak.start)
      const endAge = ageAt(peak.end)
      const caughtUp = ages.find((a) => a.at > peak.end && a.age < model.pollIntervalMillis)
      const delays = measures.batches.flatMap((b) =>
        b.arrivals.map((arrival) => (b.visibleAt ?? 0) - arrival)
      )
      const stats = yield* intake.stats
      return {
        variant,
        batches: measures.batches.length,
        iteratorAgeMs: summarize(ascending(ages.map((a) => a.age)), Math.round),
        iteratorAgeAtPeakStartMs: startAge,
        iteratorAgeAtPeakEndMs: endAge,
        fallingBehind: endAge - startAge > model.pollIntervalMillis,
        caughtUpSecondsAfterPeak: caughtUp === undefined ? -1 : round1((caughtUp.at - peak.end) / 1000),
        metricDelayMs: summarize(ascending(delays), Math.round),
        intakeRequests: stats.requests,
        pointsDelivered: stats.points,
        keptEvents: kept,
        eventsCounted: points
          .filter((p) => p.metric === "clickstream.events")
          .reduce((n, p) => n + p.value, 0)
      }
    })
  ).pipe(
    Effect.catchTag("InvalidEventSourceConfig", (e) =>
      Effect.fail(refused(scenarioName)({ _tag: e._tag, message: e.message }))
    )
  )

/** Runs the scenario (see the module header): the same traffic through both variants, each on its own clock. */
export const runClickstreamPeak = Effect.fn("ClickstreamPeak.run")(function* (
  options: RunOptions,
  provideTime?: TimeProvider
): Effect.fn.Return<Report, SimulationError> {
  const events = options.events ?? defaultEvents
  if (!Number.isSafeInteger(options.seed))
    return yield* new SimulationError({
      scenario: scenarioName,
      reason: "InvalidOptions",
      message: `seed must be an integer, got ${options.seed}`
    })
  if (!Number.isInteger(events) || events < 1000 || events > 1_000_000)
    return yield* new SimulationError({
      scenario: scenarioName,
      reason: "InvalidOptions",
      message: `events must be an integer in 1,000–1,000,000, got ${events}`
    })
  const trafficStart = startTime + 1000
  const variants: Array<VariantReport> = []
  let peakSeconds = 0
  for (const variant of ["inline", "logs+forwarder"] as const) {
    const report = yield* isolate(
      options.seed,
      Effect.gen(function* () {
        yield* TestClock.setTime(startTime)
        const { planned, peakStart, peakEnd } = yield* plan(events, trafficStart)
        peakSeconds = round1((peakEnd - peakStart) / 1000)
        return yield* runVariant(variant, planned, { start: peakStart, end: peakEnd })
      }),
      provideTime
    )
    variants.push(report)
  }
  return {
    scenario: scenarioName,
    seed: options.seed,
    events,
    peakSeconds,
    model: {
      shards: model.shards,
      baseRate: model.baseRate,
      peakRate: model.peakRate,
      batchSize: model.batchSize,
      processMillis: `${model.processMillis[0]}–${model.processMillis[1]}`,
      sendMillis: `${model.sendMillis[0]}–${model.sendMillis[1]}`
    },
    variants
  } satisfies Report
})

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** The scenario's table, as `spillway simulate --scenario clickstream-peak` prints it. */
export const renderTable = (report: Report): string => {
  const rows: Array<ReadonlyArray<string>> = [
    ["", ...report.variants.map((v) => v.variant)],
    ["iterator age p50", ...report.variants.map((v) => seconds(v.iteratorAgeMs.p50))],
    ["iterator age p99", ...report.variants.map((v) => seconds(v.iteratorAgeMs.p99))],
    ["iterator age max", ...report.variants.map((v) => seconds(v.iteratorAgeMs.max))],
    ["  at peak start", ...report.variants.map((v) => seconds(v.iteratorAgeAtPeakStartMs))],
    ["  at peak end", ...report.variants.map((v) => seconds(v.iteratorAgeAtPeakEndMs))],
    ["falling behind", ...report.variants.map((v) => (v.fallingBehind ? "yes" : "no"))],
    [
      "caught up after peak",
      ...report.variants.map((v) =>
        v.caughtUpSecondsAfterPeak < 0 ? "never" : `${v.caughtUpSecondsAfterPeak} s`
      )
    ],
    ["metric delay p50", ...report.variants.map((v) => seconds(v.metricDelayMs.p50))],
    ["metric delay p99", ...report.variants.map((v) => seconds(v.metricDelayMs.p99))],
    ["metric delay max", ...report.variants.map((v) => seconds(v.metricDelayMs.max))],
    ["metrics batches", ...report.variants.map((v) => String(v.batches))],
    ["Datadog requests", ...report.variants.map((v) => String(v.intakeRequests))],
    ["points delivered", ...report.variants.map((v) => String(v.pointsDelivered))],
    ["events kept", ...report.variants.map((v) => String(v.keptEvents))],
    ["events counted", ...report.variants.map((v) => String(v.eventsCounted))]
  ]
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const lines = rows.map((r) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("   ")
  )
  return [
    `clickstream-peak (seed ${report.seed}): ${report.events.toLocaleString("en-US")} events, peak ${report.model.peakRate}/s per shard for ${report.peakSeconds} s (${report.model.shards} shard${report.model.shards === 1 ? "" : "s"}, ${report.model.batchSize}-event batches, process ${report.model.processMillis} ms, Datadog call ${report.model.sendMillis} ms)`,
    "",
    ...lines
  ].join("\n")
}
