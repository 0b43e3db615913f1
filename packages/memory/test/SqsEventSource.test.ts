import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { LambdaEvents } from "@spillway/core"
import { Cause, Effect, Exit, Result, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryQueue from "../src/MemoryQueue.js"
import * as SqsEventSource from "../src/SqsEventSource.js"

const sendBodies = (queue: MemoryQueue.Handle, bodies: ReadonlyArray<string>) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(bodies.length / 10) }, (_, i) => bodies.slice(i * 10, i * 10 + 10)),
    (chunk) => queue.send(chunk.map((body, i) => ({ id: `e${i}`, body }))),
    { discard: true }
  )

/** A handler that records every event and answers through `answer`. */
const recording = (
  answer: (event: LambdaEvents.SqsEvent, call: number) => Effect.Effect<unknown, string>
) => {
  const events: Array<LambdaEvents.SqsEvent> = []
  const handler = (event: LambdaEvents.SqsEvent) =>
    Effect.suspend(() => {
      events.push(event)
      return answer(event, events.length)
    })
  return { events, handler }
}

const bodiesOf = (event: LambdaEvents.SqsEvent | undefined) => event?.Records.map((r) => r.body) ?? []

describe("SqsEventSource outcomes", () => {
  it.effect("deletes the whole batch when the handler succeeds", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* sendBodies(queue, ["a", "b", "c"])
      const { events, handler } = recording(() => Effect.void)
      const source = yield* SqsEventSource.start(queue, handler)
      yield* TestClock.adjust("1 second")
      expect(events.map(bodiesOf)).toEqual([["a", "b", "c"]])
      expect(yield* queue.stats).toMatchObject({ total: 0, deleted: 3 })
      expect(yield* source.stats).toMatchObject({ invocations: 1, errors: 0, delivered: 3, deleted: 3 })
      expect(yield* source.idle).toBe(true)
    })
  )

  it.effect("builds events in Lambda's shape: string attributes and the real MD5 of the body", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ queueName: "my-queue", region: "us-east-2" })
      yield* TestClock.adjust("1545082649183 millis")
      yield* sendBodies(queue, ["test", "ünïcødé 😀"])
      const { events, handler } = recording(() => Effect.void)
      yield* SqsEventSource.start(queue, handler)
      yield* TestClock.adjust("2 millis")
      const event = events[0]!
      // It decodes with the schema the handlers use at their edge.
      expect(Schema.decodeUnknownSync(LambdaEvents.SqsEvent)(event)).toEqual(event)
      const [record, unicode] = event.Records
      expect(record).toMatchObject({
        body: "test",
        md5OfBody: "098f6bcd4621d373cade4e832627b4f6",
        attributes: {
          ApproximateReceiveCount: "1",
          SentTimestamp: "1545082649183",
          SenderId: "AIDAIENQZJOLO23YVJ4VO",
          ApproximateFirstReceiveTimestamp: "1545082649183"
        },
        messageAttributes: {},
        eventSource: "aws:sqs",
        eventSourceARN: "arn:aws:sqs:us-east-2:123456789012:my-queue",
        awsRegion: "us-east-2"
      })
      expect(unicode?.md5OfBody).toBe(createHash("md5").update("ünïcødé 😀", "utf8").digest("hex"))
      for (const value of Object.values(record!.attributes)) expect(typeof value).toBe("string")
      expect(record!.receiptHandle).not.toBe(unicode!.receiptHandle)
    })
  )

  it.effect(
    "deletes nothing on error: the batch returns after the visibility timeout, then goes to the DLQ",
    () =>
      Effect.gen(function* () {
        const dlq = yield* MemoryQueue.make({ queueName: "dlq" })
        const queue = yield* MemoryQueue.make({
          visibilityTimeoutSeconds: 30,
          redrivePolicy: { maxReceiveCount: 3, deadLetterQueue: dlq }
        })
        yield* sendBodies(queue, ["a", "b"])
        const { events, handler } = recording(() => Effect.fail("boom"))
        const source = yield* SqsEventSource.start(queue, handler)
        yield* TestClock.adjust("1 second")
        expect(events).toHaveLength(1)
        yield* TestClock.adjust("28 seconds")
        expect(events).toHaveLength(1)
        expect(yield* queue.stats).toMatchObject({ inFlight: 2, deleted: 0 })
        yield* TestClock.adjust("1 second")
        expect(events).toHaveLength(2)
        expect(events[1]?.Records.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(["2", "2"])
        expect(events[1]?.Records.map((r) => r.attributes.ApproximateFirstReceiveTimestamp)).toEqual([
          "0",
          "0"
        ])
        yield* TestClock.adjust("60 seconds")
        // Three receives, then SQS moves the messages rather than deliver a fourth time.
        expect(events.map((e) => e.Records[0]?.attributes.ApproximateReceiveCount)).toEqual(["1", "2", "3"])
        expect(yield* queue.stats).toMatchObject({ total: 0, deadLettered: 2 })
        expect(yield* dlq.bodies).toEqual(["a", "b"])
        expect(yield* source.stats).toMatchObject({ invocations: 3, errors: 3, deleted: 0 })
        expect(yield* source.idle).toBe(true)
      })
  )

  it.effect("treats a defect or a throw in the handler as a function error", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* sendBodies(queue, ["a"])
      const source = yield* SqsEventSource.start(queue, () => Effect.die(new Error("thrown")))
      const throwing = yield* SqsEventSource.start(
        queue,
        (): Effect.Effect<void> => {
          throw new Error("thrown outside the effect")
        },
        { maxConcurrency: 1 }
      )
      yield* TestClock.adjust("1 second")
      expect(yield* source.stats).toMatchObject({ invocations: 1, errors: 1, deleted: 0 })
      expect((yield* queue.stats).inFlight).toBe(1)
      yield* TestClock.adjust("30 seconds")
      expect((yield* throwing.stats).errors + (yield* source.stats).errors).toBe(2)
      expect((yield* queue.stats).deleted).toBe(0)
    })
  )

  it.effect("with ReportBatchItemFailures deletes all but the listed messages, which come back", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      yield* sendBodies(queue, ["a", "poison", "c"])
      const { events, handler } = recording((event, call) =>
        Effect.succeed({
          batchItemFailures:
            call === 1
              ? event.Records.filter((r) => r.body === "poison").map((r) => ({ itemIdentifier: r.messageId }))
              : []
        })
      )
      const source = yield* SqsEventSource.start(queue, handler, { reportBatchItemFailures: true })
      yield* TestClock.adjust("1 second")
      expect(yield* queue.bodies).toEqual(["poison"])
      expect(yield* source.stats).toMatchObject({ invocations: 1, partialFailures: 1, deleted: 2, errors: 0 })
      yield* TestClock.adjust("30 seconds")
      expect(bodiesOf(events[1])).toEqual(["poison"])
      expect(events[1]?.Records[0]?.attributes.ApproximateReceiveCount).toBe("2")
      expect((yield* queue.stats).total).toBe(0)
    })
  )

  it.effect("ignores a failure list when ReportBatchItemFailures is off", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* sendBodies(queue, ["a", "b"])
      const { handler } = recording((event) =>
        Effect.succeed({ batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] })
      )
      yield* SqsEventSource.start(queue, handler)
      yield* TestClock.adjust("1 second")
      expect((yield* queue.stats).total).toBe(0)
    })
  )

  it.effect("fails the whole batch when the failure list names something else than a message of it", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      yield* sendBodies(queue, ["a", "b"])
      const { events, handler } = recording((_, call) =>
        Effect.succeed(
          call === 1
            ? { batchItemFailures: [{ itemIdentifier: "not-a-message-of-this-batch" }] }
            : { batchItemFailures: [{ itemIdentifer: "misspelled key" }] }
        )
      )
      const source = yield* SqsEventSource.start(queue, handler, { reportBatchItemFailures: true })
      yield* TestClock.adjust("1 second")
      expect(yield* queue.stats).toMatchObject({ inFlight: 2, deleted: 0 })
      yield* TestClock.adjust("30 seconds")
      expect(events.map(bodiesOf)).toEqual([
        ["a", "b"],
        ["a", "b"]
      ])
      expect(yield* source.stats).toMatchObject({ invocations: 2, errors: 2, deleted: 0 })
    })
  )
})

