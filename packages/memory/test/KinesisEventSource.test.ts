import { describe, expect, it } from "@effect/vitest"
import { LambdaEvents, type OnFailure, type RecordStream } from "@spillway/core"
import { Clock, Duration, Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as KinesisEventSource from "../src/KinesisEventSource.js"
import * as MemoryFailureDestination from "../src/MemoryFailureDestination.js"
import * as MemoryStream from "../src/MemoryStream.js"
import * as VirtualTime from "../src/VirtualTime.js"

const text = (value: string) => new TextEncoder().encode(value)
const payloadOf = (record: LambdaEvents.KinesisEventRecord) =>
  Buffer.from(record.kinesis.data, "base64").toString("utf8")

/** Writes `payloads` under `partitionKey` in calls of 500 entries, one call per simulated second. */
const write = (stream: MemoryStream.Service, payloads: ReadonlyArray<string>, partitionKey = "device-1") =>
  Effect.gen(function* () {
    const outcomes: Array<RecordStream.PutOutcome> = []
    for (let i = 0; i < payloads.length; i += 500) {
      if (i > 0) yield* TestClock.adjust("1 second")
      const chunk = payloads.slice(i, i + 500).map((payload) => ({ partitionKey, data: text(payload) }))
      outcomes.push(...(yield* stream.putRecords(chunk)))
    }
    return outcomes.map((outcome) => {
      if (outcome._tag === "Failed") throw new Error(`test setup: write failed with ${outcome.errorCode}`)
      return outcome
    })
  })

/** Advances the TestClock step by step until the mapping has caught up with every shard. */
const drain = (
  source: KinesisEventSource.EventSource,
  options: { readonly step?: Duration.Input; readonly maxSteps?: number } = {}
) =>
  Effect.gen(function* () {
    const maxSteps = options.maxSteps ?? 10_000
    for (let step = 0; step < maxSteps; step++) {
      if (yield* source.isIdle) return step
      yield* TestClock.adjust(options.step ?? "1 second")
    }
    return yield* Effect.die(new Error(`event source still busy after ${maxSteps} steps`))
  })

/** A handler that remembers every event, and fails whenever `fails` says so. */
const recordingHandler = (fails: (event: LambdaEvents.KinesisEvent) => unknown = () => undefined) => {
  const invocations: Array<{
    readonly at: number
    readonly records: ReadonlyArray<LambdaEvents.KinesisEventRecord>
  }> = []
  const handler: KinesisEventSource.Handler<never> = (event) =>
    Effect.gen(function* () {
      invocations.push({ at: yield* Clock.currentTimeMillis, records: event.Records })
      const verdict = fails(event)
      if (verdict === "fail") return yield* Effect.fail("boom")
      return verdict
    })
  return { handler, invocations }
}

const sequencesOf = (
  invocations: ReadonlyArray<{ readonly records: ReadonlyArray<LambdaEvents.KinesisEventRecord> }>
) => invocations.flatMap((invocation) => invocation.records.map((record) => record.kinesis.sequenceNumber))

describe("KinesisEventSource delivery", () => {
  it.effect("delivers every record once, in sequence order per shard, one batch in flight per shard", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 4 })
      let inFlight = new Map<string, number>()
      let maxPerShard = 0
      let maxOverall = 0
      const delivered: Array<LambdaEvents.KinesisEventRecord> = []
      const source = yield* KinesisEventSource.start(
        stream,
        (event) =>
          Effect.gen(function* () {
            const shardId = LambdaEvents.shardIdOf(event.Records[0]!)
            inFlight = new Map(inFlight).set(shardId, (inFlight.get(shardId) ?? 0) + 1)
            maxPerShard = Math.max(maxPerShard, ...inFlight.values())
            maxOverall = Math.max(
              maxOverall,
              [...inFlight.values()].reduce((a, b) => a + b, 0)
            )
            // Each invocation takes a while, so shards overlap in time.
            yield* Effect.sleep("300 millis")
            inFlight = new Map(inFlight).set(shardId, inFlight.get(shardId)! - 1)
            expect(new Set(event.Records.map(LambdaEvents.shardIdOf)).size).toBe(1)
            expect(event.Records.length).toBeLessThanOrEqual(100)
            Schema.decodeUnknownSync(LambdaEvents.KinesisEvent)(event)
            delivered.push(...event.Records)
          }),
        { startingPosition: "TRIM_HORIZON", batchSize: 100 }
      )
      for (let call = 0; call < 4; call++) {
        yield* stream.putRecords(
          Array.from({ length: 500 }, (_, i) => ({
            partitionKey: `device-${i % 37}`,
            data: text(`${call}:${i}`)
          }))
        )
        yield* TestClock.adjust("1 second")
      }
      yield* drain(source)

      const all = yield* stream.records
      expect(delivered).toHaveLength(2000)
      for (const shardId of stream.shardIds) {
        const expected = all
          .filter((record) => record.shardId === shardId)
          .map((record) => record.sequenceNumber)
        const got = delivered.filter((record) => LambdaEvents.shardIdOf(record) === shardId)
        expect(got.map((record) => record.kinesis.sequenceNumber)).toEqual(expected)
        expect(expected.length).toBeGreaterThan(0)
      }
      const sample = delivered[0]!
      expect(sample.eventSourceARN).toBe(stream.streamArn)
      expect(sample.eventID).toBe(`${LambdaEvents.shardIdOf(sample)}:${sample.kinesis.sequenceNumber}`)
      expect(sample.awsRegion).toBe("us-east-1")
      expect(maxPerShard).toBe(1)
      expect(maxOverall).toBeGreaterThan(1)

      const counters = yield* source.counters
      expect(counters.functionErrors).toBe(0)
      expect(counters.recordsDelivered).toBe(2000)
      expect(counters.recordsSucceeded).toBe(2000)
      expect(counters.retries).toBe(0)
      expect(yield* source.checkpoints).toEqual(yield* stream.shardTips)
    })
  )

  it.effect("cuts batches at batchSize and polls again at once after a full batch", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      yield* write(
        stream,
        Array.from({ length: 95 }, (_, i) => `r${i}`)
      )
      const { handler, invocations } = recordingHandler()
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 10
      })
      yield* drain(source)
      expect(invocations.map((invocation) => invocation.records.length)).toEqual([
        10, 10, 10, 10, 10, 10, 10, 10, 10, 5
      ])
      // Nine full batches in a row: no poll interval between them.
      expect(invocations.map((invocation) => invocation.at)).toEqual(Array.from({ length: 10 }, () => 0))
      expect(invocations.flatMap((invocation) => invocation.records.map(payloadOf))).toEqual(
        Array.from({ length: 95 }, (_, i) => `r${i}`)
      )
    })
  )

  it.effect("waits up to the batching window for a batch to fill, but not when it is full", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const { handler, invocations } = recordingHandler()
      yield* write(
        stream,
        Array.from({ length: 10 }, (_, i) => `a${i}`)
      )
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 100,
        maximumBatchingWindowInSeconds: 5
      })
      yield* TestClock.adjust("2 seconds")
      yield* write(
        stream,
        Array.from({ length: 10 }, (_, i) => `b${i}`)
      )
      yield* TestClock.adjust("2999 millis")
      expect(invocations).toHaveLength(0)
      yield* TestClock.adjust("1 millis")
      expect(invocations.map((invocation) => [invocation.at, invocation.records.length])).toEqual([
        [5000, 20]
      ])

      // A full batch does not wait for the window: it goes at the next poll, one second later.
      yield* write(
        stream,
        Array.from({ length: 100 }, (_, i) => `c${i}`)
      )
      yield* TestClock.adjust("1 second")
      expect(invocations.map((invocation) => [invocation.at, invocation.records.length])).toEqual([
        [5000, 20],
        [6000, 100]
      ])
      yield* drain(source)
    })
  )

  it.effect(
    "closes the batching window on time when the clock stands at a fraction of a millisecond",
    () =>
      // On `VirtualTime`, which waits for a woken poller: one spinning would stall the test.
      VirtualTime.provide(
        Effect.gen(function* () {
          // Jittered retries leave the clock at fractions of a millisecond. At 0.1 + 0.04 ms, with
          // a 2 s window polled every second, the rest of the window measured in fractional
          // milliseconds comes out a fraction of a nanosecond short: a sleep of no time at all.
          yield* TestClock.adjust(Duration.millis(0.1))
          yield* TestClock.adjust(Duration.millis(0.04))
          const stream = yield* MemoryStream.make({ shardCount: 1 })
          const { handler, invocations } = recordingHandler()
          yield* write(stream, ["a"])
          yield* KinesisEventSource.start(stream, handler, {
            startingPosition: "TRIM_HORIZON",
            maximumBatchingWindowInSeconds: 2
          })
          yield* TestClock.adjust("1999 millis")
          expect(invocations).toHaveLength(0)
          yield* TestClock.adjust("1 millis")
          expect(invocations.map((invocation) => invocation.records.length)).toEqual([1])
          expect(invocations[0]!.at).toBeCloseTo(2000.14, 9)
        })
      ),
    15_000
  )

  it.effect("keeps each event under Lambda's 6 MB payload limit", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      // 700 KB per record and 1 MiB/s per shard: one record per second.
      for (let i = 0; i < 10; i++) {
        yield* stream.putRecords([{ partitionKey: "k", data: new Uint8Array(700_000).fill(i) }])
        yield* TestClock.adjust("1 second")
      }
      const { handler, invocations } = recordingHandler()
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 100
      })
      yield* drain(source)
      expect(invocations.map((invocation) => invocation.records.length)).toEqual([6, 4])
      for (const invocation of invocations) {
        expect(Buffer.byteLength(JSON.stringify({ Records: invocation.records }))).toBeLessThanOrEqual(
          KinesisEventSource.maxPayloadBytes
        )
      }
    })
  )

  it.effect("starts at the tip with LATEST", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 2 })
      yield* write(stream, ["old-1", "old-2"])
      const { handler, invocations } = recordingHandler()
      const source = yield* KinesisEventSource.start(stream, handler, { startingPosition: "LATEST" })
      yield* write(stream, ["new-1", "new-2"])
      yield* drain(source)
      expect(invocations.flatMap((invocation) => invocation.records.map(payloadOf))).toEqual([
        "new-1",
        "new-2"
      ])
    })
  )

  it.effect("keeps polling through a stream outage and catches up afterwards", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      yield* write(stream, ["r0", "r1", "r2"])
      yield* stream.startOutage({ for: "30 seconds" })
      const { handler, invocations } = recordingHandler()
      const source = yield* KinesisEventSource.start(stream, handler, { startingPosition: "TRIM_HORIZON" })
      yield* TestClock.adjust("29 seconds")
      expect(invocations).toHaveLength(0)
      expect((yield* source.counters).pollErrors).toBeGreaterThanOrEqual(29)
      yield* drain(source)
      expect(invocations.flatMap((invocation) => invocation.records.map(payloadOf))).toEqual([
        "r0",
        "r1",
        "r2"
      ])
    })
  )
})

