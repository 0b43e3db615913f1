/**
 * The published before/after experiment (`spillway simulate --compare <seed>`), replayed on the
 * real in-memory pipeline. One traffic plan and one fault plan, drawn once from the seed, go through
 * four processor configurations, and the end-to-end delay (collector receipt → write confirmed by
 * the index) of each is set next to the figures the original production system published:
 *
 * - before: no bisection, whole-batch failure, unlimited retries, no dedup cache
 *   (published 4.4 s avg / 23.3 s p99);
 * - after: bisect on function error, 3 retries then the on-failure destination, the dedup cache
 *   (published 1.3 s avg / 3.9 s p99);
 * - spillway: `MemoryPipeline.recommendedProcessorConfig` (partial batch response on top of the
 *   above), Spillway's own design; nothing was published for it, so it has no error column;
 * - fanOut: the spillway configuration read by an enhanced fan-out consumer instead of the
 *   standard iterator: the stream pushes each record to the mapping `fanOutPropagationMillis`
 *   after it was written (`SubscribeToShard` over HTTP/2), with no per-shard poll interval, so the
 *   half second a record waits on average for the next poll goes. This is the delay floor of the
 *   design: what remains is the propagation, the function's own time and the faults.
 *
 * The delay model, every source a named constant in `model` below:
 * - polling: Lambda polls each shard about once per second (`pollIntervalMillis`), so a record
 *   waits half a second on average before its batch is even read; with enhanced fan-out (the
 *   fourth column) it is pushed instead, `fanOutPropagationMillis` after it was written;
 * - function duration: every write the function makes costs a fixed overhead (cold paths, the
 *   `_bulk` round trip) plus a cost per document (transform, serialise, index), slept on the clock
 *   by a wrapping sink. That per-document cost is what makes a whole-batch retry expensive: without
 *   a dedup cache a retried batch of 500 is written again in full;
 * - retries: a failed batch waits `retryDelayMillis` before it is invoked again, and the shard is
 *   blocked meanwhile (one batch in flight per shard), so every record behind it waits too;
 * - faults: 429s on single items, rare in normal times and frequent while the index is
 *   overloaded, in windows that hit every shard at once (retried inside the invocation by
 *   Spillway's processor on `Schedules.sinkWrite`; the original function had no item-level retry,
 *   so there a 429 failed the whole invocation, modelled by answering it `Rejected`); and "sticky" records that
 *   fail the invocation a few times and then go through. The second kind is how the original
 *   system's poison looked in practice (a timeout, a mapping update racing the write): a record
 *   that fails k times (k drawn from 1..`maxStickyFailures`) and then succeeds. Records that can
 *   never be written are left out on purpose: with unlimited retries and no bisection ("before")
 *   one of them blocks its shard until the records expire, so no finite "before" figure exists
 *   with them, and the published one is finite.
 *
 * Guarantees: the same seed prints the same bytes (virtual time, seeded `Random`, the fault plan
 * drawn before any pipeline runs so every column meets the same faults on the same records); every
 * accepted record is accounted for (indexed, or counted `lost`); a run (4 × 24,000 records over
 * 300 s of virtual time, on `VirtualTime`) takes about 10 s. The client fleet, the clock driver, the
 * run harness and the delay figures are the scenarios' own (`internal/`), so a column and a
 * scenario measure the same way.
 */
