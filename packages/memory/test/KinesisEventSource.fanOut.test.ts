/**
 * The event source mapping on an enhanced fan-out consumer: the stream pushes each record
 * `fanOutPropagationMillis` after it was written and the mapping invokes as soon as the shard's
 * previous batch is done, with no poll interval; everything else (order, one batch in flight per
 * shard, outages) behaves as on the standard iterator.
 */
import { describe, expect, it } from "@effect/vitest"
import { type LambdaEvents, RecordStream } from "@spillway/core"
import { Clock, Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import * as KinesisEventSource from "../src/KinesisEventSource.js"
import * as MemoryStream from "../src/MemoryStream.js"

const text = (value: string) => new TextEncoder().encode(value)
const payloadOf = (record: LambdaEvents.KinesisEventRecord) =>
  Buffer.from(record.kinesis.data, "base64").toString("utf8")

const put = (stream: MemoryStream.Service, payloads: ReadonlyArray<string>, partitionKey = "device-1") =>
  stream.putRecords(payloads.map((payload) => ({ partitionKey, data: text(payload) })))

/** A handler that notes when each invocation started and what it carried, taking `millis` to run. */
const timedHandler = (millis = 0) => {
  const invocations: Array<{ readonly at: number; readonly payloads: ReadonlyArray<string> }> = []
  const handler: KinesisEventSource.Handler<never> = (event) =>
    Effect.gen(function* () {
      invocations.push({ at: yield* Clock.currentTimeMillis, payloads: event.Records.map(payloadOf) })
      if (millis > 0) yield* Effect.sleep(millis)
    })
  return { handler, invocations }
}

describe("KinesisEventSource on an enhanced fan-out consumer", () => {
  it.effect(
    "is pushed each record 70 ms after it was written, where the standard iterator waits for its poll",
    () =>
      Effect.gen(function* () {
        const pushedTo = yield* MemoryStream.make({ shardCount: 1 })
        const polledFrom = yield* MemoryStream.make({ shardCount: 1 })
        expect(pushedTo.fanOut.propagationMillis).toBe(MemoryStream.defaultFanOutPropagationMillis)
        const pushed = timedHandler()
        const polled = timedHandler()
        yield* KinesisEventSource.start(pushedTo, pushed.handler, {
          startingPosition: "TRIM_HORIZON",
          consumer: "enhancedFanOut"
        })
        yield* KinesisEventSource.start(polledFrom, polled.handler, { startingPosition: "TRIM_HORIZON" })
        // Both mappings looked at an empty shard at 0; the records arrive at 250 and 1,400 ms.
        yield* TestClock.adjust("250 millis")
        yield* put(pushedTo, ["a"])
        yield* put(polledFrom, ["a"])
        yield* TestClock.adjust("69 millis")
        expect(pushed.invocations).toEqual([])
        yield* TestClock.adjust("1 millis")
        expect(pushed.invocations).toEqual([{ at: 320, payloads: ["a"] }])
        yield* TestClock.adjust("1080 millis")
        yield* put(pushedTo, ["b"])
        yield* put(polledFrom, ["b"])
        yield* TestClock.adjust("3 seconds")
        expect(pushed.invocations).toEqual([
          { at: 320, payloads: ["a"] },
          { at: 1470, payloads: ["b"] }
        ])
        // The standard iterator polls once a second: "a" waits for the poll at 1,000, "b" for 2,000.
        expect(polled.invocations).toEqual([
          { at: 1000, payloads: ["a"] },
          { at: 2000, payloads: ["b"] }
        ])
      })
  )

  it.effect("sends what was pushed during an invocation as soon as it ends, still one batch at a time", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const { handler, invocations } = timedHandler(300)
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        consumer: "enhancedFanOut"
      })
      yield* put(stream, ["a"])
      yield* TestClock.adjust("100 millis")
      yield* put(stream, ["b"])
      yield* TestClock.adjust("100 millis")
      yield* put(stream, ["c"])
      yield* TestClock.adjust("2 seconds")
      yield* put(stream, ["d"])
      yield* TestClock.adjust("2 seconds")
      // a: pushed at 70, runs until 370; b and c were pushed meanwhile and go together at 370.
      expect(invocations).toEqual([
        { at: 70, payloads: ["a"] },
        { at: 370, payloads: ["b", "c"] },
        { at: 2270, payloads: ["d"] }
      ])
      expect(yield* source.isIdle).toBe(true)
    })
  )

  it.effect("takes the stream's propagation delay", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1, fanOutPropagationMillis: 0 })
      const { handler, invocations } = timedHandler()
      yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        consumer: "enhancedFanOut"
      })
      yield* TestClock.adjust("10 millis")
      yield* put(stream, ["now"])
      yield* TestClock.adjust("1 millis")
      expect(invocations).toEqual([{ at: 10, payloads: ["now"] }])
    })
  )

  it.effect("delivers every record once, in order per shard, through a stream outage", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 3 })
      const delivered: Array<LambdaEvents.KinesisEventRecord> = []
      const source = yield* KinesisEventSource.start(
        stream,
        (event) =>
          Effect.gen(function* () {
            delivered.push(...event.Records)
            yield* Effect.sleep("120 millis")
          }),
        { startingPosition: "TRIM_HORIZON", consumer: "enhancedFanOut", batchSize: 50 }
      )
      for (let tick = 0; tick < 40; tick++) {
        if (tick === 10) yield* stream.startOutage({ for: "3 seconds" })
        const outcomes = yield* Effect.exit(
          stream.putRecords(
            Array.from({ length: 25 }, (_, i) => ({
              partitionKey: `device-${(tick * 25 + i) % 41}`,
              data: text(`${tick}:${i}`)
            }))
          )
        )
        // Puts fail as a whole while the stream is out; the test's producer drops them.
        if (Exit.isSuccess(outcomes)) expect(outcomes.value.every((o) => o._tag === "Stored")).toBe(true)
        yield* TestClock.adjust("250 millis")
      }
      for (let step = 0; step < 20 && !(yield* source.isIdle); step++) yield* TestClock.adjust("1 second")
      expect(yield* source.isIdle).toBe(true)

      const all = yield* stream.records
      expect(all.length).toBe(40 * 25 - 12 * 25)
      expect(delivered.map((r) => r.kinesis.sequenceNumber).sort()).toEqual(
        all.map((r) => r.sequenceNumber).sort()
      )
      for (const shardId of stream.shardIds) {
        const inShard = delivered.filter((r) => r.eventID.startsWith(`${shardId}:`))
        const sequences = inShard.map((r) => r.kinesis.sequenceNumber)
        expect([...sequences].sort(RecordStream.compareSequenceNumbers)).toEqual(sequences)
      }
      expect(yield* source.checkpoints).toEqual(yield* stream.shardTips)
    })
  )

  it.effect("refuses a stream that can only be polled", () =>
    Effect.gen(function* () {
      const { fanOut: _, ...pollOnly } = yield* MemoryStream.make({ shardCount: 1 })
      const error = yield* KinesisEventSource.start(pollOnly, timedHandler().handler, {
        startingPosition: "TRIM_HORIZON",
        consumer: "enhancedFanOut"
      }).pipe(Effect.scoped, Effect.flip)
      expect(error).toBeInstanceOf(KinesisEventSource.InvalidConfig)
      expect(error.option).toBe("consumer")
    })
  )
})
