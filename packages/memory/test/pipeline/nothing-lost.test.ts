/**
 * The property the whole design exists for: under a seeded random mix of faults — throttled
 * entries, stream outages, fallback-queue outages, OpenSearch 429s and outages, invalid records,
 * poison records and client retries of duplicates — every valid record is indexed exactly once,
 * every invalid or poison record is reported with its reason, and nothing is lost.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import * as MemoryPipeline from "../../src/MemoryPipeline.js"
import * as VirtualTime from "../../src/VirtualTime.js"
import { apiKey, record, settle, whileClockRuns } from "./harness.js"

type Kind = "valid" | "invalid" | "poison"

interface Outcome {
  readonly valid: number
  readonly invalid: number
  readonly poison: number
  readonly indexed: number
  readonly writtenMoreThanOnce: number
  readonly missing: ReadonlyArray<string>
  readonly invalidWithoutReason: number
  readonly poisonUnreported: ReadonlyArray<string>
  readonly clientRetries: number
  readonly deadLettered: number
}

const chaos = (seed: number, total: number, perRequest: number): Effect.Effect<Outcome, unknown> =>
  Effect.scoped(
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make({ index: { bulkLatency: "30 millis" } })
      // Fix the mapping of payload.value as a number before anything else arrives.
      yield* pipeline.collect(apiKey, [record("mapping-seed")])
      yield* settle(pipeline)

      const kinds = new Map<string, Kind>()
      const rejectedWithReason = new Set<string>()
      let clientRetries = 0
      let pending: Array<ReturnType<typeof record> | Record<string, unknown>> = []
      let sent = 0

      const makeRecord = Effect.gen(function* () {
        const roll = yield* Random.next
        const id = `rec-${sent++}`
        if (roll < 0.02) {
          kinds.set(id, "invalid")
          return { ...record(id), timestamp: "not a time" }
        }
        if (roll < 0.025) {
          kinds.set(id, "poison")
          return record(id, { value: "a string where the mapping says number" })
        }
        kinds.set(id, "valid")
        return record(id, { value: roll })
      })

      const injectFaults = Effect.gen(function* () {
        const roll = yield* Random.next
        const now = yield* Clock.currentTimeMillis
        if (roll < 0.03)
          yield* pipeline.stream.startOutage({
            for: `${yield* Random.nextIntBetween(2, 20, { halfOpen: true })} seconds`
          })
        else if (roll < 0.06)
          yield* pipeline.index.startOutage({
            until: now + (yield* Random.nextIntBetween(1000, 8000, { halfOpen: true }))
          })
        else if (roll < 0.08)
          yield* pipeline.queue.startOutage({
            until: now + (yield* Random.nextIntBetween(500, 3000, { halfOpen: true }))
          })
        else if (roll < 0.2) yield* pipeline.stream.failRandomEntries((yield* Random.next) * 0.3)
        else if (roll < 0.3) yield* pipeline.index.setRejectionRate((yield* Random.next) * 0.3)
        else if (roll < 0.4) {
          yield* pipeline.stream.injectEntryFailures(undefined)
          yield* pipeline.index.setRejectionRate(0)
        }
      })

      while (sent < total || pending.length > 0) {
        yield* injectFaults
        const batch = pending
        pending = []
        while (batch.length < perRequest && sent < total) batch.push(yield* makeRecord)
        // A client also re-sends a few records it already sent (duplicates).
        if ((yield* Random.next) < 0.2 && sent > 10) {
          const again = `rec-${yield* Random.nextIntBetween(0, sent - 1, { halfOpen: true })}`
          if (kinds.get(again) === "valid") batch.push(record(again, { value: 0.5 }))
        }
        const result = yield* whileClockRuns(pipeline.collect(apiKey, batch), "10 millis")
        for (const r of result.rejected) {
          const id = (batch[r.index] as { id: string }).id
          if (r.reason.length > 0) rejectedWithReason.add(id)
        }
        // What neither the stream nor the queue took, the client sends again (as it would on a 503).
        for (const u of result.unavailable) pending.push(batch[u.index]!)
        clientRetries += result.unavailable.length
        yield* TestClock.adjust("250 millis")
      }

      yield* pipeline.stream.clearFaults
      yield* pipeline.index.setRejectionRate(0)
      yield* pipeline.index.endOutage
      yield* pipeline.queue.endOutage
      yield* settle(pipeline, { step: "1 second", max: "2 hours" })
      const replay = yield* whileClockRuns(pipeline.replayFailures)
      const poisonReported = new Set(
        replay.failed.filter((f) => f.reason.includes("mapper_parsing_exception")).map((f) => f.recordId)
      )

      let valid = 0
      let invalid = 0
      let poison = 0
      let writtenMoreThanOnce = 0
      const missing: Array<string> = []
      const poisonUnreported: Array<string> = []
      let invalidWithoutReason = 0
      for (const [id, kind] of kinds) {
        const writes = yield* pipeline.index.writes(id)
        if (kind === "valid") {
          valid++
          if (writes === 0) missing.push(id)
          if (writes > 1) writtenMoreThanOnce++
        } else if (kind === "invalid") {
          invalid++
          if (!rejectedWithReason.has(id) || writes > 0) invalidWithoutReason++
        } else {
          poison++
          if (!poisonReported.has(id) || writes > 0) poisonUnreported.push(id)
        }
      }
      return {
        valid,
        invalid,
        poison,
        indexed: (yield* pipeline.index.count) - 1,
        writtenMoreThanOnce,
        missing,
        invalidWithoutReason,
        poisonUnreported,
        clientRetries,
        deadLettered: (yield* pipeline.deadLetterQueue.stats).total
      }
    })
  ).pipe(Random.withSeed(seed))

const expectNothingLost = (outcome: Outcome) => {
  expect(outcome.missing).toEqual([])
  expect(outcome.writtenMoreThanOnce).toBe(0)
  expect(outcome.indexed).toBe(outcome.valid)
  expect(outcome.invalidWithoutReason).toBe(0)
  expect(outcome.poisonUnreported).toEqual([])
  expect(outcome.deadLettered).toBe(0)
}

// CHAOS_N overrides the record count for a quick local run; CI runs the full 100,000.
const total = Number(process.env.CHAOS_N ?? 100_000)

describe("nothing is lost", () => {
  it.effect(
    "100,000 records through a seeded mix of faults",
    () =>
      Effect.gen(function* () {
        // On `VirtualTime`: the same run as on the stock TestClock, without a real millisecond per wake-up.
        const outcome = yield* VirtualTime.provide(chaos(20261124, total, 500))
        expect(outcome.valid + outcome.invalid + outcome.poison).toBe(total)
        // The mix really happened: about 2% invalid and 0.5% poison records, and some 503s for the client.
        expect(outcome.invalid).toBeGreaterThan(total * 0.01)
        expect(outcome.poison).toBeGreaterThan(total * 0.002)
        expectNothingLost(outcome)
      }),
    240_000
  )

  it.effect(
    "for any seed (property, smaller runs)",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
            const outcome = await Effect.runPromise(VirtualTime.provide(chaos(seed, 3_000, 200)))
            expectNothingLost(outcome)
          }),
          { numRuns: 5, seed: 42 }
        )
      ),
    240_000
  )
})