import { DocumentSink } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { Clock, Duration, Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import { refused, SimulationError } from "./internal/error.js"
import * as Fleet from "./internal/fleet.js"
import { isolate, makeClockDriver, startTime } from "./internal/harness.js"
import { ascending, round1, summarize } from "./internal/stats.js"

/**
 * The calibrated model. Change one number here and every column moves with it.
 *
 * Calibrated on the "before" configuration, averaged over seeds 1–10 (`npm run bench:compare`
 * prints every seed and the mean): `perDocumentMillis` and the overload windows were the knobs;
 * the rest are Lambda's documented behaviour or round figures. The "before" column sits near a
 * tipping point (whole-batch retries without a cache grow the backlog, which makes the next batch
 * bigger and likelier to fail), so its figures swing between seeds; the other two columns do not.
 */
export const model = {
  /** Shards of the stream; the collector routes records by id, so each gets an even share. */
  shards: 4,
  /**
   * Records in the run: 300 s of traffic, long enough for several overload windows (a 23 s p99
   * needs stalls that cover a small share of the run, not most of it).
   */
  records: 24_000,
  /** Client traffic over all shards (20 per shard per second), one request every `tickMillis`. */
  recordsPerSecond: 80,
  tickMillis: 250,
  /** Lambda polls each shard about once per second (docs/aws-behaviour.md §2.1). */
  pollIntervalMillis: 1000,
  /** Pause before a failed batch, or a bisected half, is invoked again. */
  retryDelayMillis: 1000,
  /** Records per invocation at most, the same in every column. */
  batchSize: 500,
  /** Fixed cost of every write the function makes (invocation path and `_bulk` round trip). */
  writeOverheadMillis: 150,
  /**
   * Cost per document written (transform, serialise, index): what makes rewriting a whole batch
   * without a dedup cache expensive, and so the speed at which "before" drains a backlog.
   */
  perDocumentMillis: 3.25,
  /**
   * Share of item writes the index answers 429 in normal times. Retried inside the invocation by
   * Spillway; in the original function any failed item failed the invocation, so a batch of n
   * records failed with probability 1 − (1 − rate)^n.
   */
  throttleRate: 0.0025,
  /**
   * OpenSearch overload (a merge, a snapshot, a noisy neighbour): windows in which the index
   * answers 429 to `overloadThrottleRate` of item writes, on every shard at once. This is the
   * feedback loop behind the "before" tail: a batch of 20 fails with probability 64%, and while it
   * is retried whole the backlog grows, so the next attempt is bigger and likelier to fail, until
   * the window ends and the backlog drains at `perDocumentMillis`. With the cache ("after"), a
   * retry writes only the items that failed and goes through. The gap before each window is drawn
   * uniformly from [0.5, 1.5] × `overloadMeanGapMillis`, its length from
   * [`overloadMinMillis`, `overloadMaxMillis`].
   */
  overloadThrottleRate: 0.05,
  overloadMeanGapMillis: 40_000,
  overloadMinMillis: 10_000,
  overloadMaxMillis: 30_000,
  /**
   * Share of records that fail the invocation a few times before they go through (a write
   * timeout, a mapping update racing the write): the poison bisection isolates in "after".
   */
  stickyRate: 0.0003,
  /** A sticky record fails 1..this many times. */
  maxStickyFailures: 3,
  /**
   * Enhanced fan-out (the fourth column): how long after it was written a record is pushed to the
   * mapping. "Typically an average of 70 ms whether you have one consumer or five", against
   * "around 200 ms" for one polling consumer (Kinesis Data Streams Developer Guide, "Read data
   * from Amazon Kinesis Data Streams", https://docs.aws.amazon.com/streams/latest/dev/building-consumers.html).
   */
  fanOutPropagationMillis: 70
}

export type Model = { readonly [K in keyof typeof model]: number }

export const published = {
  before: { avgMs: 4400, p99Ms: 23_300 },
  after: { avgMs: 1300, p99Ms: 3900 }
} as const

export const columnNames = ["before", "after", "spillway", "fanOut"] as const
export type ColumnName = (typeof columnNames)[number]

export interface ColumnConfig {
  readonly bisectBatchOnFunctionError: boolean
  readonly reportBatchItemFailures: boolean
  readonly maximumRetryAttempts: number
  /** 1 stands for "no cache": every id is evicted by the next. */
  readonly dedupCapacity: number
  /**
   * Whether the function retries the items the index answered 429 inside the invocation. The
   * original function did not: any failed item failed the invocation.
   */
  readonly itemRetries: boolean
  /**
   * Whether the mapping reads through an enhanced fan-out consumer (records pushed, no poll
   * interval) instead of the standard iterator (each shard polled every `pollIntervalMillis`).
   */
  readonly enhancedFanOut: boolean
  /** Batches of one shard in flight at once (`ParallelizationFactor`), each partition key in one. */
  readonly parallelizationFactor: number
}

export const columnConfigs: { readonly [K in ColumnName]: ColumnConfig } = {
  before: {
    bisectBatchOnFunctionError: false,
    reportBatchItemFailures: false,
    maximumRetryAttempts: -1,
    dedupCapacity: 1,
    itemRetries: false,
    enhancedFanOut: false,
    parallelizationFactor: 1
  },
  after: {
    bisectBatchOnFunctionError: true,
    reportBatchItemFailures: false,
    // The published "after" retried a batch 3 times before sending it to the on-failure destination.
    maximumRetryAttempts: 3,
    dedupCapacity: 1_000_000,
    itemRetries: false,
    enhancedFanOut: false,
    parallelizationFactor: 1
  },
  spillway: {
    bisectBatchOnFunctionError: MemoryPipeline.recommendedProcessorConfig.bisectBatchOnFunctionError ?? false,
    reportBatchItemFailures: MemoryPipeline.recommendedProcessorConfig.reportBatchItemFailures ?? false,
    maximumRetryAttempts: MemoryPipeline.recommendedProcessorConfig.maximumRetryAttempts ?? -1,
    dedupCapacity: 1_000_000,
    itemRetries: true,
    enhancedFanOut: false,
    parallelizationFactor: 1
  },
  // Spillway's design as the production stages deploy it (infra/src/Stages.ts): an enhanced
  // fan-out consumer and two batches in flight per shard; the processor's settings are the same.
  fanOut: {
    bisectBatchOnFunctionError: MemoryPipeline.recommendedProcessorConfig.bisectBatchOnFunctionError ?? false,
    reportBatchItemFailures: MemoryPipeline.recommendedProcessorConfig.reportBatchItemFailures ?? false,
    maximumRetryAttempts: MemoryPipeline.recommendedProcessorConfig.maximumRetryAttempts ?? -1,
    dedupCapacity: 1_000_000,
    itemRetries: true,
    enhancedFanOut: true,
    parallelizationFactor: 2
  }
}

export interface Column {
  readonly config: ColumnConfig
  readonly records: {
    readonly accepted: number
    readonly indexed: number
    /** Records that reached the index only through the replay of the on-failure destination. */
    readonly replayed: number
    readonly lost: number
  }
  readonly delayMs: { readonly avg: number; readonly p50: number; readonly p99: number; readonly max: number }
  readonly invocations: number
  readonly functionErrors: number
  readonly bisections: number
  readonly batchesDiscarded: number
  /** Documents written again after they had been confirmed: the price of no dedup cache. */
  readonly rewrites: number
  readonly simulatedSeconds: number
}

export interface PredictionError {
  readonly avgPct: number
  readonly p99Pct: number
}

export interface Comparison {
  readonly seed: number
  readonly model: Model
  readonly published: typeof published
  /** The overload windows of this seed, in milliseconds after the start of the traffic. */
  readonly overloads: FaultPlan["overloads"]
  readonly columns: { readonly [K in ColumnName]: Column }
  /** (model − published) / published, in percent. */
  readonly errors: { readonly before: PredictionError; readonly after: PredictionError }
}

/** How long the pipeline may take to drain after the traffic before a column is declared stuck. */
const settleLimitMillis = 3_600_000
const apiKey = MemoryPipeline.defaultApiKeys[0].key

/**
 * What the seed decides before any pipeline runs, so every column meets the same faults: per
 * record, how often it fails the invocation; and when the index is overloaded (milliseconds after
 * the start, half-open windows).
 */
export interface FaultPlan {
  readonly sticky: ReadonlyArray<number>
  readonly overloads: ReadonlyArray<{ readonly from: number; readonly to: number }>
}

const drawFaultPlan = (model: Model) =>
  Effect.gen(function* () {
    const sticky: Array<number> = []
    for (let i = 0; i < model.records; i++) {
      sticky.push(
        // 1..maxStickyFailures, both ends included (`nextIntBetween` is inclusive unless half-open).
        (yield* Random.next) < model.stickyRate ? yield* Random.nextIntBetween(1, model.maxStickyFailures) : 0
      )
    }
    const overloads: Array<{ from: number; to: number }> = []
    const trafficMillis = (model.records / model.recordsPerSecond) * 1000
    let at = 0
    // No windows without a rate or a length; every gap is at least a millisecond, so this ends.
    while (model.overloadMaxMillis > 0 && model.overloadThrottleRate > 0) {
      at += Math.max(1, Math.round(model.overloadMeanGapMillis * (0.5 + (yield* Random.next))))
      if (at >= trafficMillis) break
      const length = Math.round(
        model.overloadMinMillis + (model.overloadMaxMillis - model.overloadMinMillis) * (yield* Random.next)
      )
      overloads.push({ from: at, to: at + length })
      at += length
    }
    return { sticky, overloads } satisfies FaultPlan
  })

/**
 * The function's cost and the fault mix, written next to the index: it sleeps the write's
 * duration, answers `Rejected` for a sticky record while it still has failures left (a failure
 * the handler cannot retry itself, so the invocation fails), `Retryable` for a 429, and notes when
 * each id was first confirmed and how often it was written again afterwards.
 */
const makeModelSink = (
  model: Model,
  sticky: Map<string, number>,
  overloads: FaultPlan["overloads"],
  itemRetries: boolean
) => {
  const firstWritten = new Map<string, number>()
  let rewrites = 0
  const write = Effect.fn("CompareSink.write")(function* (documents: ReadonlyArray<DocumentSink.Document>) {
    yield* Effect.sleep(
      Duration.millis(model.writeOverheadMillis + model.perDocumentMillis * documents.length)
    )
    const now = yield* Clock.currentTimeMillis
    const sinceStart = now - startTime
    const throttleRate = overloads.some((w) => sinceStart >= w.from && sinceStart < w.to)
      ? model.overloadThrottleRate
      : model.throttleRate
    const outcomes: Array<DocumentSink.WriteOutcome> = []
    for (const document of documents) {
      const left = sticky.get(document.id) ?? 0
      if (left > 0) {
        sticky.set(document.id, left - 1)
        outcomes.push({ _tag: "Rejected", reason: "the write timed out (sticky record)" })
      } else if ((yield* Random.next) < throttleRate) {
        outcomes.push(
          itemRetries
            ? { _tag: "Retryable", reason: "429 es_rejected_execution_exception" }
            : { _tag: "Rejected", reason: "429 es_rejected_execution_exception, not retried by the function" }
        )
      } else {
        if (firstWritten.has(document.id)) rewrites++
        else firstWritten.set(document.id, now)
        outcomes.push(DocumentSink.written)
      }
    }
    return outcomes
  })
  return {
    sink: DocumentSink.DocumentSink.of({ name: "compare-model", write }),
    firstWritten,
    rewrites: () => rewrites
  }
}

/** A column's pipeline: the column's processor configuration, writing next to the model sink. */
const startColumn = (model: Model, config: ColumnConfig, plan: FaultPlan) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(startTime)
    const sticky = new Map<string, number>()
    plan.sticky.forEach((failures, i) => {
      if (failures > 0) sticky.set(`rec-${i}`, failures)
    })
    const modelSink = makeModelSink(model, sticky, plan.overloads, config.itemRetries)
    const pipeline = yield* MemoryPipeline.make({
      stream: { shardCount: model.shards, fanOutPropagationMillis: model.fanOutPropagationMillis },
      processor: {
        consumer: config.enhancedFanOut ? "enhancedFanOut" : "standard",
        parallelizationFactor: config.parallelizationFactor,
        batchSize: model.batchSize,
        pollIntervalMillis: model.pollIntervalMillis,
        retryDelayMillis: model.retryDelayMillis,
        bisectBatchOnFunctionError: config.bisectBatchOnFunctionError,
        reportBatchItemFailures: config.reportBatchItemFailures,
        maximumRetryAttempts: config.maximumRetryAttempts
      },
      dedup: { capacity: config.dedupCapacity },
      extraSinks: [modelSink.sink],
      // The comparison measures delay to the index; the backup takes no part in it.
      backup: false
    }).pipe(Effect.mapError(refused("compare")))
    return { pipeline, modelSink }
  })

