/**
 * What every function shares (`runtime/`): the managed runtime's life (built on the first
 * invocation, rebuilt after a failed build, disposed on SIGTERM), failures as Lambda reports them,
 * JSON log lines, EMF documents and the deadline's margin. Shown on the processor function, over a
 * memory pipeline, and on the entry files themselves.
 */
import { EventEmitter } from "node:events"
import { describe, expect, it } from "@effect/vitest"
import { DedupCache, DocumentSink } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { EventFixtures, Harness } from "@spillway/testing"
import { Data, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as Processor from "../src/functions/Processor.js"
import * as Deadline from "../src/runtime/Deadline.js"
import * as EmbeddedMetrics from "../src/runtime/EmbeddedMetrics.js"
import type * as LambdaHandler from "../src/runtime/LambdaHandler.js"
import { capture, context, invocationError, invoke, onTestClock, scriptedContext } from "./fixtures/Events.js"

const receivedAt = Date.parse("2026-11-24T10:00:00.000Z")

const pipelineOf = (options: MemoryPipeline.Options = {}) =>
  MemoryPipeline.make({ backup: false, processor: { pollIntervalMillis: 3_600_000 }, ...options })

const processorOf = <E>(
  layer: Layer.Layer<Processor.Services, E>,
  env: Readonly<Record<string, string>> = {},
  shutdown: LambdaHandler.Shutdown | false = false
) =>
  Effect.gen(function* () {
    const out = capture()
    const handler = Processor.make(yield* onTestClock(layer), { output: out.output, shutdown, env })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
    return { handler, out }
  })

class BuildRefused extends Data.TaggedError("BuildRefused")<{ readonly message: string }> {}

describe("the runtime's life", () => {
  it.effect(
    "is built on the first invocation, kept, and disposed on SIGTERM, which then ends the process",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* pipelineOf()
        const resource = { acquired: 0, released: 0 }
        const held = Layer.effectDiscard(
          Effect.acquireRelease(
            Effect.sync(() => resource.acquired++),
            () => Effect.sync(() => resource.released++)
          )
        )
        const signals = new EventEmitter()
        let exited: (code: number) => void = () => {}
        const exit = new Promise<number>((resolve) => {
          exited = resolve
        })
        const { handler, out } = yield* processorOf(
          Layer.merge(pipeline.layers.processor, held),
          {},
          {
            signals,
            exit: (code) => exited(code)
          }
        )
        // Making the handler (importing an entry file) builds nothing and listens to nothing.
        expect(resource.acquired).toBe(0)
        expect(signals.listenerCount("SIGTERM")).toBe(0)

        const ctx = yield* context()
        const event = EventFixtures.kinesisEventOfRecords(Harness.records(2))
        yield* invoke(handler, event, ctx)
        yield* invoke(handler, event, ctx)
        expect(resource).toEqual({ acquired: 1, released: 0 })
        expect(signals.listenerCount("SIGTERM")).toBe(1)

        signals.emit("SIGTERM")
        expect(yield* Effect.promise(() => exit)).toBe(0)
        expect(resource).toEqual({ acquired: 1, released: 1 })
        expect(out.logs()).toContainEqual(
          expect.objectContaining({ level: "INFO", message: "processor: SIGTERM, releasing its resources" })
        )
      })
  )

  it.effect(
    "a build that failed is reported as an InitializationError and tried again on the next invocation",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* pipelineOf()
        let builds = 0
        const flaky = Layer.effectDiscard(
          Effect.suspend(() =>
            builds++ === 0
              ? Effect.andThen(
                  Effect.logWarning("DescribeStreamSummary throttled"),
                  Effect.fail(new BuildRefused({ message: "the stream could not be resolved" }))
                )
              : Effect.void
          )
        )
        const { handler, out } = yield* processorOf(Layer.merge(pipeline.layers.processor, flaky))
        const ctx = yield* context()
        const event = EventFixtures.kinesisEventOfRecords(Harness.records(1))
        const error = yield* invocationError(handler, event, ctx)
        expect(error.name).toBe("InitializationError")
        expect(error.message).toBe("processor could not start: the stream could not be resolved")
        expect(out.logs()).toContainEqual(expect.objectContaining({ level: "ERROR", message: error.message }))
        // What a layer logs while it builds is a JSON line too.
        expect(out.logs()).toContainEqual(
          expect.objectContaining({ level: "WARN", message: "DescribeStreamSummary throttled" })
        )
        expect(yield* invoke(handler, event, ctx)).toEqual({ batchItemFailures: [] })
        expect(builds).toBe(2)
      })
  )

  it.effect("a malformed variable fails the invocation naming it", () =>
    Effect.gen(function* () {
      const pipeline = yield* pipelineOf()
      const ctx = yield* context()
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(1))
      for (const [env, variable] of [
        [{ LOG_LEVEL: "verbose" }, "LOG_LEVEL"],
        [{ DEADLINE_MARGIN_MS: "soon" }, "DEADLINE_MARGIN_MS"],
        [{ REPORT_BATCH_ITEM_FAILURES: "maybe" }, "REPORT_BATCH_ITEM_FAILURES"],
        [{ METRICS_NAMESPACE: "x".repeat(256), LOG_LEVEL: "info" }, "METRICS_NAMESPACE"]
      ] as const) {
        const { handler } = yield* processorOf(pipeline.layers.processor, env)
        const error = yield* invocationError(handler, event, ctx)
        expect(error.name).toBe("InitializationError")
        expect(error.message).toContain(variable)
      }
    })
  )

  it.effect("a defect fails the invocation as an InternalError; its cause is in the log", () =>
    Effect.gen(function* () {
      const pipeline = yield* pipelineOf()
      const broken = Layer.succeed(DocumentSink.DocumentSink, {
        name: "broken",
        write: () => Effect.die(new Error("the sink's client is broken"))
      })
      const { handler, out } = yield* processorOf(
        Layer.merge(Layer.succeed(DedupCache.DedupCache, pipeline.cache), broken)
      )
      const error = yield* invocationError(
        handler,
        EventFixtures.kinesisEventOfRecords(Harness.records(1)),
        yield* context()
      )
      expect(error.name).toBe("InternalError")
      expect(error.message).toBe("processor failed: the sink's client is broken")
      const logged = out.logs().find((log) => log.level === "ERROR")
      expect(logged).toMatchObject({
        message: "processor failed",
        errorMessage: "the sink's client is broken"
      })
      expect(String(logged?.cause)).toContain("the sink's client is broken")
    })
  )
})