describe("KinesisEventSource poison records", () => {
  const poisonIndex = 537
  const thousand = Array.from({ length: 1000 }, (_, i) => (i === poisonIndex ? "poison" : `r${i}`))
  const containsPoison = (event: LambdaEvents.KinesisEvent) =>
    event.Records.some((record) => payloadOf(record) === "poison")

  it.effect(
    "with bisection, partial responses and 2 retries: isolates the poison record, reports it and moves on",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const destination = yield* MemoryFailureDestination.make
        const outcomes = yield* write(stream, thousand)
        const poisonSequence = outcomes[poisonIndex]!.sequenceNumber
        const { handler, invocations } = recordingHandler((event) =>
          containsPoison(event) ? "fail" : undefined
        )
        const source = yield* KinesisEventSource.start(stream, handler, {
          startingPosition: "TRIM_HORIZON",
          batchSize: 100,
          bisectBatchOnFunctionError: true,
          reportBatchItemFailures: true,
          maximumRetryAttempts: 2,
          onFailure: destination
        })
        yield* drain(source)

        const succeeded = new Set(
          sequencesOf(invocations.filter((invocation) => !containsPoison({ Records: invocation.records })))
        )
        expect(succeeded.size).toBe(999)
        expect(succeeded.has(poisonSequence)).toBe(false)
        for (const [i, outcome] of outcomes.entries()) {
          if (i !== poisonIndex) expect(succeeded.has(outcome.sequenceNumber)).toBe(true)
        }

        const [report, ...others] = yield* destination.records
        expect(others).toHaveLength(0)
        const info = report!.KinesisBatchInfo
        expect(report!.requestContext.condition).toBe("RetryAttemptsExhausted")
        expect(report!.requestContext.approximateInvokeCount).toBe(3) // the first try and 2 retries
        expect(report!.requestContext.functionArn).toBe(source.functionArn)
        expect(report!.responseContext).toEqual({
          statusCode: 200,
          executedVersion: "$LATEST",
          functionError: "Unhandled"
        })
        expect(report!.version).toBe("1.0")
        expect(info.shardId).toBe("shardId-000000000000")
        expect(info.streamArn).toBe(stream.streamArn)
        expect(BigInt(info.startSequenceNumber) <= BigInt(poisonSequence)).toBe(true)
        expect(BigInt(poisonSequence) <= BigInt(info.endSequenceNumber)).toBe(true)
        expect(info.batchSize).toBe(1)
        expect(Date.parse(info.approximateArrivalOfFirstRecord)).toBe(1000) // written in the second call
        // The report is enough to read the discarded record back from the stream.
        const replay = yield* stream.readRange({
          shardId: info.shardId,
          startSequenceNumber: info.startSequenceNumber,
          endSequenceNumber: info.endSequenceNumber
        })
        expect(replay.map((record) => new TextDecoder().decode(record.data))).toEqual(["poison"])

        const counters = yield* source.counters
        // Halving 100 records down to one takes at least 6 splits (100 → 50 → 25 → 12 → 6 → 3 → 1).
        expect(counters.bisections).toBeGreaterThanOrEqual(6)
        expect(counters.functionErrors).toBe(counters.bisections + 3)
        expect(counters.batchesDiscarded).toBe(1)
        expect(counters.onFailureRecordsSent).toBe(1)
        expect(counters.recordsSucceeded).toBe(999)
        expect(yield* source.checkpoints).toEqual(yield* stream.shardTips)
      })
  )

  it.effect(
    "without bisection or partial responses and infinite retries: the poison batch blocks the shard",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const destination = yield* MemoryFailureDestination.make
        const outcomes = yield* write(stream, thousand)
        const { handler, invocations } = recordingHandler((event) =>
          containsPoison(event) ? "fail" : undefined
        )
        const source = yield* KinesisEventSource.start(stream, handler, {
          startingPosition: "TRIM_HORIZON",
          batchSize: 100,
          // A slower retry cadence than the default keeps the simulated half hour cheap to run.
          retryDelayMillis: 10_000,
          onFailure: destination
        })
        yield* TestClock.adjust("30 minutes")

        // Batches 0–4 went through; the batch holding record 537 (500–599) never does.
        const checkpoint = (yield* source.checkpoints)["shardId-000000000000"]
        expect(checkpoint).toBe(outcomes[499]!.sequenceNumber)
        expect(BigInt(checkpoint!) < BigInt(outcomes[poisonIndex]!.sequenceNumber)).toBe(true)
        const delivered = new Set(sequencesOf(invocations))
        expect(delivered.has(outcomes[600]!.sequenceNumber)).toBe(false)
        expect(invocations.at(-1)!.records[0]!.kinesis.sequenceNumber).toBe(outcomes[500]!.sequenceNumber)
        const counters = yield* source.counters
        expect(counters.functionErrors).toBeGreaterThanOrEqual(180) // retried every 10 s for 30 minutes
        expect(counters.batchesDiscarded).toBe(0)
        expect(counters.bisections).toBe(0)
        expect(yield* destination.records).toHaveLength(0)
        expect(yield* source.isIdle).toBe(false)
      })
  )

  it.effect("a partial response checkpoints before the lowest failed record and retries only the rest", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const destination = yield* MemoryFailureDestination.make
      const outcomes = yield* write(stream, thousand)
      const poisonSequence = outcomes[poisonIndex]!.sequenceNumber
      const { handler, invocations } = recordingHandler((event) =>
        containsPoison(event)
          ? {
              // Reports the poison record and a later one; Lambda retries from the lowest.
              batchItemFailures: [
                { itemIdentifier: outcomes[poisonIndex + 5]!.sequenceNumber },
                { itemIdentifier: poisonSequence }
              ]
            }
          : { batchItemFailures: [] }
      )
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 100,
        reportBatchItemFailures: true,
        maximumRetryAttempts: 1,
        onFailure: destination
      })
      yield* drain(source)

      const poisonBatch = invocations.filter((invocation) => containsPoison({ Records: invocation.records }))
      expect(poisonBatch.map((invocation) => invocation.records[0]!.kinesis.sequenceNumber)).toEqual([
        outcomes[500]!.sequenceNumber,
        poisonSequence
      ])
      expect(poisonBatch[1]!.records).toHaveLength(63) // 537–599
      const [report] = yield* destination.records
      expect(report!.requestContext.condition).toBe("RetryAttemptsExhausted")
      expect(report!.responseContext.functionError).toBeUndefined()
      expect(report!.KinesisBatchInfo.startSequenceNumber).toBe(poisonSequence)
      expect(report!.KinesisBatchInfo.endSequenceNumber).toBe(outcomes[599]!.sequenceNumber)
      expect(report!.KinesisBatchInfo.batchSize).toBe(63)
      const counters = yield* source.counters
      expect(counters.partialFailures).toBe(2)
      expect(counters.recordsSucceeded).toBe(1000 - 63)
      expect(yield* source.checkpoints).toEqual(yield* stream.shardTips)
    })
  )
})