describe("SqsEventSource.interpretResponse", () => {
  const ids = new Set(["m1", "m2"])
  it("reads no answer, an empty object and an empty or null list as success", () => {
    for (const response of [
      undefined,
      null,
      {},
      "ok",
      { batchItemFailures: [] },
      { batchItemFailures: null }
    ]) {
      expect(SqsEventSource.interpretResponse(response, ids)).toBe("all")
    }
  })
  it("keeps the listed messages", () => {
    expect(SqsEventSource.interpretResponse({ batchItemFailures: [{ itemIdentifier: "m2" }] }, ids)).toEqual(
      new Set(["m2"])
    )
  })
  it("fails the whole batch on an invalid list", () => {
    for (const batchItemFailures of [
      [{ itemIdentifier: "" }],
      [{ itemIdentifier: null }],
      [{ itemIdentifer: "m1" }],
      [{ itemIdentifier: "m1" }, { itemIdentifier: "unknown" }],
      [null],
      "m1"
    ]) {
      expect(SqsEventSource.interpretResponse({ batchItemFailures }, ids)).toBe("none")
    }
  })
})

describe("SqsEventSource batching and configuration", () => {
  it.effect("fills a batch beyond 10 within the window, and flushes early when it is full", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 60 })
      yield* sendBodies(
        queue,
        Array.from({ length: 30 }, (_, i) => `m${i}`)
      )
      const { events, handler } = recording(() => Effect.void)
      yield* SqsEventSource.start(queue, handler, {
        batchSize: 25,
        maximumBatchingWindowInSeconds: 5,
        maxConcurrency: 1
      })
      yield* TestClock.adjust("1 millis")
      expect(events.map((e) => e.Records.length)).toEqual([25])
      yield* TestClock.adjust("4 seconds")
      expect(events).toHaveLength(1)
      yield* sendBodies(queue, ["late"])
      yield* TestClock.adjust("1 second")
      // The second batch waited out its window and picked up the message sent meanwhile.
      expect(events.map((e) => e.Records.length)).toEqual([25, 6])
      expect(bodiesOf(events[1])).toContain("late")
    })
  )

  it.effect("shares a backlog among concurrent pollers", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* sendBodies(
        queue,
        Array.from({ length: 50 }, (_, i) => `m${i}`)
      )
      let concurrent = 0
      let peak = 0
      const source = yield* SqsEventSource.start(
        queue,
        () =>
          Effect.gen(function* () {
            concurrent += 1
            peak = Math.max(peak, concurrent)
            yield* Effect.sleep("100 millis")
            concurrent -= 1
          }),
        { maxConcurrency: 3 }
      )
      yield* TestClock.adjust("1 second")
      expect(peak).toBe(3)
      expect(yield* source.stats).toMatchObject({ invocations: 5, deleted: 50 })
    })
  )

  it.effect("long-polls: a message sent to an idle mapping is delivered at once", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      const { events, handler } = recording(() => Effect.void)
      const source = yield* SqsEventSource.start(queue, handler)
      yield* TestClock.adjust("1 hour")
      expect(events).toHaveLength(0)
      yield* sendBodies(queue, ["a"])
      yield* TestClock.adjust("1 millis")
      expect(events[0]?.Records[0]?.attributes).toMatchObject({
        SentTimestamp: "3600000",
        ApproximateFirstReceiveTimestamp: "3600000"
      })
      expect(yield* source.idle).toBe(true)
    })
  )

  it.effect("counts an invocation running past the function timeout as an error", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      yield* sendBodies(queue, ["slow"])
      const source = yield* SqsEventSource.start(queue, () => Effect.sleep("10 seconds"), {
        functionTimeoutSeconds: 5
      })
      yield* TestClock.adjust("6 seconds")
      expect(yield* source.stats).toMatchObject({ invocations: 1, errors: 1, deleted: 0 })
      expect((yield* queue.stats).inFlight).toBe(1)
    })
  )

  it.effect("keeps polling through a queue outage", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* sendBodies(queue, ["a"])
      yield* queue.startOutage({ until: 3_000 })
      const source = yield* SqsEventSource.start(queue, () => Effect.void, { maxConcurrency: 1 })
      yield* TestClock.adjust("2 seconds")
      expect(yield* source.stats).toMatchObject({ invocations: 0, queueErrors: 3 })
      yield* TestClock.adjust("1 second")
      expect(yield* source.stats).toMatchObject({ invocations: 1, deleted: 1 })
    })
  )

  it.effect("refuses configurations Lambda refuses, with a message naming the parameter", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      const cases: ReadonlyArray<readonly [SqsEventSource.Config, string]> = [
        [{ batchSize: 11 }, "MaximumBatchingWindowInSeconds ≥ 1"],
        [{ batchSize: 10_001, maximumBatchingWindowInSeconds: 1 }, "BatchSize"],
        [{ batchSize: 0 }, "BatchSize"],
        [{ maximumBatchingWindowInSeconds: 301 }, "MaximumBatchingWindowInSeconds"],
        [{ maxConcurrency: 0 }, "maxConcurrency"],
        [{ functionTimeoutSeconds: 31 }, "visibility timeout"]
      ]
      for (const [config, text] of cases) {
        const exit = yield* Effect.exit(SqsEventSource.start(queue, () => Effect.void, config))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const defect = Result.getOrThrow(Cause.findDefect(exit.cause))
          expect(String(defect)).toContain(text)
        }
      }
      // The same batch size with a window is fine.
      yield* SqsEventSource.start(queue, () => Effect.void, {
        batchSize: 11,
        maximumBatchingWindowInSeconds: 1
      })
    })
  )
})