describe("the entry files", () => {
  it.live("import without any AWS variable; the first invocation then says which one is missing", () =>
    Effect.gen(function* () {
      const entries = yield* Effect.promise(() =>
        Promise.all([
          import("../src/collector.js"),
          import("../src/redriver.js"),
          import("../src/processor.js"),
          import("../src/failure-reprocessor.js"),
          import("../src/backup-replayer.js")
        ])
      )
      for (const entry of entries) expect(typeof entry.handler).toBe("function")
      const processor = entries[2].handler
      const error = yield* invocationError(
        processor,
        EventFixtures.kinesisEventOfRecords(Harness.records(1)),
        yield* context()
      )
      yield* Effect.promise(() => processor.dispose())
      expect(error.name).toBe("InitializationError")
      expect(error.message).toMatch(
        /^processor could not start: Missing data at (OPENSEARCH_ENDPOINT|AWS_REGION)/
      )
    })
  )
})

describe("JSON logs", () => {
  it.effect("every line is one JSON object in Lambda's format, with the request id", () =>
    Effect.gen(function* () {
      const pipeline = yield* pipelineOf()
      const { handler, out } = yield* processorOf(pipeline.layers.processor)
      const ctx = yield* context({ awsRequestId: "8f6b2c1e-0000-4000-8000-00000000beef" })
      yield* invoke(handler, EventFixtures.kinesisEventOfRecords(Harness.records(2)), ctx)
      yield* Effect.flip(invoke(handler, { Records: "no" }, ctx))
      const logs = out.logs()
      expect(logs.length).toBeGreaterThanOrEqual(2)
      for (const log of logs) {
        expect(Object.keys(log).slice(0, 4)).toEqual(["timestamp", "level", "requestId", "message"])
        expect(new Date(String(log.timestamp)).toISOString()).toBe(log.timestamp)
        expect(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]).toContain(log.level)
        expect(log).toMatchObject({
          requestId: ctx.awsRequestId,
          function: "processor",
          message: expect.any(String)
        })
      }
    })
  )

  it.effect("LOG_LEVEL, else AWS_LAMBDA_LOG_LEVEL, sets the lowest level written", () =>
    Effect.gen(function* () {
      const pipeline = yield* pipelineOf()
      const ctx = yield* context()
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(1))
      const levelsWith = (env: Record<string, string>) =>
        Effect.gen(function* () {
          const { handler, out } = yield* processorOf(pipeline.layers.processor, env)
          yield* invoke(handler, event, ctx)
          yield* Effect.flip(invoke(handler, {}, ctx))
          return [...new Set(out.logs().map((log) => log.level))].sort()
        })
      expect(yield* levelsWith({})).toEqual(["ERROR", "INFO"])
      expect(yield* levelsWith({ LOG_LEVEL: "error" })).toEqual(["ERROR"])
      expect(yield* levelsWith({ AWS_LAMBDA_LOG_LEVEL: "WARN" })).toEqual(["ERROR"])
      expect(yield* levelsWith({ AWS_LAMBDA_LOG_LEVEL: "FATAL", LOG_LEVEL: "INFO" })).toEqual([
        "ERROR",
        "INFO"
      ])
    })
  )
})