describe("KinesisEventSource on-failure record counts", () => {
  /** Runs `payloads` through a mapping whose handler answers `respond`; returns the one on-failure record. */
  const discardedWith = (
    payloads: ReadonlyArray<string>,
    respond: (event: LambdaEvents.KinesisEvent) => unknown,
    config: Partial<KinesisEventSource.Config>
  ) =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const destination = yield* MemoryFailureDestination.make
      const outcomes = yield* write(stream, payloads)
      const { handler, invocations } = recordingHandler(respond)
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        reportBatchItemFailures: true,
        onFailure: destination,
        ...config
      })
      yield* drain(source)
      const [report, ...others] = yield* destination.records
      expect(others).toHaveLength(0)
      return { report: report!, outcomes, invocations }
    })

  /** A partial response naming the poison record, whenever the batch holds it. */
  const reportPoison = (event: LambdaEvents.KinesisEvent) => {
    const poison = event.Records.find((record) => payloadOf(record) === "poison")
    return {
      batchItemFailures: poison === undefined ? [] : [{ itemIdentifier: poison.kinesis.sequenceNumber }]
    }
  }

  for (const maximumRetryAttempts of [0, 1, 3]) {
    it.effect(
      `partial responses only, ${maximumRetryAttempts} retries: RetryAttemptsExhausted after ${maximumRetryAttempts + 1} invocations`,
      () =>
        Effect.gen(function* () {
          const { report, outcomes, invocations } = yield* discardedWith(
            ["r0", "r1", "poison", "r3"],
            reportPoison,
            { maximumRetryAttempts }
          )
          // The first invocation held r0–r3; every later one starts at the poison record.
          expect(invocations).toHaveLength(maximumRetryAttempts + 1)
          expect(report.requestContext.condition).toBe("RetryAttemptsExhausted")
          expect(report.requestContext.approximateInvokeCount).toBe(maximumRetryAttempts + 1)
          expect(report.responseContext.functionError).toBeUndefined()
          expect(report.KinesisBatchInfo.startSequenceNumber).toBe(outcomes[2]!.sequenceNumber)
          expect(report.KinesisBatchInfo.batchSize).toBe(2)
        })
    )
  }

  it.effect(
    "a partial response, then a bisection: the attempts of the remainder carry over to its halves",
    () =>
      Effect.gen(function* () {
        // Partial while the poison record is not first; a function error once it is.
        const { report, invocations } = yield* discardedWith(
          ["r0", "r1", "poison", "r3"],
          (event) => (payloadOf(event.Records[0]!) === "poison" ? "fail" : reportPoison(event)),
          { maximumRetryAttempts: 2, bisectBatchOnFunctionError: true }
        )
        // [r0 r1 P r3] partial (attempt 1) → [P r3] fails and is split (no attempt) → [P] fails
        // (attempt 2), [P] fails (attempt 3 > 2): given up on; then [r3] succeeds.
        expect(invocations.map((invocation) => invocation.records.map(payloadOf))).toEqual([
          ["r0", "r1", "poison", "r3"],
          ["poison", "r3"],
          ["poison"],
          ["poison"],
          ["r3"]
        ])
        expect(report.requestContext.condition).toBe("RetryAttemptsExhausted")
        expect(report.requestContext.approximateInvokeCount).toBe(3)
        expect(report.responseContext.functionError).toBe("Unhandled")
        expect(report.KinesisBatchInfo.batchSize).toBe(1)
      })
  )

  it.effect("a batch that only ever failed whole counts every invocation", () =>
    Effect.gen(function* () {
      const { report, invocations } = yield* discardedWith(["r0", "r1"], () => "fail", {
        maximumRetryAttempts: 2
      })
      expect(invocations).toHaveLength(3)
      expect(report.requestContext).toMatchObject({
        condition: "RetryAttemptsExhausted",
        approximateInvokeCount: 3
      })
    })
  )
})

