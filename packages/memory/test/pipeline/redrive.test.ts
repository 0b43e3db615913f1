/**
 * The redriver on its own: what the stream refuses one by one is parked again with a growing
 * delay (never hot-looping on a throttled shard); a whole-call refusal leaves the message to its
 * visibility timeout; a body that is not a fallback message is reported, not dropped.
 */
import { describe, expect, it } from "@effect/vitest"
import { FallbackMessages, FallbackQueue, RecordStream, Redrive, Telemetry } from "@spillway/core"
import { Effect, Result } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryQueue from "../../src/MemoryQueue.js"
import * as MemoryStream from "../../src/MemoryStream.js"
import { record } from "./harness.js"

const parked = (ids: ReadonlyArray<string>, attempt = 0) => {
  const data = ids.map((id, index) => ({
    index,
    data: Telemetry.encodeEnvelope(
      new Telemetry.TelemetryEnvelope({
        tenant: "t",
        receivedAt: 0,
        record: Result.getOrThrow(Telemetry.decodeRecord(record(id)))
      })
    )
  }))
  const [batch] = FallbackMessages.encodeFallbackMessages(data, FallbackQueue.defaultLimits, {
    attempt
  }).batches
  return { messageId: "source", body: batch![0]!.message.body }
}

const setup = Effect.gen(function* () {
  const stream = yield* MemoryStream.make({ shardCount: 1 })
  const queue = yield* MemoryQueue.make()
  const run = (messages: ReadonlyArray<Redrive.ParkedMessage>) =>
    Redrive.redrive(messages).pipe(
      Effect.provideService(RecordStream.RecordStream, stream),
      Effect.provideService(FallbackQueue.FallbackQueue, queue)
    )
  return { stream, queue, run }
})

describe("redrive", () => {
  it.effect("parks refused entries again with attempt + 1 and a growing delay, and acks the source", () =>
    Effect.gen(function* () {
      const { stream, queue, run } = yield* setup
      yield* stream.injectEntryFailures((entry) =>
        entry.partitionKey.endsWith("1") ? "ProvisionedThroughputExceededException" : undefined
      )
      const result = yield* run([parked(["a0", "a1", "b0", "b1"], 2)])
      expect(result).toMatchObject({ stored: 2, reparked: 2, failed: [] })

      // attempt 3 → held back 4 seconds
      yield* TestClock.adjust("3999 millis")
      expect(yield* queue.receive({ maxMessages: 10 })).toEqual([])
      yield* TestClock.adjust("1 millis")
      const [again] = yield* queue.receive({ maxMessages: 10 })
      const decoded = Result.getOrThrow(FallbackMessages.decodeFallbackMessage(again!.body))
      expect(decoded.attempt).toBe(3)
      expect(decoded.records.map((e) => e.record.id)).toEqual(["a1", "b1"])
    })
  )

  it.effect("leaves the message to its visibility timeout when the stream refuses the whole call", () =>
    Effect.gen(function* () {
      const { stream, queue, run } = yield* setup
      yield* stream.startOutage()
      const result = yield* run([parked(["a", "b"])])
      expect(result.stored).toBe(0)
      expect(result.failed).toEqual([
        { messageId: "source", reason: expect.stringContaining("stream refused the call") }
      ])
      expect((yield* queue.stats).total).toBe(0)
    })
  )

  it.effect("reports a body that is not a fallback message, with the reason", () =>
    Effect.gen(function* () {
      const { run } = yield* setup
      const result = yield* run([{ messageId: "junk", body: '{"hello":"world"}' }])
      expect(result.failed).toEqual([{ messageId: "junk", reason: expect.stringContaining("malformed") }])
    })
  )
})
