/** The test helpers: settling until idle twice in a row, the fake Lambda context, the event fixtures. */
import { describe, expect, it } from "@effect/vitest"
import { LambdaEvents, Telemetry } from "@spillway/core"
import { Duration, Effect, Result } from "effect"
import { TestClock } from "effect/testing"
import { EventFixtures, Harness, LambdaContext } from "../src/index.js"

/** A subject whose `isIdle` answers `looks` in turn, then idle for ever. */
const subject = (looks: ReadonlyArray<boolean>) => {
  let look = 0
  return { isIdle: Effect.sync(() => looks[look++] ?? true) }
}

describe("Harness.settle", () => {
  it.effect("waits until the subject is idle twice in a row, moving TestClock a step per look", () =>
    Effect.gen(function* () {
      const took = yield* Harness.settle(subject([true, false, true, false, false, true, true]), {
        step: "1 second"
      })
      expect(Duration.toMillis(took)).toBe(7000)
    })
  )

  it.effect("fails, saying so, when the subject is not idle within max", () =>
    Effect.gen(function* () {
      const busy = { isIdle: Effect.succeed(false) }
      const error = yield* Effect.flip(Harness.settle(busy, { step: "1 second", max: "10 seconds" }))
      expect(error).toBe("pipeline did not settle within 10000 ms of simulated time")
    })
  )

  it.live("sleeps instead on the live clock", () =>
    Effect.gen(function* () {
      const took = yield* Harness.settle(subject([true, true]), { clock: "live", step: "1 millis" })
      expect(Duration.toMillis(took)).toBe(2)
    })
  )

  it.effect("whileClockRuns runs an effect that sleeps to its end", () =>
    Effect.gen(function* () {
      expect(yield* Harness.whileClockRuns(Effect.as(Effect.sleep("5 seconds"), "woke"))).toBe("woke")
    })
  )
})

describe("LambdaContext.make", () => {
  it.effect("counts the time left down to the deadline on the Clock, never below 0", () =>
    Effect.gen(function* () {
      const context = yield* LambdaContext.make({ functionName: "processor", timeout: "3 seconds" })
      expect(context.getRemainingTimeInMillis()).toBe(3000)
      yield* TestClock.adjust("1 second")
      expect(context.getRemainingTimeInMillis()).toBe(2000)
      yield* TestClock.adjust("5 seconds")
      expect(context.getRemainingTimeInMillis()).toBe(0)
      expect(context.functionName).toBe("processor")
      expect(context.invokedFunctionArn).toBe("arn:aws:lambda:eu-west-1:123456789012:function:processor")
      expect(context.logGroupName).toBe("/aws/lambda/processor")
      expect(context.memoryLimitInMB).toBe("1024")
      expect(context.callbackWaitsForEmptyEventLoop).toBe(true)
      context.succeed({ ok: true })
      expect(context.calls).toEqual([{ method: "succeed", args: [{ ok: true }] }])
    })
  )

  it.effect("takes an absolute deadline", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(10_000)
      const context = yield* LambdaContext.make({ deadline: 25_000, awsRequestId: "req-1" })
      expect(context.getRemainingTimeInMillis()).toBe(15_000)
      expect(context.awsRequestId).toBe("req-1")
    })
  )
})

describe("EventFixtures", () => {
  it("builds a Kinesis event of client records: base64 envelopes keyed by id, in sequence order", () => {
    const event = EventFixtures.kinesisEventOfRecords(Harness.records(3), { tenant: "t1", receivedAt: 1_000 })
    const records = event.Records.map(LambdaEvents.toStreamRecord)
    expect(records.map((r) => r.partitionKey)).toEqual(["r-0", "r-1", "r-2"])
    expect(new Set(records.map((r) => r.shardId))).toEqual(new Set(["shardId-000000000000"]))
    const sequence = records.map((r) => BigInt(r.sequenceNumber))
    expect(sequence).toEqual([...sequence].sort((a, b) => (a < b ? -1 : 1)))
    const envelopes = records.map((r) => Telemetry.decodeEnvelope(r.data))
    for (const [i, envelope] of envelopes.entries()) {
      if (!Result.isSuccess(envelope)) throw new Error("not an envelope")
      expect(envelope.success.tenant).toBe("t1")
      expect(envelope.success.receivedAt).toBe(1_000)
      expect(envelope.success.record.id).toBe(`r-${i}`)
    }
    expect(() => EventFixtures.kinesisEventOfRecords([{ id: "" }])).toThrow(/not a valid record/)
  })

  it("builds a Kinesis event of raw bytes as base64", () => {
    const event = EventFixtures.kinesisEvent([{ partitionKey: "k", data: Uint8Array.of(0, 255, 10) }])
    expect(event.Records[0]?.kinesis.data).toBe("AP8K")
    expect(event.Records[0]?.eventSource).toBe("aws:kinesis")
  })

  it("builds an SQS event with Lambda's attributes, all strings, and the body's MD5", () => {
    const event = EventFixtures.sqsEvent([{ body: "hello", receiveCount: 3 }, { body: "again" }], {
      sentAt: 5_000
    })
    expect(event.Records.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(["3", "1"])
    expect(event.Records[0]?.attributes.SentTimestamp).toBe("5000")
    expect(event.Records[0]?.md5OfBody).toBe("5d41402abc4b2a76b9719d911017c592")
    expect(new Set(event.Records.map((r) => r.messageId)).size).toBe(2)
    expect(event.Records[0]?.eventSourceARN).toBe("arn:aws:sqs:eu-west-1:123456789012:spillway-fallback")
  })
})
