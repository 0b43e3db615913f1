/**
 * One poison record in a 1,000-record batch: with bisect, partial batch response and a retry
 * limit the shard moves on and the record's batch metadata reaches the on-failure destination;
 * without them the shard is blocked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryPipeline from "../../src/MemoryPipeline.js"
import { apiKey, record, records, settle } from "./harness.js"

// The index maps `payload.value` as a number from the first document; a string there is a
// mapping error (400) on every attempt: a poison record.
const batchWithPoison = () => {
  const batch = records(1000)
  batch[500] = record("poison", { value: "not a number" })
  return batch
}

const oneShard = { stream: { shardCount: 1 } }

describe("poison records", () => {
  it.effect(
    "are isolated: every other record is indexed, the poison record goes to on-failure, the shard moves on",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* MemoryPipeline.make({
          ...oneShard,
          processor: { batchSize: 1000, maximumRetryAttempts: 2 }
        })
        // Index one well-formed document first so the mapping of payload.value is a number.
        yield* pipeline.collect(apiKey, [record("first")])
        yield* settle(pipeline)
        // The shard takes 1,000 records a second, and the first document may still be in this
        // second's budget: the batch starts a second of its own, so the stream takes all of it.
        yield* TestClock.adjust("1 second")
        const batch = batchWithPoison()
        expect((yield* pipeline.collect(apiKey, batch)).stored).toBe(1000)
        const after = records(100, "after")
        yield* pipeline.collect(apiKey, after)

        const took = yield* settle(pipeline)
        expect(yield* pipeline.index.count).toBe(1 + 999 + 100)
        expect(yield* pipeline.index.get("poison")).toBeUndefined()

        const failures = yield* pipeline.failures.records
        expect(failures.length).toBeGreaterThanOrEqual(1)
        const poisonSeq = (yield* pipeline.stream.records).find(
          (r) => r.partitionKey === "poison"
        )!.sequenceNumber
        const covering = failures.filter(
          (f) =>
            BigInt(f.KinesisBatchInfo.startSequenceNumber) <= BigInt(poisonSeq) &&
            BigInt(poisonSeq) <= BigInt(f.KinesisBatchInfo.endSequenceNumber)
        )
        expect(covering).toHaveLength(1)
        expect(covering[0]?.requestContext.condition).toBe("RetryAttemptsExhausted")
        expect(covering[0]?.KinesisBatchInfo.streamArn).toBe(pipeline.stream.streamArn)
        // Within the retry budget: a few polls (bisect steps and 2 retries), not minutes.
        expect(Duration.toSeconds(took)).toBeLessThan(60)
        const counters = yield* pipeline.processor.counters
        expect(counters.batchesDiscarded).toBe(failures.length)

        // The replay tool reads the range back: good records in it are skipped, the poison one fails again, with its reason.
        const replayed = yield* pipeline.replayFailures
        expect(replayed.failed.map((f) => f.recordId)).toEqual(["poison"])
        expect(replayed.failed[0]?.reason).toContain("mapper_parsing_exception")
        expect(replayed.unreadable).toEqual([])
        expect(yield* pipeline.index.count).toBe(1100)
      })
  )

  it.effect("without bisect and partial batch response, the poison record blocks its shard", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make({
        ...oneShard,
        processor: {
          batchSize: 1000,
          bisectBatchOnFunctionError: false,
          reportBatchItemFailures: false,
          maximumRetryAttempts: -1
        }
      })
      yield* pipeline.collect(apiKey, [record("first")])
      yield* settle(pipeline)
      yield* pipeline.collect(apiKey, batchWithPoison())
      const after = records(100, "after")
      yield* pipeline.collect(apiKey, after)

      // Three simulated minutes: the recommended mapping is done with the same batch within seconds.
      for (let i = 0; i < 180; i++) yield* TestClock.adjust("1 second")

      expect(yield* pipeline.isIdle).toBe(false)
      // The batch is retried again and again; nothing behind it is reached.
      for (const r of after) expect(yield* pipeline.index.get(r.id)).toBeUndefined()
      expect(yield* pipeline.failures.records).toEqual([])
      expect((yield* pipeline.processor.counters).functionErrors).toBeGreaterThan(10)
    })
  )
})
