/**
 * The redriver on its own: what the stream refuses one by one is put again a second later (twice,
 * oldest first), then parked again with a growing delay (never hot-looping on a throttled shard);
 * a whole-call refusal leaves the message on the queue, held back a short time that grows with how
 * long it has been parked when its receipt handle is known, so it comes back within seconds of the
 * stream's recovery; a body that is not a fallback message is reported, not dropped.
 */
import { describe, expect, it } from "@effect/vitest"
import { FallbackMessages, FallbackQueue, RecordStream, Redrive, Telemetry } from "@spillway/core"
import { Effect, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryQueue from "../../src/MemoryQueue.js"
import * as MemoryStream from "../../src/MemoryStream.js"
import * as SqsEventSource from "../../src/SqsEventSource.js"
import { record } from "./harness.js"

const parked = (ids: ReadonlyArray<string>, attempt = 0, receivedAt: (index: number) => number = () => 0) => {
  const data = ids.map((id, index) => ({
    index,
    data: Telemetry.encodeEnvelope(
      new Telemetry.TelemetryEnvelope({
        tenant: "t",
        receivedAt: receivedAt(index),
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
  it.effect(
    "puts throttled entries again a second later, twice, then parks what is still refused with attempt + 1 and a growing delay, and acks the source",
    () =>
      Effect.gen(function* () {
        const { stream, queue, run } = yield* setup
        const puts = new Map<string, number>()
        yield* stream.injectEntryFailures((entry) => {
          const n = (puts.get(entry.partitionKey) ?? 0) + 1
          puts.set(entry.partitionKey, n)
          // "a1" is refused every time, "b1" on its first two puts only.
          if (entry.partitionKey === "a1") return "ProvisionedThroughputExceededException"
          return entry.partitionKey === "b1" && n <= 2 ? "ProvisionedThroughputExceededException" : undefined
        })
        const fiber = yield* Effect.forkChild(run([parked(["a0", "a1", "b0", "b1"], 2)]))
        yield* TestClock.adjust("999 millis")
        expect(Object.fromEntries(puts)).toEqual({ a0: 1, a1: 1, b0: 1, b1: 1 })
        yield* TestClock.adjust("1 millis")
        expect(Object.fromEntries(puts)).toEqual({ a0: 1, a1: 2, b0: 1, b1: 2 })
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(fiber)
        expect(Object.fromEntries(puts)).toEqual({ a0: 1, a1: 3, b0: 1, b1: 3 })
        expect(result).toMatchObject({ stored: 3, reparked: 1, failed: [] })

        // attempt 3 → held back 4 seconds
        yield* TestClock.adjust("3999 millis")
        expect(yield* queue.receive({ maxMessages: 10 })).toEqual([])
        yield* TestClock.adjust("1 millis")
        const [again] = yield* queue.receive({ maxMessages: 10 })
        const decoded = Result.getOrThrow(FallbackMessages.decodeFallbackMessage(again!.body))
        expect(decoded.attempt).toBe(3)
        expect(decoded.records.map((e) => e.record.id)).toEqual(["a1"])
      })
  )

  it.effect(
    "parks again what was throttled when the stream then refuses the retry as a whole: nothing is put twice",
    () =>
      Effect.gen(function* () {
        const { stream, queue, run } = yield* setup
        yield* stream.injectEntryFailures((entry) =>
          entry.partitionKey === "b" ? "ProvisionedThroughputExceededException" : undefined
        )
        const fiber = yield* Effect.forkChild(run([parked(["a", "b"])]))
        yield* TestClock.adjust("1 millis")
        // "a" is stored, "b" throttled; then the stream goes down before the retry.
        yield* stream.startOutage()
        yield* TestClock.adjust("2 seconds")
        expect(yield* Fiber.join(fiber)).toMatchObject({ stored: 1, reparked: 1, failed: [] })
        yield* stream.clearFaults
        expect((yield* stream.records).map((r) => r.partitionKey)).toEqual(["a"])
        yield* TestClock.adjust("1 second")
        const [again] = yield* queue.receive({ maxMessages: 10 })
        expect(
          Result.getOrThrow(FallbackMessages.decodeFallbackMessage(again!.body)).records.map(
            (e) => e.record.id
          )
        ).toEqual(["b"])
      })
  )

  it.effect("parks a throttled backlog spread over the attempt's delay, the oldest records the soonest", () =>
    Effect.gen(function* () {
      const { stream, queue, run } = yield* setup
      yield* stream.injectEntryFailures(() => "ProvisionedThroughputExceededException")
      // Eight records, received newest first: "r0" at 7 ms … "r7" at 0 ms.
      const ids = Array.from({ length: 8 }, (_, i) => `r${i}`)
      const fiber = yield* Effect.forkChild(run([parked(ids, 2, (index) => 7 - index)]))
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(fiber)).toMatchObject({ stored: 0, reparked: 8, failed: [] })
      // attempt 3: a 4 s delay, in four groups of two, a second apart, the oldest first.
      const groups: Array<ReadonlyArray<string>> = []
      for (let second = 1; second <= 4; second++) {
        yield* TestClock.adjust("1 second")
        const received = yield* queue.receive({ maxMessages: 10 })
        expect(received, `second ${second}`).toHaveLength(1)
        groups.push(
          Result.getOrThrow(FallbackMessages.decodeFallbackMessage(received[0]!.body)).records.map(
            (e) => e.record.id
          )
        )
      }
      expect(groups).toEqual([
        ["r7", "r6"],
        ["r5", "r4"],
        ["r3", "r2"],
        ["r1", "r0"]
      ])
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

describe("redrive during a stream outage: a growing visibility", () => {
  /** A message received from the queue as Lambda would hand it over: with its handle and receive count. */
  const receiveOne = (queue: MemoryQueue.Handle) =>
    Effect.gen(function* () {
      const [message] = yield* queue.receive({ maxMessages: 1 })
      return message
    })

  it.effect(
    "holds a refused message back a fiftieth of how long its oldest record has been parked, not the queue's 30 s, and lets it through once the stream is back",
    () =>
      Effect.gen(function* () {
        const { stream, queue, run } = yield* setup
        expect(queue.visibilityTimeoutSeconds).toBe(30)
        // Its records were received at 0 and 40 s; the oldest decides.
        yield* queue.send([{ id: "m", body: parked(["a", "b"], 0, (index) => index * 40_000).body }])
        yield* stream.startOutage()
        const heldBack: Array<number> = []
        for (const at of [10, 49, 120, 1000, 2000]) {
          yield* TestClock.setTime(at * 1000)
          const message = yield* receiveOne(queue)
          const result = yield* run([message!])
          expect(result.failed.map((f) => f.messageId)).toEqual([message!.messageId])
          // How long it stays invisible: received again exactly when its new timeout ends.
          let waited = 0
          while ((yield* queue.stats).visible === 0) {
            yield* TestClock.adjust("100 millis")
            waited += 100
          }
          heldBack.push(waited / 1000)
        }
        expect(heldBack).toEqual([1, 1, 3, 20, 30])
        yield* stream.clearFaults
        const message = yield* receiveOne(queue)
        const result = yield* run([message!])
        expect(result).toMatchObject({ stored: 2, failed: [] })
        expect((yield* stream.records).map((r) => r.partitionKey).sort()).toEqual(["a", "b"])
      })
  )

  it.effect("leaves a malformed message to the queue's visibility timeout: retrying sooner cannot help", () =>
    Effect.gen(function* () {
      const { queue, run } = yield* setup
      yield* queue.send([{ id: "junk", body: '{"hello":"world"}' }])
      const message = yield* receiveOne(queue)
      const result = yield* run([message!])
      expect(result.failed).toHaveLength(1)
      yield* TestClock.adjust("29999 millis")
      expect((yield* queue.stats).visible).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect((yield* queue.stats).visible).toBe(1)
    })
  )

  it.effect("takes the receipt handle from the SQS event", () =>
    Effect.gen(function* () {
      const { stream, queue } = yield* setup
      yield* queue.send([{ id: "m", body: parked(["a"]).body }])
      yield* stream.startOutage()
      const redriveEvent = (message: MemoryQueue.ReceivedMessage) =>
        Redrive.redriveSqsEvent({
          Records: [SqsEventSource.toEventRecord(message, { queueArn: queue.queueArn, region: queue.region })]
        }).pipe(
          Effect.provideService(RecordStream.RecordStream, stream),
          Effect.provideService(FallbackQueue.FallbackQueue, queue)
        )
      yield* TestClock.adjust("1 second")
      const first = yield* receiveOne(queue)
      expect((yield* redriveEvent(first!)).batchItemFailures).toEqual([{ itemIdentifier: first!.messageId }])
      yield* TestClock.adjust("1 minute")
      const second = yield* receiveOne(queue)
      expect(second?.receiveCount).toBe(2)
      yield* redriveEvent(second!)
      // Parked 61 s ago: held back 2 s, with the handle of the second receive.
      yield* TestClock.adjust("1999 millis")
      expect((yield* queue.stats).visible).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect((yield* queue.stats).visible).toBe(1)
    })
  )
})
