import { describe, expect, it } from "@effect/vitest"
import { FallbackQueue } from "@spillway/core"
import { Duration, Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryQueue from "../src/MemoryQueue.js"

const entries = (n: number, body = (i: number) => `message-${i}`) =>
  Array.from({ length: n }, (_, i) => ({ id: `m${i}`, body: body(i) }))

const sentIds = (outcomes: ReadonlyArray<FallbackQueue.SendOutcome>) =>
  outcomes.flatMap((outcome) => (outcome._tag === "Sent" ? [outcome.messageId] : []))

describe("MemoryQueue.send", () => {
  it.effect("rejects malformed batches as a whole, naming the SQS error", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({
        limits: { maxEntriesPerCall: 10, maxMessageBytes: 1024 * 1024, maxBatchBytes: 100 }
      })
      const cases: ReadonlyArray<readonly [ReadonlyArray<FallbackQueue.OutgoingMessage>, string]> = [
        [[], "EmptyBatchRequest"],
        [entries(11), "TooManyEntriesInBatchRequest"],
        [
          [
            { id: "a", body: "x" },
            { id: "a", body: "y" }
          ],
          "BatchEntryIdsNotDistinct"
        ],
        [[{ id: "has space", body: "x" }], "InvalidBatchEntryId"],
        [[{ id: "x".repeat(81), body: "x" }], "InvalidBatchEntryId"],
        [[{ id: "", body: "x" }], "InvalidBatchEntryId"],
        [entries(2, () => "y".repeat(51)), "BatchRequestTooLong"]
      ]
      for (const [batch, code] of cases) {
        const error = yield* Effect.flip(queue.send(batch))
        expect(error.reason).toBe("InvalidRequest")
        expect(error.isRetryable).toBe(false)
        expect(error.message).toContain(code)
      }
      // Nothing from a refused call is enqueued; a batch exactly at the limit passes.
      expect((yield* queue.stats).total).toBe(0)
      const ok = yield* queue.send(entries(2, () => "y".repeat(50)))
      expect(ok.map((o) => o._tag)).toEqual(["Sent", "Sent"])
      expect(yield* queue.send([{ id: `${"A".repeat(79)}_`, body: "x" }])).toHaveLength(1)
    })
  )

  it.effect("fails oversized and badly encoded entries alone, as the sender's fault", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({
        limits: { maxEntriesPerCall: 10, maxMessageBytes: 1024, maxBatchBytes: 1024 * 1024 }
      })
      const outcomes = yield* queue.send([
        { id: "ok", body: "tabs\tnewlines\n\r and 😀 and \uE000 and \uFFFD" },
        { id: "big", body: "é".repeat(513) },
        { id: "nul", body: "a\u0000b" },
        { id: "ffff", body: "\uFFFF" },
        { id: "lone", body: "x\uD800y" },
        { id: "fits", body: "z".repeat(1024) }
      ])
      expect(outcomes.map((o) => (o._tag === "Sent" ? "Sent" : o.code))).toEqual([
        "Sent",
        "InvalidParameterValue",
        "InvalidMessageContents",
        "InvalidMessageContents",
        "InvalidMessageContents",
        "Sent"
      ])
      for (const outcome of outcomes) {
        if (outcome._tag === "Failed") expect(outcome.senderFault).toBe(true)
      }
      // Rejected, not replaced: only the two good bodies are stored, unchanged.
      expect(yield* queue.bodies).toEqual([
        "tabs\tnewlines\n\r and 😀 and \uE000 and \uFFFD",
        "z".repeat(1024)
      ])
    })
  )

  it.effect("fails entries through an injected failure as retryable, and sends the rest", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* queue.failSends((message) => (message.id === "m1" ? "InternalError" : undefined))
      const outcomes = yield* queue.send(entries(3))
      expect(outcomes[1]).toMatchObject({ _tag: "Failed", code: "InternalError", senderFault: false })
      expect(sentIds(outcomes)).toHaveLength(2)
      yield* queue.failSends(undefined)
      expect(sentIds(yield* queue.send(entries(3)))).toHaveLength(3)
    })
  )

  it.effect("draws message ids from Random, so a seeded run repeats them", () =>
    Effect.gen(function* () {
      // A fresh generator per run: a `Random` carries its state.
      const run = () =>
        Effect.gen(function* () {
          const queue = yield* MemoryQueue.make()
          return sentIds(yield* queue.send(entries(3)))
        }).pipe(Random.withSeed("seed"))
      const first = yield* run()
      expect(yield* run()).toEqual(first)
      expect(new Set(first).size).toBe(3)
      for (const id of first)
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    })
  )
})

