/**
 * The redriver function over a memory pipeline's stream and fallback queue, called with SQS events
 * shaped as Lambda builds them (system attributes as strings, message attributes in camelCase),
 * their bodies fallback messages as the collector parks them.
 */
import { describe, expect, it } from "@effect/vitest"
import { FallbackMessages, FallbackQueue, RecordStream, Telemetry } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { EventFixtures, Harness } from "@spillway/testing"
import { Effect, Layer, Result } from "effect"
import * as Redriver from "../src/functions/Redriver.js"
import {
  capture,
  context,
  invocationError,
  invoke,
  onTestClock,
  powertools,
  scriptedContext
} from "./fixtures/Events.js"

/** A fallback message body holding records `ids`, as the collector parks them. */
const parked = (ids: ReadonlyArray<string>): string => {
  const packed = FallbackMessages.encodeFallbackMessages(
    ids.map((id, index) => {
      const record = Telemetry.decodeRecord(Harness.record(id))
      if (Result.isFailure(record)) throw new Error(record.failure.reason)
      const envelope = new Telemetry.TelemetryEnvelope({
        tenant: "acme",
        receivedAt: 1_795_514_400_000,
        record: record.success
      })
      return { index, data: Telemetry.encodeEnvelope(envelope) }
    }),
    FallbackQueue.defaultLimits
  )
  return packed.batches[0]![0]!.message.body
}

const attributes = {
  source: { stringValue: "collector", stringListValues: [], binaryListValues: [], dataType: "String" }
}

const setup = (layerOf?: (pipeline: MemoryPipeline.Pipeline) => Layer.Layer<Redriver.Services>) =>
  Effect.gen(function* () {
    const pipeline = yield* MemoryPipeline.make({
      backup: false,
      processor: { pollIntervalMillis: 3_600_000 }
    })
    const out = capture()
    const layer = layerOf === undefined ? pipeline.layers.redriver : layerOf(pipeline)
    const handler = Redriver.make(yield* onTestClock(layer), { output: out.output, shutdown: false, env: {} })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
    return { pipeline, handler, out }
  })

const ids = (n: number, prefix = "m") => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

describe("redriver function", () => {
  it.effect("puts the records of every message back into the stream and reports none", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      const event = EventFixtures.sqsEvent([
        { body: parked(["a-1", "a-2"]), messageAttributes: attributes },
        { body: parked(["b-1"]), receiveCount: 3, messageAttributes: attributes }
      ])
      powertools.sqs(event)
      expect(yield* invoke(handler, event, yield* context())).toEqual({ batchItemFailures: [] })
      expect(yield* pipeline.stream.recordCount).toBe(3)
    })
  )

  it.effect("a body that is not a fallback message is reported alone, by its message id", () =>
    Effect.gen(function* () {
      const { pipeline, handler, out } = yield* setup()
      const event = EventFixtures.sqsEvent([
        { body: parked(["a-1"]) },
        { body: '{"hello":"world"}', messageId: "not-a-fallback-message" },
        { body: parked(["c-1"]) }
      ])
      powertools.sqs(event)
      expect(yield* invoke(handler, event, yield* context())).toEqual({
        batchItemFailures: [{ itemIdentifier: "not-a-fallback-message" }]
      })
      expect(yield* pipeline.stream.recordCount).toBe(2)
      expect(out.logs()).toContainEqual(
        expect.objectContaining({ level: "WARN", messageId: "not-a-fallback-message" })
      )
    })
  )

  it.effect("a stream that refuses every call: every message is kept on the queue", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      yield* pipeline.stream.startOutage()
      const event = EventFixtures.sqsEvent([{ body: parked(["a-1"]) }, { body: parked(["b-1"]) }])
      const response = yield* invoke(handler, event, yield* context())
      expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
        event.Records.map((r) => r.messageId).sort()
      )
    })
  )

  it.effect("with 50 ms left it starts nothing and reports every message", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      const event = EventFixtures.sqsEvent(ids(12).map((id) => ({ body: parked([id]) })))
      const response = yield* invoke(handler, event, yield* scriptedContext(() => 50))
      expect(response).toEqual({
        batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId }))
      })
      expect(yield* pipeline.stream.recordCount).toBe(0)
    })
  )

  it.effect("at the deadline it stops between slices of messages and reports the rest", () =>
    Effect.gen(function* () {
      let remaining = 10_000
      const { pipeline, handler } = yield* setup((p) =>
        Layer.mergeAll(
          Layer.succeed(FallbackQueue.FallbackQueue, p.queue),
          Layer.succeed(RecordStream.RecordStream, {
            ...p.stream,
            // Every PutRecords call costs 4.5 s of the invocation's 10 s (margin 1 s).
            putRecords: (entries) =>
              Effect.andThen(
                Effect.sync(() => (remaining -= 4500)),
                p.stream.putRecords(entries)
              )
          })
        )
      )
      const event = EventFixtures.sqsEvent(ids(25).map((id) => ({ body: parked([id]) })))
      const response = yield* invoke(handler, event, yield* scriptedContext(() => remaining))
      expect(response).toEqual({
        batchItemFailures: event.Records.slice(20).map((r) => ({ itemIdentifier: r.messageId }))
      })
      expect(yield* pipeline.stream.recordCount).toBe(20)
    })
  )

  it.effect("an event that is not an SQS event fails the invocation, saying why", () =>
    Effect.gen(function* () {
      const { handler } = yield* setup()
      const error = yield* invocationError(
        handler,
        EventFixtures.kinesisEventOfRecords(Harness.records(1)),
        yield* context()
      )
      expect(error.name).toBe("InvalidEvent")
      expect(error.message).toContain("redriver takes an SQS event")
      expect(error.message).toContain("Records.0.messageId: is missing")
    })
  )
})