describe("KinesisEventSource partial batch responses", () => {
  it("reads responses as docs/aws-behaviour.md §2.4 says", () => {
    const batch = [{ sequenceNumber: "100" }, { sequenceNumber: "205" }, { sequenceNumber: "309" }]
    const read = (response: unknown) => KinesisEventSource.interpretResponse(response, batch)._tag
    for (const ok of [undefined, null, {}, { batchItemFailures: [] }, { batchItemFailures: null }, "done"]) {
      expect(read(ok)).toBe("Success")
    }
    expect(
      KinesisEventSource.interpretResponse(
        { batchItemFailures: [{ itemIdentifier: "309" }, { itemIdentifier: "205" }] },
        batch
      )
    ).toEqual({
      _tag: "Partial",
      index: 1
    })
    for (const invalid of [
      { batchItemFailures: [{ itemIdentifier: "" }] },
      { batchItemFailures: [{ itemIdentifier: null }] },
      { batchItemFailures: [{ itemIdentifer: "205" }] },
      { batchItemFailures: [{ itemIdentifier: "206" }] },
      { batchItemFailures: [{ itemIdentifier: 205 }] },
      { batchItemFailures: [{ itemIdentifier: "205" }, null] },
      { batchItemFailures: "205" }
    ]) {
      expect(read(invalid)).toBe("Invalid")
    }
  })

  it.effect("treats invalid item identifiers as a complete failure of the batch", () =>
    Effect.gen(function* () {
      const invalidResponses = [
        { batchItemFailures: [{ itemIdentifier: "" }] },
        { batchItemFailures: [{ itemIdentifier: null }] },
        { batchItemFailures: [{ itemIdentifer: "misspelled" }] },
        { batchItemFailures: [{ itemIdentifier: "12345" }] }
      ]
      for (const response of invalidResponses) {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const stream = yield* MemoryStream.make({ shardCount: 1 })
            const destination = yield* MemoryFailureDestination.make
            const outcomes = yield* write(stream, ["r0", "r1", "r2", "r3", "r4"])
            const { handler, invocations } = recordingHandler(() => response)
            const source = yield* KinesisEventSource.start(stream, handler, {
              startingPosition: "TRIM_HORIZON",
              reportBatchItemFailures: true,
              maximumRetryAttempts: 1,
              onFailure: destination
            })
            yield* drain(source)
            // The whole batch was sent again, then given up on as a whole.
            expect(invocations.map((invocation) => invocation.records.length)).toEqual([5, 5])
            const [report] = yield* destination.records
            expect(report!.KinesisBatchInfo.batchSize).toBe(5)
            expect(report!.KinesisBatchInfo.startSequenceNumber).toBe(outcomes[0]!.sequenceNumber)
            expect(report!.KinesisBatchInfo.endSequenceNumber).toBe(outcomes[4]!.sequenceNumber)
            expect(report!.requestContext.approximateInvokeCount).toBe(2)
            const counters = yield* source.counters
            expect(counters.invalidResponses).toBe(2)
            expect(counters.functionErrors).toBe(0)
            expect(counters.recordsSucceeded).toBe(0)
          })
        )
      }
    })
  )

  it.effect("ignores batchItemFailures when ReportBatchItemFailures is off", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const outcomes = yield* write(stream, ["r0", "r1", "r2"])
      const { handler, invocations } = recordingHandler(() => ({
        batchItemFailures: [{ itemIdentifier: outcomes[1]!.sequenceNumber }]
      }))
      const source = yield* KinesisEventSource.start(stream, handler, { startingPosition: "TRIM_HORIZON" })
      yield* drain(source)
      expect(invocations).toHaveLength(1)
      expect((yield* source.counters).recordsSucceeded).toBe(3)
    })
  )
})

