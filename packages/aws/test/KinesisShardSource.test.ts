/**
 * `KinesisShardSource` against kinesalite: what the event source mapping emulation reads — every
 * shard's records in sequence order, paged with `after`, a checkpoint moved back re-reading from
 * there, and tips that see records no `getRecords` call has read yet.
 */
import { describe, expect, it } from "@effect/vitest"
import type { RecordStream, ShardReader } from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { Effect } from "effect"
import * as KinesisClient from "../src/KinesisClient.js"
import * as KinesisRecordStream from "../src/KinesisRecordStream.js"
import * as KinesisShardSource from "../src/KinesisShardSource.js"
import { serversForFile } from "./support/servers.js"
import { createStream, uniqueName } from "./support/streams.js"

const { credentials, region } = Emulators
const servers = serversForFile("kinesalite")

const decode = (record: RecordStream.StreamRecord) => new TextDecoder().decode(record.data)

/** A fresh stream of `shardCount` shards, its `KinesisRecordStream` and `KinesisShardSource`. */
const setUp = (shardCount: number) =>
  Effect.gen(function* () {
    // Through the package's client config: kinesalite speaks JSON, not the SDK's default CBOR.
    const client = yield* KinesisClient.make({ region, endpoint: servers.kinesalite.endpoint, credentials })
    const streamName = uniqueName("shard-source")
    const streamArn = yield* createStream(client, streamName, shardCount)
    const options = { streamName, streamArn }
    const stream = yield* Effect.provideService(
      KinesisRecordStream.make(options),
      KinesisClient.KinesisClient,
      client
    )
    const source = yield* Effect.provideService(
      KinesisShardSource.make(options),
      KinesisClient.KinesisClient,
      client
    )
    return { stream, source, streamArn }
  })

/** Every record of a shard, read `limit` at a time with `after` = the last record of the previous page. */
const readShard = (source: ShardReader.Service, shardId: string, limit: number) =>
  Effect.gen(function* () {
    const records: Array<RecordStream.StreamRecord> = []
    let pages = 0
    while (true) {
      const { records: page } = yield* source.getRecords(shardId, {
        after: records.at(-1)?.sequenceNumber,
        limit
      })
      if (page.length === 0) return { records, pages }
      expect(page.length).toBeLessThanOrEqual(limit)
      records.push(...page)
      pages++
    }
  })

describe("KinesisShardSource on kinesalite", () => {
  it.live(
    "returns what KinesisRecordStream stored, per shard in sequence order, paging with after",
    () =>
      Effect.gen(function* () {
        const { stream, source, streamArn } = yield* setUp(3)
        expect(source.shardIds).toHaveLength(3)
        expect(source.streamArn).toBe(streamArn)
        expect(source.region).toBe(region)
        expect(source.accountId).toMatch(/^\d{12}$/)

        const entries = Array.from({ length: 120 }, (_, i) => ({
          partitionKey: `key-${i % 17}`,
          data: new TextEncoder().encode(`record-${i}`)
        }))
        const outcomes = yield* stream.putRecords(entries)
        const stored = outcomes.flatMap((o, i) =>
          o._tag === "Stored" ? [{ ...o, data: `record-${i}` }] : []
        )
        expect(stored).toHaveLength(120)

        let total = 0
        for (const shardId of source.shardIds) {
          const { records, pages } = yield* readShard(source, shardId, 7)
          // What PutRecords stored in this shard, in the order it was stored (= sequence order).
          const expected = stored.filter((o) => o.shardId === shardId)
          expect(records.map((r) => r.sequenceNumber)).toEqual(expected.map((o) => o.sequenceNumber))
          expect(records.map(decode)).toEqual(expected.map((o) => o.data))
          expect(records.every((r) => r.shardId === shardId)).toBe(true)
          expect(pages).toBe(Math.ceil(expected.length / 7))
          total += records.length
        }
        expect(total).toBe(120)
      }),
    30_000
  )

  it.live("re-reads from an earlier checkpoint and from the trim horizon without skipping a record", () =>
    Effect.gen(function* () {
      const { stream, source } = yield* setUp(1)
      const shardId = source.shardIds[0]!
      yield* stream.putRecords(
        Array.from({ length: 10 }, (_, i) => ({
          partitionKey: "k",
          data: new TextEncoder().encode(`r${i}`)
        }))
      )
      const first = yield* source.getRecords(shardId, { limit: 6 })
      expect(first.records.map(decode)).toEqual(["r0", "r1", "r2", "r3", "r4", "r5"])
      // A partial batch response moves the checkpoint back to just before the failed record (r3).
      const again = yield* source.getRecords(shardId, {
        after: first.records[2]!.sequenceNumber,
        limit: 10
      })
      expect(again.records.map(decode)).toEqual(["r3", "r4", "r5", "r6", "r7", "r8", "r9"])
      expect(again.millisBehindLatest).toBe(0)
      const fromStart = yield* source.getRecords(shardId, { limit: 2 })
      expect(fromStart.records.map(decode)).toEqual(["r0", "r1"])
      const tail = yield* source.getRecords(shardId, {
        after: again.records.at(-1)!.sequenceNumber,
        limit: 5
      })
      expect(tail.records).toEqual([])
    })
  )

  it.live("reports each shard's newest record as its tip, including records nobody read yet", () =>
    Effect.gen(function* () {
      const { stream, source } = yield* setUp(2)
      const empty = yield* source.shardTips
      expect(Object.keys(empty).sort()).toEqual([...source.shardIds].sort())
      expect(Object.values(empty).every((tip) => tip === undefined)).toBe(true)

      const put = (n: number, prefix: string) =>
        stream.putRecords(
          Array.from({ length: n }, (_, i) => ({
            partitionKey: `${prefix}-${i}`,
            data: new TextEncoder().encode(`${prefix}-${i}`)
          }))
        )
      const newestPerShard = (
        outcomes: ReadonlyArray<RecordStream.PutOutcome>,
        into: Map<string, string>
      ) => {
        for (const o of outcomes) if (o._tag === "Stored") into.set(o.shardId, o.sequenceNumber)
        return into
      }
      const newest = newestPerShard(yield* put(40, "a"), new Map())
      expect(yield* source.shardTips).toEqual(
        Object.fromEntries(source.shardIds.map((id) => [id, newest.get(id)]))
      )
      // The tips move on with later puts.
      newestPerShard(yield* put(25, "b"), newest)
      expect(yield* source.shardTips).toEqual(
        Object.fromEntries(source.shardIds.map((id) => [id, newest.get(id)]))
      )
    })
  )

  it.live("refuses an unknown shard and a limit outside 1–10,000 with typed errors", () =>
    Effect.gen(function* () {
      const { source } = yield* setUp(1)
      const unknown = yield* Effect.flip(source.getRecords("shardId-000000000099", { limit: 10 }))
      expect(unknown.reason).toBe("NotFound")
      const tooMany = yield* Effect.flip(source.getRecords(source.shardIds[0]!, { limit: 10_001 }))
      expect(tooMany.reason).toBe("InvalidRequest")
    })
  )
})