describe("SqsEventSource payload limit", () => {
  it.effect(
    "cuts a batch before its event would pass Lambda's 6 MB, counting each body as JSON escapes it",
    () =>
      Effect.gen(function* () {
        const queue = yield* MemoryQueue.make()
        // 480,000 quotes: a 480 KB body, 960 KB in the event once escaped. Six fit in 6 MiB, seven do not.
        const bodies = Array.from({ length: 10 }, (_, i) => `${i}${'"'.repeat(480_000)}`)
        for (const body of bodies) yield* queue.send([{ id: "m", body }])
        const { events, handler } = recording(() => Effect.void)
        yield* SqsEventSource.start(queue, handler, { maxConcurrency: 1 })
        yield* TestClock.adjust("1 second")
        expect(events.map((event) => event.Records.length)).toEqual([6, 4])
        for (const event of events) {
          expect(Buffer.byteLength(JSON.stringify(event.Records.map((r) => r))) - 2).toBeLessThanOrEqual(
            6 * 1024 * 1024
          )
        }
        // The four handed back were received twice.
        expect(events[1]!.Records.map((r) => r.attributes.ApproximateReceiveCount)).toEqual([
          "2",
          "2",
          "2",
          "2"
        ])
        expect(events.flatMap((event) => event.Records.map((r) => r.body[0]))).toEqual(
          bodies.map((body) => body[0])
        )
      })
  )
})