/**
 * The comparison's client fleet: `recordsPerSecond` uniform, valid records, one request a tick;
 * notes when the collector first took each id in `receivedAt`.
 */
const produce = (pipeline: MemoryPipeline.Pipeline, model: Model, receivedAt: Map<string, number>) => {
  const perTick = (model.recordsPerSecond * model.tickMillis) / 1000
  let made = 0
  const fresh = Effect.gen(function* () {
    const items: Array<Readonly<Record<string, unknown>>> = []
    for (let i = 0; i < perTick && made < model.records; i++, made++) {
      const now = yield* Clock.currentTimeMillis
      items.push({
        id: `rec-${made}`,
        type: "cpu",
        timestamp: new Date(now).toISOString(),
        payload: { host: `host-${made % 50}`, value: made % 100 }
      })
    }
    return items
  })
  const send = (request: ReadonlyArray<Readonly<Record<string, unknown>>>) =>
    Effect.gen(function* () {
      const result = yield* pipeline.collect(apiKey, request).pipe(Effect.mapError(refused("compare")))
      const unavailable = new Set(result.unavailable.map((u) => u.index))
      request.forEach((body, index) => {
        if (!unavailable.has(index) && !receivedAt.has(String(body.id))) {
          receivedAt.set(String(body.id), result.receivedAt)
        }
      })
      return request.filter((_, index) => unavailable.has(index))
    })
  return Fleet.run({ tickMillis: model.tickMillis, more: () => made < model.records, fresh, send })
}

