/**
 * The `RecordStream` conformance suite: what every backend (in-memory, Kinesis on an emulator,
 * Kinesis itself) must do, written once. A backend proves it behaves like the others by running
 * `recordStreamSuite` with a layer that builds a fresh, empty stream of at least two shards for
 * each test and, when it can fail on demand, the `StreamFaultsService` hooks that make it fail the
 * way Kinesis fails (without them, the per-entry failure, throttling, outage and retention tests
 * are not registered).
 *
 * Covered: one answer per entry in request order; per-key order on one shard; range reads exact
 * and inclusive, across read pages; per-entry failures answered in place and not stored; whole-call
 * throttling and outages as retryable typed errors; calls split to the PutRecords limits by
 * `chunkEntries` accepted whole; requests that cannot succeed refused as `InvalidRequest`; and a
 * range lost to retention reported as `TrimmedByRetention`, never returned short.
 */
import { describe, expect } from "@effect/vitest"
import { RecordStream } from "@spillway/core"
import { Clock, Context, Effect } from "effect"
import { register, registerWithFaults, type SuiteOptions } from "./Suite.js"

/** How a test makes the backend fail. Every hook lasts until `clear`. */
export interface StreamFaultsService {
  /** Entries for which `inject` returns a code are answered `Failed` with it and not stored. */
  readonly failEntries: (
    inject: (entry: RecordStream.PutEntry) => RecordStream.EntryErrorCode | undefined
  ) => Effect.Effect<void>
  /** Every `putRecords` fails as a whole with this reason. */
  readonly failPuts: (reason: "Throttled" | "Unavailable") => Effect.Effect<void>
  /** Every record written so far falls out of retention (later writes are kept). */
  readonly trimWritten: Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

/** A key for layers that build the hooks next to the stream: pass it as is, `faults: StreamFaults`. */
export class StreamFaults extends Context.Service<StreamFaults, StreamFaultsService>()(
  "spillway/conformance/StreamFaults"
) {}

/** `layer` builds a fresh, empty stream of at least two shards. */
export type RecordStreamSuiteOptions<R = never> = SuiteOptions<
  void,
  RecordStream.RecordStream,
  StreamFaultsService,
  R
>

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const entry = (partitionKey: string, data: string | Uint8Array = partitionKey): RecordStream.PutEntry => ({
  partitionKey,
  data: typeof data === "string" ? encoder.encode(data) : data
})

const keys = (n: number, prefix = "key") => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

interface Placed {
  readonly entry: RecordStream.PutEntry
  readonly shardId: string
  readonly sequenceNumber: string
}

const byShard = (placed: ReadonlyArray<Placed>): Map<string, Array<Placed>> => {
  const shards = new Map<string, Array<Placed>>()
  for (const p of placed) shards.set(p.shardId, [...(shards.get(p.shardId) ?? []), p])
  for (const list of shards.values())
    list.sort((a, b) => RecordStream.compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber))
  return shards
}

/** Puts `entries` the way callers do (split by `chunkEntries`, call after call); all must be stored. */
const putStored = (entries: ReadonlyArray<RecordStream.PutEntry>) =>
  Effect.gen(function* () {
    const stream = yield* RecordStream.RecordStream
    const placed: Array<Placed> = []
    for (const chunk of RecordStream.chunkEntries(entries)) {
      const outcomes = yield* stream.putRecords(chunk)
      expect(outcomes).toHaveLength(chunk.length)
      outcomes.forEach((outcome, i) => {
        if (outcome._tag !== "Stored")
          throw new Error(`entry ${chunk[i]!.partitionKey} not stored: ${outcome.message}`)
        placed.push({ entry: chunk[i]!, shardId: outcome.shardId, sequenceNumber: outcome.sequenceNumber })
      })
    }
    return placed
  })

const view = (record: { readonly partitionKey: string; readonly data: Uint8Array }) => ({
  partitionKey: record.partitionKey,
  data: decoder.decode(record.data)
})

/** The shard holding the most of `placed`, with its records in sequence order. */
const busiest = (
  placed: ReadonlyArray<Placed>
): { readonly shardId: string; readonly records: Array<Placed> } => {
  const [shardId, records] = [...byShard(placed)].sort((a, b) => b[1].length - a[1].length)[0]!
  return { shardId, records }
}

type Body<R> = Effect.Effect<void, unknown, RecordStream.RecordStream | R>