describe("MemoryQueue.receive", () => {
  it.effect("delivers oldest first, at most maxMessages, and validates the count", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* queue.send(entries(10, (i) => `a${i}`))
      yield* TestClock.adjust("1 second")
      yield* queue.send(entries(5, (i) => `b${i}`))
      const first = yield* queue.receive({ maxMessages: 10 })
      expect(first.map((m) => m.body)).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`))
      expect((yield* queue.receive({ maxMessages: 3 })).map((m) => m.body)).toEqual(["b0", "b1", "b2"])
      for (const maxMessages of [0, 11, 1.5]) {
        expect((yield* Effect.flip(queue.receive({ maxMessages }))).message).toContain(
          "InvalidParameterValue"
        )
      }
      expect(yield* queue.stats).toMatchObject({ visible: 2, inFlight: 13, total: 15 })
    })
  )

  it.effect("hides a received message for the visibility timeout, then redelivers it with a new handle", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      yield* queue.send([{ id: "a", body: "hello" }])
      const [first] = yield* queue.receive({ maxMessages: 10 })
      expect(first).toMatchObject({ body: "hello", receiveCount: 1, sentAt: 0, firstReceivedAt: 0 })
      yield* TestClock.adjust("29999 millis")
      expect(yield* queue.receive({ maxMessages: 10 })).toEqual([])
      expect(yield* queue.stats).toMatchObject({ visible: 0, inFlight: 1 })
      yield* TestClock.adjust("1 millis")
      const [second] = yield* queue.receive({ maxMessages: 10 })
      expect(second?.messageId).toBe(first?.messageId)
      expect(second?.receiveCount).toBe(2)
      expect(second?.firstReceivedAt).toBe(0)
      expect(second?.receiptHandle).not.toBe(first?.receiptHandle)

      // The first handle is stale now: it cannot delete the message.
      const stale = yield* Effect.flip(queue.delete(first!.receiptHandle))
      expect(stale.reason).toBe("InvalidRequest")
      expect(stale.message).toContain("ReceiptHandleIsInvalid")
      expect((yield* queue.stats).total).toBe(1)
      yield* queue.delete(second!.receiptHandle)
      expect(yield* queue.stats).toMatchObject({ total: 0, deleted: 1 })
      // Deleting again with the same handle is harmless, as in SQS; a made-up handle is not.
      yield* queue.delete(second!.receiptHandle)
      expect((yield* Effect.flip(queue.delete("AQEBnonsense"))).message).toContain("ReceiptHandleIsInvalid")
    })
  )

  it.effect("takes a visibility timeout override per receive", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      yield* queue.send([{ id: "a", body: "x" }])
      yield* queue.receive({ maxMessages: 1, visibilityTimeoutSeconds: 5 })
      yield* TestClock.adjust("5 seconds")
      expect(yield* queue.receive({ maxMessages: 1, visibilityTimeoutSeconds: 0 })).toHaveLength(1)
      // A zero timeout leaves it visible at once.
      expect((yield* queue.receive({ maxMessages: 1 }))[0]?.receiveCount).toBe(3)
    })
  )
})

describe("MemoryQueue long polling", () => {
  it.effect("waits in whole milliseconds, so a wait shorter than a nanosecond still waits", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      // Jittered retries leave the clock at fractions of a millisecond, and the rest of a deadline
      // measured on it can be a fraction of a nanosecond: Effect's `Duration` rounds that to no
      // wait, and a poller would ask again at once, for as long as the clock stands still.
      yield* TestClock.adjust(Duration.millis(0.14))
      const waiting = yield* Effect.forkChild(queue.awaitVisible(1e-9))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      expect(waiting.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiting)
    })
  )

  it.effect("answers a waiting receive as soon as a message is sent", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      const waiting = yield* Effect.forkChild(queue.receive({ maxMessages: 10, waitTimeSeconds: 20 }))
      yield* TestClock.adjust("5 seconds")
      expect(waiting.pollUnsafe()).toBeUndefined()
      yield* queue.send([{ id: "a", body: "late" }])
      const received = yield* Fiber.join(waiting)
      expect(received.map((m) => [m.body, m.firstReceivedAt])).toEqual([["late", 5000]])
    })
  )

  it.effect("answers empty after the wait, and when an in-flight message's timeout ends", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      const empty = yield* Effect.forkChild(queue.receive({ maxMessages: 1, waitTimeSeconds: 20 }))
      yield* TestClock.adjust("20 seconds")
      expect(yield* Fiber.join(empty)).toEqual([])

      yield* queue.send([{ id: "a", body: "x" }])
      yield* queue.receive({ maxMessages: 1 })
      yield* TestClock.adjust("15 seconds")
      const again = yield* Effect.forkChild(queue.receive({ maxMessages: 1, waitTimeSeconds: 20 }))
      yield* TestClock.adjust("15 seconds")
      expect((yield* Fiber.join(again)).map((m) => m.receiveCount)).toEqual([2])
      expect((yield* Effect.flip(queue.receive({ maxMessages: 1, waitTimeSeconds: 21 }))).message).toContain(
        "WaitTimeSeconds"
      )
    })
  )
})

describe("MemoryQueue.changeVisibility", () => {
  it.effect("counts the new timeout from now; 0 makes the message visible at once", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 30 })
      yield* queue.send([{ id: "a", body: "x" }])
      const [m1] = yield* queue.receive({ maxMessages: 1 })
      yield* queue.changeVisibility(m1!.receiptHandle, 0)
      const [m2] = yield* queue.receive({ maxMessages: 1 })
      expect(m2?.receiveCount).toBe(2)

      yield* TestClock.adjust("20 seconds")
      yield* queue.changeVisibility(m2!.receiptHandle, 100)
      yield* TestClock.adjust("99 seconds")
      expect(yield* queue.receive({ maxMessages: 1 })).toEqual([])
      yield* TestClock.adjust("1 second")
      const [m3] = yield* queue.receive({ maxMessages: 1 })
      expect(m3?.receiveCount).toBe(3)

      const stale = yield* Effect.flip(queue.changeVisibility(m2!.receiptHandle, 10))
      expect(stale.message).toContain("ReceiptHandleIsInvalid")
      for (const timeout of [-1, 43_201]) {
        expect((yield* Effect.flip(queue.changeVisibility(m3!.receiptHandle, timeout))).message).toContain(
          "InvalidParameterValue"
        )
      }
      // 12 hours is the most a message can stay hidden since its receive.
      yield* queue.changeVisibility(m3!.receiptHandle, 7200)
      yield* TestClock.adjust("1 hour")
      expect((yield* Effect.flip(queue.changeVisibility(m3!.receiptHandle, 43_200))).message).toContain(
        "Total VisibilityTimeout"
      )
      yield* queue.changeVisibility(m3!.receiptHandle, 39_600)
    })
  )

  it.effect("refuses a message that is no longer in flight", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ visibilityTimeoutSeconds: 10 })
      yield* queue.send([{ id: "a", body: "x" }])
      const [m] = yield* queue.receive({ maxMessages: 1 })
      yield* TestClock.adjust("10 seconds")
      expect((yield* Effect.flip(queue.changeVisibility(m!.receiptHandle, 30))).message).toContain(
        "MessageNotInflight"
      )
    })
  )
})

describe("MemoryQueue redrive and retention", () => {
  it.effect("moves a message to the dead-letter queue instead of a receive past maxReceiveCount", () =>
    Effect.gen(function* () {
      const dlq = yield* MemoryQueue.make({ queueName: "fallback-dlq" })
      const queue = yield* MemoryQueue.make({
        visibilityTimeoutSeconds: 10,
        redrivePolicy: { maxReceiveCount: 3, deadLetterQueue: dlq }
      })
      const [sent] = sentIds(yield* queue.send([{ id: "a", body: "poison" }]))
      yield* queue.send([{ id: "b", body: "healthy" }])
      for (const expected of [1, 2, 3]) {
        const received = yield* queue.receive({ maxMessages: 10 })
        expect(received.map((m) => [m.body, m.receiveCount])).toEqual([
          ["poison", expected],
          ["healthy", expected]
        ])
        // The healthy message is deleted on its third receive.
        if (expected === 3) yield* queue.delete(received[1]!.receiptHandle)
        yield* TestClock.adjust("10 seconds")
      }
      expect(yield* queue.receive({ maxMessages: 10 })).toEqual([])
      expect(yield* queue.stats).toMatchObject({ total: 0, deadLettered: 1 })
      const [moved] = yield* dlq.receive({ maxMessages: 10 })
      expect(moved).toMatchObject({
        messageId: sent,
        body: "poison",
        sentAt: 0,
        receiveCount: 1,
        deadLetterQueueSourceArn: queue.queueArn
      })
      expect(yield* dlq.bodies).toEqual(["poison"])
    })
  )

  it.effect("drops messages that outlive the retention period, in flight or not", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ messageRetentionSeconds: 60 })
      yield* queue.send([{ id: "a", body: "old" }])
      yield* TestClock.adjust("30 seconds")
      yield* queue.send([{ id: "b", body: "newer" }])
      yield* queue.receive({ maxMessages: 10 })
      yield* TestClock.adjust("29 seconds")
      expect(yield* queue.stats).toMatchObject({ total: 2, expired: 0 })
      yield* TestClock.adjust("1 second")
      expect(yield* queue.stats).toMatchObject({ total: 1, expired: 1 })
      expect(yield* queue.bodies).toEqual(["newer"])
      yield* TestClock.adjust("30 seconds")
      expect(yield* queue.receive({ maxMessages: 10 })).toEqual([])
      expect(yield* queue.stats).toMatchObject({ total: 0, expired: 2 })
    })
  )

  it.effect("refuses impossible settings as defects", () =>
    Effect.gen(function* () {
      for (const options of [
        { visibilityTimeoutSeconds: 43_201 },
        { messageRetentionSeconds: 59 },
        { queueName: "bad name" }
      ]) {
        const exit = yield* Effect.exit(MemoryQueue.make(options))
        expect(exit._tag).toBe("Failure")
      }
    })
  )
})

describe("MemoryQueue faults and layer", () => {
  it.effect("fails every call Unavailable during an outage, until cleared or until its end", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* queue.send([{ id: "a", body: "x" }])
      const [m] = yield* queue.receive({ maxMessages: 1 })
      yield* queue.startOutage()
      for (const call of [
        queue.send([{ id: "b", body: "y" }]),
        queue.receive({ maxMessages: 1 }),
        queue.delete(m!.receiptHandle),
        queue.changeVisibility(m!.receiptHandle, 0)
      ]) {
        const error = yield* Effect.flip(call)
        expect(error.reason).toBe("Unavailable")
        expect(error.isRetryable).toBe(true)
      }
      yield* queue.endOutage
      yield* queue.delete(m!.receiptHandle)

      yield* queue.startOutage({ until: 5_000 })
      expect((yield* Effect.flip(queue.send([{ id: "b", body: "y" }]))).reason).toBe("Unavailable")
      yield* TestClock.adjust("5 seconds")
      expect(sentIds(yield* queue.send([{ id: "b", body: "y" }]))).toHaveLength(1)
    })
  )

  it.effect("serves FallbackQueue and its control handle from one layer", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const control = yield* MemoryQueue.MemoryQueue
      expect(queue.queueArn).toBe("arn:aws:sqs:eu-west-1:111122223333:fallback")
      yield* queue.send([{ id: "a", body: "x" }])
      expect(yield* control.bodies).toEqual(["x"])
      expect(control.queueUrl).toBe("https://sqs.eu-west-1.amazonaws.com/111122223333/fallback")
    }).pipe(Effect.provide(MemoryQueue.layerMemory({ region: "eu-west-1", accountId: "111122223333" })))
  )
})

describe("MemoryQueue DelaySeconds", () => {
  it.effect("holds a delayed message back for its delay, and refuses a delay outside 0–900", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make()
      yield* queue.send([
        { id: "now", body: "now" },
        { id: "later", body: "later", delaySeconds: 5 }
      ])
      expect((yield* queue.receive({ maxMessages: 10 })).map((m) => m.body)).toEqual(["now"])
      yield* TestClock.adjust("4999 millis")
      expect(yield* queue.receive({ maxMessages: 10 })).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect((yield* queue.receive({ maxMessages: 10 })).map((m) => m.body)).toEqual(["later"])
      for (const delaySeconds of [-1, 901, 1.5]) {
        const error = yield* Effect.flip(queue.send([{ id: "x", body: "x", delaySeconds }]))
        expect(error.message).toContain("DelaySeconds")
      }
    })
  )
})

describe("MemoryQueue receipt handles", () => {
  it.effect("refuses a handle another queue issued, or one it has not issued yet, as never valid", () =>
    Effect.gen(function* () {
      const queue = yield* MemoryQueue.make({ queueName: "one" })
      const other = yield* MemoryQueue.make({ queueName: "two" })
      yield* queue.send([{ id: "a", body: "x" }])
      yield* other.send([{ id: "a", body: "x" }])
      const [mine] = yield* queue.receive({ maxMessages: 1 })
      const [theirs] = yield* other.receive({ maxMessages: 1 })
      const refused = yield* Effect.flip(queue.delete(theirs!.receiptHandle))
      expect(refused.message).toContain('The input receipt handle "AQEB')
      // A handle naming the right message with a number this queue has not reached yet.
      const decoded = Buffer.from(mine!.receiptHandle.slice(4), "base64").toString()
      const ahead = `AQEB${Buffer.from(decoded.replace(/\|\d+$/, "|99")).toString("base64")}`
      expect((yield* Effect.flip(queue.delete(ahead))).message).toContain("is not valid")
      yield* queue.delete(mine!.receiptHandle)
      expect((yield* queue.stats).total).toBe(0)
    })
  )
})