describe("KinesisEventSource record age", () => {
  it.effect(
    "gives up on a failing batch once its oldest record is older than maximumRecordAgeInSeconds",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const destination = yield* MemoryFailureDestination.make
        const outcomes = yield* write(stream, ["r0", "r1", "r2"])
        const { handler, invocations } = recordingHandler(() => "fail")
        const source = yield* KinesisEventSource.start(stream, handler, {
          startingPosition: "TRIM_HORIZON",
          maximumRecordAgeInSeconds: 60,
          onFailure: destination
        })
        yield* TestClock.adjust("60 seconds")
        expect(yield* destination.records).toHaveLength(0)
        yield* drain(source)
        const [report] = yield* destination.records
        expect(report!.requestContext.condition).toBe("RecordAgeExceeded")
        expect(report!.responseContext.functionError).toBe("Unhandled")
        expect(report!.KinesisBatchInfo.startSequenceNumber).toBe(outcomes[0]!.sequenceNumber)
        expect(report!.KinesisBatchInfo.batchSize).toBe(3)
        expect(Date.parse(report!.timestamp)).toBeGreaterThan(60_000)
        expect(report!.requestContext.approximateInvokeCount).toBe(invocations.length)
        expect(invocations.length).toBeGreaterThan(50)
        expect(yield* source.checkpoints).toEqual(yield* stream.shardTips)
      })
  )

  it.effect("discards records that are already too old without invoking the function", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const destination = yield* MemoryFailureDestination.make
      yield* write(stream, ["stale"])
      yield* TestClock.adjust("2 minutes")
      yield* write(stream, ["fresh"])
      const { handler, invocations } = recordingHandler()
      const source = yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 1,
        maximumRecordAgeInSeconds: 60,
        onFailure: destination
      })
      yield* drain(source)
      expect(invocations.flatMap((invocation) => invocation.records.map(payloadOf))).toEqual(["fresh"])
      const [report] = yield* destination.records
      expect(report!.requestContext).toMatchObject({
        condition: "RecordAgeExceeded",
        approximateInvokeCount: 0
      })
      expect(report!.responseContext.functionError).toBeUndefined()
    })
  )
})