/** How a group of cases registers its tests: on a fresh stream, with or without the fault hooks. */
interface Runners<R> {
  readonly run: (name: string, body: () => Body<R>) => void
  readonly runWithFaults: (name: string, body: (faults: StreamFaultsService) => Body<R>) => void
}

export const recordStreamSuite = <R = never>(options: RecordStreamSuiteOptions<R>): void => {
  const test = register(options)
  const testWithFaults = registerWithFaults(options)
  const runners: Runners<R> = {
    run: (name, body) => test(name, body, undefined),
    runWithFaults: (name, body) => testWithFaults(name, body, undefined)
  }

  describe(`RecordStream conformance: ${options.name}`, () => {
    putRecordsCases(runners)
    rangeReadCases(runners)
    putFaultCases(runners)
    limitCases(runners)
    retentionCases(runners)
  })
}

/** One answer per entry in request order; per-key order on one shard. */
const putRecordsCases = <R>({ run }: Runners<R>): void => {
  run("answers once per entry, in request order, with decimal sequence numbers", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      const entries = keys(40).map((k) => entry(k))
      const outcomes = yield* stream.putRecords(entries)
      expect(outcomes).toHaveLength(40)
      const placed = outcomes.map((outcome, i) => {
        expect(outcome._tag).toBe("Stored")
        if (outcome._tag !== "Stored") throw new Error("not stored")
        expect(outcome.sequenceNumber).toMatch(/^(0|[1-9]\d{0,128})$/)
        return { entry: entries[i]!, shardId: outcome.shardId, sequenceNumber: outcome.sequenceNumber }
      })
      // 40 keys hashed over ≥ 2 shards: all on one shard has probability 2^-39.
      expect(byShard(placed).size).toBeGreaterThanOrEqual(2)
      // Outcome i answers entry i: reading each record back by its own sequence number finds that entry.
      for (const p of placed.slice(0, 5)) {
        const [read] = yield* stream.readRange({
          shardId: p.shardId,
          startSequenceNumber: p.sequenceNumber,
          endSequenceNumber: p.sequenceNumber
        })
        expect(read && view(read)).toEqual(view(p.entry))
      }
      expect(stream.streamArn).toMatch(/^arn:aws[a-z-]*:kinesis:[a-z0-9-]*:\d{12}:stream\/.+/)
    })
  )

  run("keeps each partition key on one shard, in the order of the calls that wrote it", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      const placed: Array<Placed> = []
      for (let round = 0; round < 5; round++) {
        placed.push(...(yield* putStored(["a", "b", "c"].map((k) => entry(k, `${k}-${round}`)))))
      }
      for (const key of ["a", "b", "c"]) {
        const mine = placed.filter((p) => p.entry.partitionKey === key)
        expect(new Set(mine.map((p) => p.shardId)).size).toBe(1)
        for (let i = 1; i < mine.length; i++) {
          expect(
            RecordStream.compareSequenceNumbers(mine[i - 1]!.sequenceNumber, mine[i]!.sequenceNumber)
          ).toBe(-1)
        }
        const read = yield* stream.readRange({
          shardId: mine[0]!.shardId,
          startSequenceNumber: mine[0]!.sequenceNumber,
          endSequenceNumber: mine.at(-1)!.sequenceNumber
        })
        expect(read.filter((r) => r.partitionKey === key).map((r) => decoder.decode(r.data))).toEqual(
          [0, 1, 2, 3, 4].map((round) => `${key}-${round}`)
        )
      }
    })
  )
}

