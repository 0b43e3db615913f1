/** The log group's subscription emulation: batching per stream, the window, async retries, the on-failure end. */
import { describe, expect, it } from "@effect/vitest"
import { CloudWatchLogs } from "@spillway/core"
import { Effect, Result } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryLogGroup from "../../src/MemoryLogGroup.js"

const messagesOf = (event: CloudWatchLogs.SubscriptionEvent) => {
  const decoded = CloudWatchLogs.decodeData(event.awslogs.data)
  if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
  return decoded.success
}

describe("MemoryLogGroup", () => {
  it.effect(
    "delivers a stream's lines in order, once they waited the window, in batches of at most maxBatchEvents",
    () =>
      Effect.gen(function* () {
        const group = yield* MemoryLogGroup.make()
        const delivered: Array<CloudWatchLogs.LogsMessage> = []
        const subscription = yield* group.subscribe(
          (event) => Effect.sync(() => void delivered.push(messagesOf(event))),
          {
            maxBatchEvents: 4,
            filter: (message) => !message.startsWith("START")
          }
        )
        yield* group.writer("a").write(["START", "1", "2", "3", "4", "5"])
        yield* group.writer("b").write(["x"])
        yield* TestClock.adjust("300 millis")
        // A full batch goes at once; the rest waits for its window.
        expect(delivered.map((d) => d.logEvents.map((e) => e.message))).toEqual([["1", "2", "3", "4"]])
        expect(yield* subscription.isIdle).toBe(false)
        yield* TestClock.adjust("1 second")
        expect(delivered.map((d) => [d.logStream, d.logEvents.map((e) => e.message).join("")])).toEqual([
          ["a", "1234"],
          ["a", "5"],
          ["b", "x"]
        ])
        expect(delivered[0]).toMatchObject({
          messageType: "DATA_MESSAGE",
          logGroup: group.logGroupName,
          subscriptionFilters: ["to-forwarder"]
        })
        const ids = delivered.flatMap((d) => d.logEvents.map((e) => e.id))
        expect(new Set(ids).size).toBe(ids.length)
        expect(yield* subscription.isIdle).toBe(true)
      })
  )

  it.effect(
    "retries a failed invocation a minute and two minutes later, then sends it to the on-failure destination",
    () =>
      Effect.gen(function* () {
        const group = yield* MemoryLogGroup.make()
        let calls = 0
        const subscription = yield* group.subscribe(() =>
          Effect.suspend(() => {
            calls++
            return Effect.fail("boom")
          })
        )
        yield* group.writer("a").write(["1"])
        yield* TestClock.adjust("2 seconds")
        expect(calls).toBe(1)
        yield* TestClock.adjust("1 minute")
        expect(calls).toBe(2)
        yield* TestClock.adjust("2 minutes")
        expect(calls).toBe(3)
        expect(yield* subscription.counters).toMatchObject({
          invocations: 3,
          functionErrors: 3,
          retries: 2,
          discarded: 1
        })
        expect((yield* subscription.discarded).map((e) => messagesOf(e).logEvents[0]!.message)).toEqual(["1"])
        expect(yield* subscription.isIdle).toBe(true)
      })
  )
})