/** Every accepted record's delay to its first confirmed write; a record never written counts as lost. */
const delays = (
  receivedAt: ReadonlyMap<string, number>,
  firstWritten: ReadonlyMap<string, number>,
  indexedIds: ReadonlySet<string>,
  beforeReplay: ReadonlySet<string>
) => {
  const samples: Array<number> = []
  let lost = 0
  let replayed = 0
  for (const [id, at] of receivedAt) {
    const written = firstWritten.get(id)
    if (written === undefined || !indexedIds.has(id)) {
      lost++
      continue
    }
    if (!beforeReplay.has(id)) replayed++
    samples.push(written - at)
  }
  return { sorted: ascending(samples), lost, replayed }
}

const runColumn = (model: Model, name: ColumnName, plan: FaultPlan): Effect.Effect<Column, SimulationError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const config = columnConfigs[name]
      const { pipeline, modelSink } = yield* startColumn(model, config, plan)
      const driver = makeClockDriver({
        scenario: "compare",
        deadline: startTime + (model.records / model.recordsPerSecond) * 1000 + settleLimitMillis,
        stuckMessage: () => `the ${name} column still had work an hour after its traffic`,
        isIdle: pipeline.isIdle
      })
      const receivedAt = new Map<string, number>()
      yield* driver.settle([yield* Effect.forkChild(produce(pipeline, model, receivedAt))])
      const beforeReplay = new Set(modelSink.firstWritten.keys())
      // The operator's last step, as in every scenario: replay what the processor gave up on.
      yield* driver.whileTicking("the replay", pipeline.replayFailures)
      const end = yield* Clock.currentTimeMillis

      const indexedIds = new Set((yield* pipeline.index.documents).map((d) => d.id))
      const { sorted, lost, replayed } = delays(receivedAt, modelSink.firstWritten, indexedIds, beforeReplay)
      const counters = yield* pipeline.processor.counters
      return {
        config,
        records: { accepted: receivedAt.size, indexed: sorted.length, replayed, lost },
        // Jittered in-invocation retries sleep fractions of a millisecond: whole milliseconds are enough.
        delayMs: summarize(sorted, Math.round),
        invocations: counters.invocations,
        functionErrors: counters.functionErrors,
        bisections: counters.bisections,
        batchesDiscarded: counters.batchesDiscarded,
        rewrites: modelSink.rewrites(),
        simulatedSeconds: Math.round((end - startTime) / 1000)
      } satisfies Column
    })
  )