/** Range reads exact and inclusive, and across read pages. */
const rangeReadCases = <R>({ run }: Runners<R>): void => {
  run("reads a range back exactly: both ends inclusive, in sequence order, nothing else", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      const placed: Array<Placed> = []
      for (let call = 0; call < 3; call++) {
        placed.push(...(yield* putStored(keys(10, `call${call}`).map((k) => entry(k, `data of ${k}`)))))
      }
      const { shardId, records } = busiest(placed)
      expect(records.length).toBeGreaterThanOrEqual(6)
      const from = 2
      const to = records.length - 3
      const before = yield* Clock.currentTimeMillis
      const read = yield* stream.readRange({
        shardId,
        startSequenceNumber: records[from]!.sequenceNumber,
        endSequenceNumber: records[to]!.sequenceNumber
      })
      expect(read.map((r) => ({ shardId: r.shardId, sequenceNumber: r.sequenceNumber, ...view(r) }))).toEqual(
        records
          .slice(from, to + 1)
          .map((p) => ({ shardId, sequenceNumber: p.sequenceNumber, ...view(p.entry) }))
      )
      for (const r of read) {
        // Epoch milliseconds of the write: not after this read started, and not minutes before it
        // (a value in seconds would be decades before). One second of clock skew is allowed.
        expect(r.approximateArrivalTimestamp).toBeLessThanOrEqual(before + 1000)
        expect(r.approximateArrivalTimestamp).toBeGreaterThanOrEqual(before - 10 * 60 * 1000)
      }
      const single = yield* stream.readRange({
        shardId,
        startSequenceNumber: records[from]!.sequenceNumber,
        endSequenceNumber: records[from]!.sequenceNumber
      })
      expect(single.map(view)).toEqual([view(records[from]!.entry)])
    })
  )

  run("reads a range longer than one read page", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      const placed = yield* putStored(keys(150, "long").map((k) => entry(k)))
      const { shardId, records } = busiest(placed)
      const read = yield* stream.readRange({
        shardId,
        startSequenceNumber: records[0]!.sequenceNumber,
        endSequenceNumber: records.at(-1)!.sequenceNumber
      })
      expect(read.map((r) => r.sequenceNumber)).toEqual(records.map((p) => p.sequenceNumber))
    })
  )
}

/** Per-entry failures answered in place and not stored; whole-call throttling and outages. */
const putFaultCases = <R>({ runWithFaults }: Runners<R>): void => {
  runWithFaults(
    "answers per-entry failures in place, stores the other entries, and not the failed ones",
    (faults) =>
      Effect.gen(function* () {
        const stream = yield* RecordStream.RecordStream
        yield* faults.failEntries((e) =>
          e.partitionKey.startsWith("hot-")
            ? "ProvisionedThroughputExceededException"
            : e.partitionKey.startsWith("sick-")
              ? "InternalFailure"
              : undefined
        )
        const entries = keys(24, "k").map((k, i) =>
          entry(i % 4 === 1 ? `hot-${k}` : i % 4 === 3 ? `sick-${k}` : k)
        )
        const outcomes = yield* stream.putRecords(entries)
        expect(outcomes.map((o) => (o._tag === "Failed" ? o.errorCode : "Stored"))).toEqual(
          entries.map((e) =>
            e.partitionKey.startsWith("hot-")
              ? "ProvisionedThroughputExceededException"
              : e.partitionKey.startsWith("sick-")
                ? "InternalFailure"
                : "Stored"
          )
        )
        for (const o of outcomes) if (o._tag === "Failed") expect(o.message.length).toBeGreaterThan(0)

        // Retrying exactly the failed entries, as callers do, stores them; nothing was stored twice.
        yield* faults.clear
        const failed = entries.filter((_, i) => outcomes[i]!._tag === "Failed")
        const retried = yield* putStored(failed)
        const stored: Array<Placed> = outcomes.flatMap((o, i) =>
          o._tag === "Stored"
            ? [{ entry: entries[i]!, shardId: o.shardId, sequenceNumber: o.sequenceNumber }]
            : []
        )
        for (const [shardId, records] of byShard([...stored, ...retried])) {
          const read = yield* stream.readRange({
            shardId,
            startSequenceNumber: records[0]!.sequenceNumber,
            endSequenceNumber: records.at(-1)!.sequenceNumber
          })
          expect(read.map(view)).toEqual(records.map((p) => view(p.entry)))
        }
      })
  )

  runWithFaults(
    "fails a throttled call as a whole, retryable, and takes the same call afterwards",
    (faults) =>
      Effect.gen(function* () {
        const stream = yield* RecordStream.RecordStream
        yield* faults.failPuts("Throttled")
        const error = yield* Effect.flip(stream.putRecords([entry("t-1"), entry("t-2")]))
        expect(error._tag).toBe("RecordStreamError")
        expect(error.reason).toBe("Throttled")
        expect(error.isRetryable).toBe(true)
        yield* faults.clear
        const outcomes = yield* stream.putRecords([entry("t-1"), entry("t-2")])
        expect(outcomes.map((o) => o._tag)).toEqual(["Stored", "Stored"])
      })
  )

  runWithFaults("fails calls during an outage as Unavailable, retryable", (faults) =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      yield* faults.failPuts("Unavailable")
      const error = yield* Effect.flip(stream.putRecords([entry("o-1")]))
      expect(error.reason).toBe("Unavailable")
      expect(error.isRetryable).toBe(true)
      yield* faults.clear
      expect((yield* stream.putRecords([entry("o-1")]))[0]?._tag).toBe("Stored")
    })
  )
}