describe("KinesisEventSource on-failure destination", () => {
  it.effect(
    "keeps the shard blocked while the destination is down, then delivers the record and moves on",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const destination = yield* MemoryFailureDestination.make
        yield* destination.startOutage()
        const outcomes = yield* write(stream, ["bad", "good"])
        const { handler, invocations } = recordingHandler((event) =>
          event.Records.some((record) => payloadOf(record) === "bad") ? "fail" : undefined
        )
        const source = yield* KinesisEventSource.start(stream, handler, {
          startingPosition: "TRIM_HORIZON",
          batchSize: 1,
          maximumRetryAttempts: 0,
          onFailure: destination
        })
        yield* TestClock.adjust("1 minute")
        expect((yield* source.checkpoints)["shardId-000000000000"]).toBeUndefined()
        expect(yield* destination.failedSends).toBeGreaterThan(30)
        expect(invocations).toHaveLength(1)
        yield* destination.clearOutage
        yield* drain(source)
        const [report] = yield* destination.records
        expect(report!.KinesisBatchInfo.startSequenceNumber).toBe(outcomes[0]!.sequenceNumber)
        expect(invocations.map((invocation) => payloadOf(invocation.records[0]!))).toEqual(["bad", "good"])
        // What the queue carries is the documented JSON, capitals included.
        const [message] = yield* destination.messages
        expect(JSON.parse(message!)).toHaveProperty("KinesisBatchInfo.streamArn", stream.streamArn)
      })
  )

  it.effect("stores records as decoded, serializable OnFailureRecords", () =>
    Effect.gen(function* () {
      const destination = yield* MemoryFailureDestination.make
      const bad = { KinesisBatchInfo: {} } as unknown as OnFailure.OnFailureRecord
      const error = yield* Effect.flip(destination.send(bad))
      expect(error.reason).toBe("InvalidRequest")
      expect(error.isRetryable).toBe(false)
      expect(yield* destination.records).toHaveLength(0)
    })
  )
})

