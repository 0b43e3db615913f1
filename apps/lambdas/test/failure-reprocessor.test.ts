/**
 * The failure reprocessor function over a memory pipeline's stream, cache and index, called with
 * SQS events whose bodies are on-failure records: the ones the pipeline's event source mapping
 * emulation writes when it gives up on a batch, and hand-written ones in the documented shape.
 */
import { describe, expect, it } from "@effect/vitest"
import { OnFailure, type RecordStream, Telemetry } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { EventFixtures, Harness } from "@spillway/testing"
import { Effect, Result, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as FailureReprocessor from "../src/functions/FailureReprocessor.js"
import {
  capture,
  context,
  invocationError,
  invoke,
  onTestClock,
  powertools,
  scriptedContext
} from "./fixtures/Events.js"

const setup = (options: MemoryPipeline.Options = {}) =>
  Effect.gen(function* () {
    const pipeline = yield* MemoryPipeline.make({ backup: false, ...options })
    const out = capture()
    const handler = FailureReprocessor.make(yield* onTestClock(pipeline.layers.failureReprocessor), {
      output: out.output,
      shutdown: false,
      env: {}
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
    return { pipeline, handler, out }
  })

/** Puts records `ids` into the stream as the collector does; their stream records, in order. */
const putRecords = (
  stream: RecordStream.Service,
  records: ReadonlyArray<ReturnType<typeof Harness.record>>
) =>
  Effect.gen(function* () {
    const entries = records.map((input) => {
      const record = Telemetry.decodeRecord(input)
      if (Result.isFailure(record)) throw new Error(record.failure.reason)
      const envelope = new Telemetry.TelemetryEnvelope({
        tenant: "acme",
        receivedAt: 0,
        record: record.success
      })
      return { partitionKey: record.success.id, data: Telemetry.encodeEnvelope(envelope) }
    })
    const outcomes = yield* stream.putRecords(entries)
    return outcomes.map((outcome) => {
      if (outcome._tag !== "Stored") throw new Error("test setup: put failed")
      return outcome
    })
  })

/** An on-failure record for a range of one shard, in the shape AWS documents (§2.6), as its JSON. */
const onFailureBody = (range: {
  shardId: string
  start: string
  end: string
  batchSize: number
  streamArn: string
}) =>
  JSON.stringify({
    requestContext: {
      requestId: "c9b8fa9f-5a7f-4e7d-8f3a-0f7a5d1c2e11",
      functionArn: "arn:aws:lambda:us-east-1:123456789012:function:spillway-processor",
      condition: "RetryAttemptsExhausted",
      approximateInvokeCount: 4
    },
    responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
    version: "1.0",
    timestamp: "1970-01-01T00:00:10.000Z",
    KinesisBatchInfo: {
      shardId: range.shardId,
      startSequenceNumber: range.start,
      endSequenceNumber: range.end,
      approximateArrivalOfFirstRecord: "1970-01-01T00:00:00.000Z",
      approximateArrivalOfLastRecord: "1970-01-01T00:00:00.000Z",
      batchSize: range.batchSize,
      streamArn: range.streamArn
    }
  })

describe("failure reprocessor function", () => {
  it.effect("replays the batches the mapping gave up on during an index outage, once the index is back", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      yield* pipeline.index.startOutage()
      yield* pipeline.collect(Harness.apiKey, Harness.records(40))
      yield* Harness.settle(pipeline, { max: "30 minutes" })
      const messages = yield* pipeline.failures.messages
      expect(messages.length).toBeGreaterThan(0)
      expect(yield* pipeline.index.count).toBe(0)
      yield* pipeline.index.endOutage

      // What the SQS destination carries: the records' JSON, as message bodies.
      const event = EventFixtures.sqsEvent(messages.map((body) => ({ body })))
      powertools.sqs(event)
      for (const record of event.Records) Schema.decodeUnknownSync(OnFailure.OnFailureRecordJson)(record.body)
      expect(yield* invoke(handler, event, yield* context())).toEqual({ batchItemFailures: [] })
      expect(yield* pipeline.index.count).toBe(40)
    })
  )

  it.effect(
    "a range past the stream's retention is logged as lost, with its range, and kept on the queue",
    () =>
      Effect.gen(function* () {
        const { pipeline, handler, out } = yield* setup({
          stream: { shardCount: 1 },
          processor: { pollIntervalMillis: 3_600_000 }
        })
        const stored = yield* putRecords(pipeline.stream, Harness.records(3))
        const range = {
          shardId: stored[0]!.shardId,
          start: stored[0]!.sequenceNumber,
          end: stored[2]!.sequenceNumber,
          batchSize: 3,
          streamArn: pipeline.stream.streamArn
        }
        yield* TestClock.adjust("25 hours")
        const event = EventFixtures.sqsEvent([{ body: onFailureBody(range), messageId: "lost-range" }])
        powertools.sqs(event)
        expect(yield* invoke(handler, event, yield* context())).toEqual({
          batchItemFailures: [{ itemIdentifier: "lost-range" }]
        })
        expect(out.logs()).toContainEqual(
          expect.objectContaining({
            level: "ERROR",
            lostToRetention: true,
            messageId: "lost-range",
            onFailureRequestId: "c9b8fa9f-5a7f-4e7d-8f3a-0f7a5d1c2e11",
            shardId: range.shardId,
            startSequenceNumber: range.start,
            endSequenceNumber: range.end,
            batchSize: 3
          })
        )
        const [emf] = out.emf()
        expect(emf).toMatchObject({
          spillway_ranges_lost_to_retention: 1,
          spillway_records_lost_to_retention: 3
        })
      })
  )

  it.effect("a range whose record the index refuses again is kept on the queue; the others are written", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup({
        stream: { shardCount: 1 },
        processor: { pollIntervalMillis: 3_600_000 }
      })
      const stored = yield* putRecords(pipeline.stream, [
        Harness.record("p-0", { value: 1 }),
        Harness.record("p-1", { value: "text" }),
        Harness.record("p-2", { value: 2 })
      ])
      const body = onFailureBody({
        shardId: stored[0]!.shardId,
        start: stored[0]!.sequenceNumber,
        end: stored[2]!.sequenceNumber,
        batchSize: 3,
        streamArn: pipeline.stream.streamArn
      })
      const event = EventFixtures.sqsEvent([{ body, messageId: "poisoned-range" }])
      expect(yield* invoke(handler, event, yield* context())).toEqual({
        batchItemFailures: [{ itemIdentifier: "poisoned-range" }]
      })
      expect(yield* pipeline.index.count).toBe(2)
    })
  )

  it.effect("a body that is not an on-failure record is kept on the queue, with the reason logged", () =>
    Effect.gen(function* () {
      const { handler, out } = yield* setup({ processor: { pollIntervalMillis: 3_600_000 } })
      const event = EventFixtures.sqsEvent([{ body: '{"KinesisBatchInfo":{}}', messageId: "junk" }])
      expect(yield* invoke(handler, event, yield* context())).toEqual({
        batchItemFailures: [{ itemIdentifier: "junk" }]
      })
      const error = out.logs().find((log) => log.level === "ERROR" && log.messageId === "junk")
      expect(error?.message).toContain("KinesisBatchInfo.shardId: is missing")
    })
  )

  it.effect("with 50 ms left it replays nothing and reports every message", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup({
        stream: { shardCount: 1 },
        processor: { pollIntervalMillis: 3_600_000 }
      })
      const stored = yield* putRecords(pipeline.stream, Harness.records(2))
      const body = onFailureBody({
        shardId: stored[0]!.shardId,
        start: stored[0]!.sequenceNumber,
        end: stored[1]!.sequenceNumber,
        batchSize: 2,
        streamArn: pipeline.stream.streamArn
      })
      const event = EventFixtures.sqsEvent([
        { body, messageId: "a" },
        { body, messageId: "b" }
      ])
      expect(yield* invoke(handler, event, yield* scriptedContext(() => 50))).toEqual({
        batchItemFailures: [{ itemIdentifier: "a" }, { itemIdentifier: "b" }]
      })
      expect(yield* pipeline.index.count).toBe(0)
    })
  )

  it.effect("an event that is not an SQS event fails the invocation", () =>
    Effect.gen(function* () {
      const { handler } = yield* setup({ processor: { pollIntervalMillis: 3_600_000 } })
      const error = yield* invocationError(handler, { Records: [{ body: "x" }] }, yield* context())
      expect(error.name).toBe("InvalidEvent")
      expect(error.message).toContain("failure-reprocessor takes an SQS event")
    })
  )
})