/** Calls split to the PutRecords limits accepted whole; requests that cannot succeed refused. */
const limitCases = <R>({ run }: Runners<R>): void => {
  run("accepts calls split to the limits by chunkEntries: 1,200 entries, and 6 MiB of 512 KiB records", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      const many = keys(1200, "n").map((k) => entry(k))
      expect(RecordStream.chunkEntries(many)).toHaveLength(3)
      const placed = yield* putStored(many)
      expect(new Set(placed.map((p) => `${p.shardId}/${p.sequenceNumber}`)).size).toBe(1200)

      const big = keys(12, "big").map((k, i) => entry(k, new Uint8Array(512 * 1024).fill(i + 1)))
      expect(RecordStream.chunkEntries(big).map((c) => c.length)).toEqual([9, 3])
      const stored = yield* putStored(big)
      for (const [shardId, records] of byShard(stored)) {
        const read = yield* stream.readRange({
          shardId,
          startSequenceNumber: records[0]!.sequenceNumber,
          endSequenceNumber: records.at(-1)!.sequenceNumber
        })
        expect(read.map((r) => [r.partitionKey, r.data.byteLength, r.data[0], r.data.at(-1)])).toEqual(
          records.map((p) => [p.entry.partitionKey, 512 * 1024, p.entry.data[0], p.entry.data[0]])
        )
      }
    })
  )

  run("refuses what cannot succeed as InvalidRequest: an empty call, a record over 1 MiB, a bad range", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      expect((yield* Effect.flip(stream.putRecords([]))).reason).toBe("InvalidRequest")
      const tooBig = yield* Effect.flip(stream.putRecords([entry("huge", new Uint8Array(1024 * 1024 + 1))]))
      expect(tooBig.reason).toBe("InvalidRequest")
      expect(tooBig.isRetryable).toBe(false)

      const [p] = yield* putStored([entry("range-key")])
      const bad = yield* Effect.flip(
        stream.readRange({
          shardId: p!.shardId,
          startSequenceNumber: "12ab",
          endSequenceNumber: p!.sequenceNumber
        })
      )
      expect(bad.reason).toBe("InvalidRequest")
      const reversed = yield* Effect.flip(
        stream.readRange({
          shardId: p!.shardId,
          startSequenceNumber: p!.sequenceNumber,
          endSequenceNumber: (BigInt(p!.sequenceNumber) - 1n).toString()
        })
      )
      expect(reversed.reason).toBe("InvalidRequest")
    })
  )

  run("fails a range read on a shard the stream does not have with NotFound", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      const [p] = yield* putStored([entry("nf")])
      const error = yield* Effect.flip(
        stream.readRange({
          shardId: "shardId-000000000099",
          startSequenceNumber: p!.sequenceNumber,
          endSequenceNumber: p!.sequenceNumber
        })
      )
      expect(error.reason).toBe("NotFound")
      expect(error.isRetryable).toBe(false)
    })
  )
}

/** A range lost to retention reported as `TrimmedByRetention`, never returned short. */
const retentionCases = <R>({ runWithFaults }: Runners<R>): void => {
  runWithFaults(
    "reports a range lost to retention as TrimmedByRetention, and still reads newer records",
    (faults) =>
      Effect.gen(function* () {
        const stream = yield* RecordStream.RecordStream
        const old = yield* putStored(keys(12, "old").map((k) => entry(k)))
        yield* faults.trimWritten
        const fresh = yield* putStored(keys(12, "new").map((k) => entry(k)))
        const { shardId, records } = busiest(old)
        const lost = yield* Effect.flip(
          stream.readRange({
            shardId,
            startSequenceNumber: records[0]!.sequenceNumber,
            endSequenceNumber: records.at(-1)!.sequenceNumber
          })
        )
        expect(lost.reason).toBe("TrimmedByRetention")
        expect(lost.isRetryable).toBe(false)

        // The keys are fixed, so which shard they hash to is too: this shard holds new records as well.
        const kept = byShard(fresh).get(shardId) ?? []
        expect(kept.length).toBeGreaterThan(0)
        const read = yield* stream.readRange({
          shardId,
          startSequenceNumber: kept[0]!.sequenceNumber,
          endSequenceNumber: kept.at(-1)!.sequenceNumber
        })
        expect(read.map(view)).toEqual(kept.map((p) => view(p.entry)))
      })
  )
}
