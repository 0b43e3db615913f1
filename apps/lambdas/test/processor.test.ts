/**
 * The processor function over a memory pipeline's processor layer (dedup cache and index), called
 * as Lambda calls it: Kinesis events (base64 data) shaped as AWS builds them, a Lambda context,
 * and its answer read as the event source mapping reads it. Time left comes from the context,
 * scripted where a test needs the deadline to arrive; the runtime shares the test's clock.
 */
import { describe, expect, it } from "@effect/vitest"
import { DocumentSink, type LambdaEvents } from "@spillway/core"
import { KinesisEventSource, MemoryPipeline } from "@spillway/memory"
import { EventFixtures, Harness } from "@spillway/testing"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Processor from "../src/functions/Processor.js"
import {
  capture,
  context,
  invocationError,
  invoke,
  onTestClock,
  powertools,
  scriptedContext
} from "./fixtures/Events.js"

const setup = (
  options: {
    readonly env?: Readonly<Record<string, string>>
    readonly extraSinks?: ReadonlyArray<DocumentSink.Service>
  } = {}
) =>
  Effect.gen(function* () {
    // The pipeline's own mapping stays idle: these tests hand events to the function themselves.
    const pipeline = yield* MemoryPipeline.make({
      backup: false,
      processor: { pollIntervalMillis: 3_600_000 },
      ...(options.extraSinks === undefined ? {} : { extraSinks: options.extraSinks })
    })
    const out = capture()
    const handler = Processor.make(yield* onTestClock(pipeline.layers.processor), {
      output: out.output,
      shutdown: false,
      env: options.env ?? {}
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
    return { pipeline, handler, out }
  })

const sequenceNumbers = (event: LambdaEvents.KinesisEvent) =>
  event.Records.map((r) => r.kinesis.sequenceNumber)
const failures = (sequences: ReadonlyArray<string>) => ({
  batchItemFailures: sequences.map((itemIdentifier) => ({ itemIdentifier }))
})

/** `event` with the data of record `index` replaced by bytes that are not an envelope. */
const poisoned = (event: LambdaEvents.KinesisEvent, index: number): LambdaEvents.KinesisEvent => ({
  Records: event.Records.map((record, i) =>
    i === index
      ? { ...record, kinesis: { ...record.kinesis, data: Buffer.from("{not json").toString("base64") } }
      : record
  )
})

describe("processor function", () => {
  it.effect("writes every record of a Kinesis event (base64 data) and reports no failure", () =>
    Effect.gen(function* () {
      const { pipeline, handler, out } = yield* setup()
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(5), { tenant: "acme" })
      powertools.kinesis(event)
      expect(yield* invoke(handler, event, yield* context())).toEqual({ batchItemFailures: [] })
      expect(yield* pipeline.index.count).toBe(5)
      expect((yield* pipeline.index.get("r-3"))?.source).toMatchObject({
        id: "r-3",
        tenant: "acme",
        type: "cpu"
      })
      const summary = out
        .logs()
        .find(
          (log) =>
            log.message === "processed 5 records: 5 written, 0 duplicates skipped, 0 failed, 0 unfinished"
        )
      expect(summary).toMatchObject({
        level: "INFO",
        function: "processor",
        written: 5,
        requestId: expect.any(String)
      })
    })
  )

  it.effect("a record that is not an envelope is reported alone: exactly its sequence number", () =>
    Effect.gen(function* () {
      const { pipeline, handler, out } = yield* setup()
      const event = poisoned(EventFixtures.kinesisEventOfRecords(Harness.records(6)), 2)
      powertools.kinesis(event)
      const poison = event.Records[2]!.kinesis.sequenceNumber
      expect(yield* invoke(handler, event, yield* context())).toEqual(failures([poison]))
      expect(yield* pipeline.index.count).toBe(5)
      expect(out.logs()).toContainEqual(
        expect.objectContaining({ level: "WARN", sequenceNumber: poison, retryable: false })
      )
    })
  )

  it.effect("a record the index refuses (a string where it mapped a number) is reported alone", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      const records = [
        Harness.record("m-0", { value: 1 }),
        Harness.record("m-1", { value: "not a number" }),
        Harness.record("m-2", { value: 3 })
      ]
      const event = EventFixtures.kinesisEventOfRecords(records)
      powertools.kinesis(event)
      expect(yield* invoke(handler, event, yield* context())).toEqual(
        failures([event.Records[1]!.kinesis.sequenceNumber])
      )
      expect(yield* pipeline.index.get("m-1")).toBeUndefined()
      expect(yield* pipeline.index.count).toBe(2)
    })
  )

  it.effect("with 50 ms left it starts nothing and reports every record, lowest first", () =>
    Effect.gen(function* () {
      const { pipeline, handler, out } = yield* setup()
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(120))
      const response = yield* invoke(handler, event, yield* scriptedContext(() => 50))
      expect(response).toEqual(failures(sequenceNumbers(event)))
      expect(yield* pipeline.index.count).toBe(0)
      expect(out.logs()).toContainEqual(
        expect.objectContaining({ level: "WARN", unfinished: 120, remainingMillis: 50, marginMillis: 1000 })
      )
    })
  )

  it.effect("at the deadline it stops between slices: finished slices are not reported, the rest is", () =>
    Effect.gen(function* () {
      // 10 s left, so a margin of 1 s; every document written costs 45 ms of it.
      let remaining = 10_000
      const clockSink: DocumentSink.Service = {
        name: "clock",
        write: (documents) =>
          Effect.sync(() => {
            remaining -= 45 * documents.length
            return documents.map(() => DocumentSink.written)
          })
      }
      const { pipeline, handler } = yield* setup({ extraSinks: [clockSink] })
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(250))
      const response = yield* invoke(handler, event, yield* scriptedContext(() => remaining))
      // Slices of 100: the first leaves 5.5 s, the second 1 s — the margin, so the third never starts.
      expect(response).toEqual(failures(sequenceNumbers(event).slice(200)))
      expect(yield* pipeline.index.count).toBe(200)
      expect(remaining).toBe(1000)
    })
  )

  it.effect("a slice still running when only the margin is left is cut off and reported", () =>
    Effect.gen(function* () {
      let started = 0
      const stuckSink: DocumentSink.Service = {
        name: "stuck",
        write: () =>
          Effect.andThen(
            Effect.sync(() => started++),
            Effect.never
          )
      }
      const { handler } = yield* setup({ extraSinks: [stuckSink] })
      const event = EventFixtures.kinesisEventOfRecords(Harness.records(30))
      const ctx = yield* context({ timeout: "5 seconds" })
      const fiber = yield* Effect.forkChild(invoke(handler, event, ctx))
      // The slice may run until 1 s (the margin) is left: 4 s from now on the test clock.
      yield* Harness.whileClockRuns(Fiber.join(fiber), "500 millis")
      expect(yield* Fiber.join(fiber)).toEqual(failures(sequenceNumbers(event)))
      expect(started).toBe(1)
    })
  )

  it.effect("an event of the wrong shape fails the invocation, saying what is wrong", () =>
    Effect.gen(function* () {
      const { handler, out } = yield* setup()
      const ctx = yield* context()
      const good = EventFixtures.kinesisEventOfRecords(Harness.records(1))
      const { data: _, ...noData } = good.Records[0]!.kinesis
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{}, "Records: is missing"],
        [{ Records: [{ ...good.Records[0], kinesis: noData }] }, "Records.0.kinesis.data: is missing"],
        [EventFixtures.sqsEvent([{ body: "{}" }]), 'Records.0.eventSource: Expected "aws:kinesis"'],
        ["just a string", "event must be a JSON object"]
      ]
      for (const [event, problem] of cases) {
        const error = yield* invocationError(handler, event, ctx)
        expect(error.name).toBe("InvalidEvent")
        expect(error.message).toContain("processor takes a Kinesis event")
        expect(error.message).toContain(problem)
      }
      expect(out.logs()).toContainEqual(
        expect.objectContaining({ level: "ERROR", errorType: "InvalidEvent", requestId: ctx.awsRequestId })
      )
    })
  )

  it.effect(
    "REPORT_BATCH_ITEM_FAILURES=false: a record that cannot be saved fails the whole invocation",
    () =>
      Effect.gen(function* () {
        const { handler } = yield* setup({ env: { REPORT_BATCH_ITEM_FAILURES: "false" } })
        const ctx = yield* context()
        const clean = EventFixtures.kinesisEventOfRecords(Harness.records(3))
        expect(yield* invoke(handler, clean, ctx)).toEqual({ batchItemFailures: [] })
        const error = yield* invocationError(handler, poisoned(clean, 1), ctx)
        expect(error.name).toBe("BatchNotSaved")
        expect(error.message).toContain("1 records could not be saved")
        const late = yield* invocationError(handler, clean, yield* scriptedContext(() => 50))
        expect(late.name).toBe("BatchNotSaved")
        expect(late.message).toContain("3 were left unfinished")
      })
  )

  it.effect(
    "behind the event source mapping (bisect, partial responses, 3 retries) a refused record ends on the on-failure destination alone",
    () =>
      Effect.gen(function* () {
        const { pipeline, handler } = yield* setup()
        const ctx = yield* context()
        const mapping = yield* KinesisEventSource.start(
          pipeline.stream,
          (event) => invoke(handler, event, ctx),
          { ...MemoryPipeline.recommendedProcessorConfig, batchSize: 10, onFailure: pipeline.failures }
        )
        const records = Harness.records(20).map((r, i) =>
          i === 7 ? Harness.record(r.id, { value: "text" }) : r
        )
        yield* pipeline.collect(Harness.apiKey, records)
        for (let i = 0; i < 60 && !(yield* mapping.isIdle); i++) yield* TestClock.adjust("1 second")
        expect(yield* pipeline.index.count).toBe(19)
        const [report, ...others] = yield* pipeline.failures.records
        expect(others).toHaveLength(0)
        expect(report!.requestContext).toMatchObject({
          condition: "RetryAttemptsExhausted",
          approximateInvokeCount: 4
        })
        // Lambda retried from the refused record on (its partial response named only that one), so
        // the range it gave up on starts there.
        const [refused] = yield* pipeline.stream.readRange({
          shardId: report!.KinesisBatchInfo.shardId,
          startSequenceNumber: report!.KinesisBatchInfo.startSequenceNumber,
          endSequenceNumber: report!.KinesisBatchInfo.endSequenceNumber
        })
        expect(new TextDecoder().decode(refused!.data)).toContain('"id":"r-7"')
      })
  )
})