const errorPct = (model: number, publishedValue: number): number =>
  round1(((model - publishedValue) / publishedValue) * 100)

/**
 * Runs the four columns on the same seeded traffic and fault plan, each on a fresh pipeline with
 * its own `TestClock`. Needs nothing from the caller's environment.
 */
export const runComparison = (seed: number): Effect.Effect<Comparison, SimulationError> =>
  runComparisonWith(seed, model)

/** `runComparison` on another model: for calibrating the constants and for what-if runs. */
export const runComparisonWith = Effect.fn("Comparison.runComparison")(function* (
  seed: number,
  model: Model
): Effect.fn.Return<Comparison, SimulationError> {
  if (!Number.isSafeInteger(seed)) {
    return yield* new SimulationError({
      scenario: "compare",
      reason: "InvalidOptions",
      message: `seed must be an integer, got ${seed}`
    })
  }
  const plan = yield* isolate(seed, drawFaultPlan(model))
  const before = yield* isolate(seed, runColumn(model, "before", plan))
  const after = yield* isolate(seed, runColumn(model, "after", plan))
  const spillway = yield* isolate(seed, runColumn(model, "spillway", plan))
  const fanOut = yield* isolate(seed, runColumn(model, "fanOut", plan))
  return {
    seed,
    model,
    published,
    overloads: plan.overloads,
    columns: { before, after, spillway, fanOut },
    errors: {
      before: {
        avgPct: errorPct(before.delayMs.avg, published.before.avgMs),
        p99Pct: errorPct(before.delayMs.p99, published.before.p99Ms)
      },
      after: {
        avgPct: errorPct(after.delayMs.avg, published.after.avgMs),
        p99Pct: errorPct(after.delayMs.p99, published.after.p99Ms)
      }
    }
  }
})