describe("EMF metrics", () => {
  /** The documented rules (docs/aws-behaviour.md §7.2) every document must keep. */
  const expectValidEmf = (document: Record<string, unknown>) => {
    const aws = document._aws as {
      readonly Timestamp: number
      readonly CloudWatchMetrics: ReadonlyArray<{
        readonly Namespace: string
        readonly Dimensions: ReadonlyArray<ReadonlyArray<string>>
        readonly Metrics: ReadonlyArray<{ readonly Name: string; readonly Unit: string }>
      }>
    }
    expect(Number.isInteger(aws.Timestamp)).toBe(true)
    for (const directive of aws.CloudWatchMetrics) {
      expect(directive.Namespace.length).toBeGreaterThan(0)
      expect(directive.Metrics.length).toBeLessThanOrEqual(100)
      for (const set of directive.Dimensions) {
        expect(set.length).toBeLessThanOrEqual(30)
        for (const key of set) expect(typeof document[key]).toBe("string")
      }
      for (const metric of directive.Metrics) {
        const value = document[metric.Name]
        if (Array.isArray(value)) {
          expect(value.length).toBeGreaterThan(0)
          expect(value.length).toBeLessThanOrEqual(EmbeddedMetrics.maxValuesPerDocument)
          for (const v of value) expect(typeof v).toBe("number")
        } else expect(typeof value).toBe("number")
        expect(["Count", "Milliseconds"]).toContain(metric.Unit)
      }
    }
  }

  it.effect("written when the invocation ends: its counters, and every end-to-end delay sample", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(receivedAt + 5000)
      const pipeline = yield* pipelineOf()
      const { handler, out } = yield* processorOf(pipeline.layers.processor, {
        METRICS_NAMESPACE: "Spillway/Test"
      })
      const ctx = yield* context({ functionName: "spillway-prod-processor" })
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(150), { receivedAt })
      yield* invoke(handler, event, ctx)
      const documents = out.emf()
      // 150 samples: 100 in the first document, 50 in the second (EMF takes 100 values a metric).
      expect(documents).toHaveLength(2)
      for (const document of documents) expectValidEmf(document)
      const [first, second] = documents
      expect(first).toMatchObject({
        _aws: {
          Timestamp: receivedAt + 5000,
          CloudWatchMetrics: [{ Namespace: "Spillway/Test", Dimensions: [["function"]] }]
        },
        function: "processor",
        functionName: "spillway-prod-processor",
        requestId: ctx.awsRequestId,
        spillway_records_written: 150,
        spillway_duplicates_skipped: 0,
        spillway_records_failed: 0
      })
      expect(first!.spillway_end_to_end_delay_ms).toEqual(Array.from({ length: 100 }, () => 5000))
      expect(second!.spillway_end_to_end_delay_ms).toEqual(Array.from({ length: 50 }, () => 5000))
      expect(second!.spillway_records_written).toBeUndefined()
      const metrics = (
        first!._aws as { CloudWatchMetrics: ReadonlyArray<{ Metrics: ReadonlyArray<unknown> }> }
      ).CloudWatchMetrics[0]!.Metrics
      expect(metrics).toContainEqual({ Name: "spillway_end_to_end_delay_ms", Unit: "Milliseconds" })
      expect(metrics).toContainEqual({ Name: "spillway_records_written", Unit: "Count" })

      // The next invocation writes its own figures, not a running total: the same records are duplicates now.
      out.clear()
      yield* invoke(handler, event, ctx)
      const [again, ...more] = out.emf()
      expect(more).toHaveLength(0)
      expectValidEmf(again!)
      expect(again).toMatchObject({ spillway_records_written: 0, spillway_duplicates_skipped: 150 })
      expect(again!.spillway_end_to_end_delay_ms).toBeUndefined()
    })
  )
})

describe("the deadline's margin", () => {
  it("is 10% of the time the invocation started with, at least 1 s, unless DEADLINE_MARGIN_MS says otherwise", () => {
    expect(Deadline.marginFor(3000, undefined)).toBe(1000)
    expect(Deadline.marginFor(30_000, undefined)).toBe(3000)
    expect(Deadline.marginFor(900_000, undefined)).toBe(90_000)
    expect(Deadline.marginFor(900_000, 250)).toBe(250)
  })

  it.effect("DEADLINE_MARGIN_MS: 50 ms left is enough with a margin of 10 ms", () =>
    Effect.gen(function* () {
      const pipeline = yield* pipelineOf()
      const { handler } = yield* processorOf(pipeline.layers.processor, { DEADLINE_MARGIN_MS: "10" })
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(3))
      expect(yield* invoke(handler, event, yield* scriptedContext(() => 50))).toEqual({
        batchItemFailures: []
      })
      expect(yield* pipeline.index.count).toBe(3)
    })
  )
})