describe("KinesisEventSource configuration", () => {
  it.effect("refuses values outside the Lambda API ranges, naming the option", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const { handler } = recordingHandler()
      const cases: ReadonlyArray<readonly [string, Partial<KinesisEventSource.Config>]> = [
        ["batchSize", { batchSize: 0 }],
        ["batchSize", { batchSize: 10_001 }],
        ["batchSize", { batchSize: 1.5 }],
        ["maximumBatchingWindowInSeconds", { maximumBatchingWindowInSeconds: 301 }],
        ["maximumBatchingWindowInSeconds", { maximumBatchingWindowInSeconds: -1 }],
        ["maximumRetryAttempts", { maximumRetryAttempts: -2 }],
        ["maximumRetryAttempts", { maximumRetryAttempts: 10_001 }],
        ["maximumRecordAgeInSeconds", { maximumRecordAgeInSeconds: 59 }],
        ["maximumRecordAgeInSeconds", { maximumRecordAgeInSeconds: 0 }],
        ["maximumRecordAgeInSeconds", { maximumRecordAgeInSeconds: 604_801 }],
        ["pollIntervalMillis", { pollIntervalMillis: 0 }],
        [
          "startingPosition",
          { startingPosition: "AT_TIMESTAMP" as unknown as KinesisEventSource.StartingPosition }
        ]
      ]
      for (const [option, overrides] of cases) {
        const error = yield* Effect.flip(
          KinesisEventSource.start(stream, handler, { startingPosition: "TRIM_HORIZON", ...overrides })
        )
        expect(error._tag).toBe("InvalidEventSourceConfig")
        expect(error.option).toBe(option)
        expect(error.message).toContain(option)
      }
      // The range boundaries are accepted.
      yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 10_000,
        maximumBatchingWindowInSeconds: 300,
        maximumRetryAttempts: 10_000,
        maximumRecordAgeInSeconds: 604_800
      })
      yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "LATEST",
        batchSize: 1,
        maximumRetryAttempts: -1,
        maximumRecordAgeInSeconds: 60
      })
    })
  )
})
