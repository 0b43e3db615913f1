import { describe, expect, it } from "@effect/vitest"
import { DocumentSink } from "@spillway/core"
import { Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryIndex from "../src/MemoryIndex.js"

const index = (id: string, document: Record<string, unknown>): MemoryIndex.BulkAction => ({
  action: "index",
  id,
  document
})
const create = (id: string, document: Record<string, unknown>): MemoryIndex.BulkAction => ({
  action: "create",
  id,
  document
})
const statuses = (response: MemoryIndex.BulkResponse) =>
  response.items.map((item) => MemoryIndex.resultOf(item).status)
const errorOf = (response: MemoryIndex.BulkResponse, i: number) => {
  const item = response.items[i]
  return item === undefined ? undefined : MemoryIndex.resultOf(item).error
}

describe("MemoryIndex.bulk", () => {
  it.effect("keeps one document per id: a second write replaces it and bumps its version", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      const first = yield* search.bulk([index("a", { v: 1 }), index("b", { v: 1 })])
      expect(first).toMatchObject({ errors: false, took: 0 })
      expect(first.items[0]).toEqual({
        index: {
          _index: "telemetry",
          _id: "a",
          _version: 1,
          result: "created",
          _shards: { total: 2, successful: 1, failed: 0 },
          _seq_no: 0,
          _primary_term: 1,
          status: 201
        }
      })
      const second = yield* search.bulk([index("a", { v: 2 })])
      expect(MemoryIndex.resultOf(second.items[0]!)).toMatchObject({
        status: 200,
        result: "updated",
        _version: 2
      })
      expect(yield* search.count).toBe(2)
      expect(yield* search.get("a")).toEqual({ id: "a", version: 2, source: { v: 2 } })
      expect(yield* search.writes("a")).toBe(2)
      expect(yield* search.writes("b")).toBe(1)
      expect(yield* search.writes("never")).toBe(0)
      expect(yield* search.get("never")).toBeUndefined()
    })
  )

  it.effect("answers 409 to a create on an existing id and leaves the document alone", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      const response = yield* search.bulk([
        create("x1", { v: 1 }),
        create("x1", { v: 2 }),
        create("x2", { v: 3 })
      ])
      expect(response.errors).toBe(true)
      expect(statuses(response)).toEqual([201, 409, 201])
      expect(response.items[1]).toHaveProperty("create")
      expect(errorOf(response, 1)).toMatchObject({
        type: "version_conflict_engine_exception",
        reason: "[x1]: version conflict, document already exists (current version [1])",
        index: "telemetry",
        shard: "0"
      })
      expect(yield* search.get("x1")).toMatchObject({ version: 1, source: { v: 1 } })
      expect(yield* search.writes("x1")).toBe(1)
    })
  )

  it.effect(
    "fixes a field's type on first sight and refuses a conflicting value with 400 naming the field",
    () =>
      Effect.gen(function* () {
        const search = yield* MemoryIndex.make()
        const response = yield* search.bulk([
          index("1", { value: 1, host: { name: "web-1", up: true } }),
          index("2", { value: "abc" }),
          index("3", { value: "12", host: { name: 7 } }),
          index("4", { host: { up: 5 } }),
          index("5", { host: "web-1" }),
          index("6", { value: 2, fresh: "ignored", host: { name: {} } }),
          index("7", { "host.up": "maybe" }),
          index("8", { tags: ["a", "b"], nothing: null })
        ])
        expect(statuses(response)).toEqual([201, 400, 201, 400, 400, 400, 400, 201])
        expect(errorOf(response, 1)?.type).toBe("mapper_parsing_exception")
        expect(errorOf(response, 1)?.reason).toContain("failed to parse field [value] of type [long]")
        expect(errorOf(response, 3)?.reason).toContain("[host.up] of type [boolean]")
        expect(errorOf(response, 4)?.reason).toContain("object mapping for [host]")
        expect(errorOf(response, 5)?.reason).toContain("[host.name] of type [text]")
        // Dotted names are paths into objects.
        expect(errorOf(response, 6)?.reason).toContain("[host.up]")
        const mapping = yield* search.mapping
        expect(Object.fromEntries(mapping)).toEqual({
          value: "long",
          host: "object",
          "host.name": "text",
          "host.up": "boolean",
          tags: "text"
        })
        // A refused document adds no field and is not stored.
        expect(mapping.has("fresh")).toBe(false)
        expect(yield* search.get("2")).toBeUndefined()
        expect((yield* search.stats).parseErrors).toBe(5)
      })
  )

  it.effect("detects dates, refuses metadata fields and enforces the total fields limit", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make({ totalFieldsLimit: 5 })
      const response = yield* search.bulk([
        index("1", { ts: "2026-06-01T00:00:00Z" }),
        index("2", { ts: "soon" }),
        index("3", { ts: "2026-06-01" }),
        index("4", { _id: "inside" }),
        index("5", { a: 1, b: 2, c: 3, d: 4, e: 5 }),
        index("6", { a: 1, b: 2, c: 3, d: 4 })
      ])
      expect(statuses(response)).toEqual([201, 400, 201, 400, 400, 201])
      expect(errorOf(response, 1)?.reason).toContain("[ts] of type [date]")
      expect(errorOf(response, 3)?.reason).toContain("Field [_id] is a metadata field")
      expect(errorOf(response, 4)).toMatchObject({ type: "illegal_argument_exception" })
      expect(errorOf(response, 4)?.reason).toContain("Limit of total fields [5]")
    })
  )

  it.effect("indexes what the wire carries: undefined fields are absent, dates are strings", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.bulk([index("a", { gone: undefined, at: new Date(0) })])
      expect((yield* search.get("a"))?.source).toEqual({ at: "1970-01-01T00:00:00.000Z" })
      expect((yield* search.mapping).get("at")).toBe("date")
    })
  )

  it.effect("refuses a request over the size limit whole, with 413, indexing nothing", () =>
    Effect.gen(function* () {
      const actions = [index("a", { v: "x".repeat(100) }), index("b", { v: 1 })]
      const limit = Buffer.byteLength(MemoryIndex.toNdjson("telemetry", actions))
      const tight = yield* MemoryIndex.make({ maxRequestBytes: limit - 1 })
      const error = yield* Effect.flip(tight.bulk(actions))
      expect(error).toMatchObject({ _tag: "DocumentSinkError", sink: "opensearch", reason: "TooLarge" })
      expect(error.isRetryable).toBe(false)
      expect(error.message).toContain("413")
      expect(yield* tight.count).toBe(0)
      expect((yield* tight.mapping).size).toBe(0)
      // Exactly at the limit is fine.
      const exact = yield* MemoryIndex.make({ maxRequestBytes: limit })
      expect((yield* exact.bulk(actions)).errors).toBe(false)
      // The default limit is the 10 MiB of small instance types.
      const standard = yield* MemoryIndex.make()
      expect(
        (yield* Effect.flip(standard.bulk([index("big", { v: "y".repeat(10 * 1024 * 1024) })]))).reason
      ).toBe("TooLarge")
    })
  )

  it.effect("refuses empty requests and ids OpenSearch would not take", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      for (const actions of [
        [],
        [index("i".repeat(513), {})],
        [index("ok", {}), index("é".repeat(257), {})]
      ]) {
        expect((yield* Effect.flip(search.bulk(actions))).reason).toBe("InvalidRequest")
      }
      expect((yield* search.bulk([index("i".repeat(512), {})])).errors).toBe(false)
      // An empty id fails only its own item, as on a real node (this test used to expect the whole
      // request refused; MemoryIndex.differential.opensearch.test.ts showed OpenSearch does not).
      const empty = yield* search.bulk([index("", {}), index("fine", {})])
      expect(statuses(empty)).toEqual([400, 201])
      expect(errorOf(empty, 0)).toMatchObject({
        type: "illegal_argument_exception",
        reason: "if _id is specified it must not be empty"
      })
    })
  )
})

describe("MemoryIndex faults", () => {
  it.effect("rejects roughly the configured fraction of items with 429, reproducibly under a seed", () =>
    Effect.gen(function* () {
      const actions = Array.from({ length: 2000 }, (_, i) => index(`d${i}`, { i }))
      const run = () =>
        Effect.gen(function* () {
          const search = yield* MemoryIndex.make({ rejectionRate: 0.2 })
          const response = yield* search.bulk(actions)
          return { response, count: yield* search.count }
        }).pipe(Random.withSeed(42))
      const { response, count } = yield* run()
      const rejected = statuses(response).filter((s) => s === 429).length
      expect(rejected).toBeGreaterThan(300)
      expect(rejected).toBeLessThan(500)
      expect(count).toBe(2000 - rejected)
      expect(errorOf(response, statuses(response).indexOf(429))?.type).toBe("es_rejected_execution_exception")
      expect(statuses((yield* run()).response)).toEqual(statuses(response))
    })
  )

  it.effect("scripts 429 bursts: the next N items, or every item until a time", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.rejectNext(2)
      expect(statuses(yield* search.bulk([index("a", {}), index("b", {}), index("c", {})]))).toEqual([
        429, 429, 201
      ])
      yield* search.rejectUntil(10_000)
      yield* TestClock.adjust("9999 millis")
      expect(statuses(yield* search.bulk([index("a", {})]))).toEqual([429])
      yield* TestClock.adjust("1 millis")
      expect(statuses(yield* search.bulk([index("a", {})]))).toEqual([201])
      expect((yield* search.stats).rejections).toBe(3)
    })
  )

  it.effect("fails whole requests with 503 during an outage", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.startOutage()
      const error = yield* Effect.flip(search.bulk([index("a", {})]))
      expect(error.reason).toBe("Unavailable")
      expect(error.isRetryable).toBe(true)
      expect(error.message).toContain("503")
      yield* search.endOutage
      yield* search.bulk([index("a", {})])
      yield* search.startOutage({ until: 60_000 })
      expect((yield* Effect.flip(search.bulk([index("b", {})]))).reason).toBe("Unavailable")
      yield* TestClock.adjust("1 minute")
      yield* search.bulk([index("b", {})])
      expect(yield* search.count).toBe(2)
    })
  )

  it.effect("loses every document and the mapping when the index is deleted", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.bulk([index("a", { v: 1 }), index("b", { v: 1 })])
      yield* search.deleteIndex
      expect(yield* search.count).toBe(0)
      expect(yield* search.get("a")).toBeUndefined()
      expect((yield* search.mapping).size).toBe(0)
      // The replay recreates it: a fresh document (version 1), a fresh mapping; the write history stays.
      const replay = yield* search.bulk([index("a", { v: "now a string" })])
      expect(MemoryIndex.resultOf(replay.items[0]!)).toMatchObject({ status: 201, _version: 1 })
      expect(yield* search.writes("a")).toBe(2)
    })
  )

  it.effect("takes the configured latency per request, on the clock", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make({ bulkLatency: "200 millis" })
      const request = yield* Effect.forkChild(search.bulk([index("a", {})]))
      yield* TestClock.adjust("199 millis")
      expect(request.pollUnsafe()).toBeUndefined()
      expect(yield* search.count).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(request)).took).toBe(200)
      yield* search.setBulkLatency("1 second")
      const slower = yield* Effect.forkChild(search.bulk([index("b", {})]))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(slower)).took).toBe(1000)
    })
  )
})

describe("MemoryIndex as a DocumentSink", () => {
  const documents = (
    ids: ReadonlyArray<string>,
    body: (id: string) => Record<string, unknown> = (id) => ({ id })
  ) => ids.map((id): DocumentSink.Document => ({ id, body: body(id) }))

  it.effect("maps item outcomes to Written, Retryable and Rejected, in order", () =>
    Effect.gen(function* () {
      const sink = yield* DocumentSink.DocumentSink
      const control = yield* MemoryIndex.MemoryIndex
      expect(sink.name).toBe("search")
      yield* control.rejectNext(1)
      const outcomes = yield* sink.write([
        { id: "a", body: { n: 1 } },
        { id: "b", body: { n: 2 } },
        { id: "c", body: { n: "not a number" } }
      ])
      expect(outcomes.map((o) => o._tag)).toEqual(["Retryable", "Written", "Rejected"])
      expect(outcomes[0]).toMatchObject({
        reason: expect.stringContaining("429 es_rejected_execution_exception")
      })
      expect(outcomes[2]).toMatchObject({ reason: expect.stringContaining("400 mapper_parsing_exception") })
      expect(yield* sink.write([])).toEqual([])
      expect((yield* control.stats).requests).toBe(1)
    }).pipe(Effect.provide(MemoryIndex.layerMemory({ name: "search" })))
  )

  it.effect("is idempotent: writing the same documents again leaves one copy of each", () =>
    Effect.gen(function* () {
      const sink = yield* DocumentSink.DocumentSink
      const control = yield* MemoryIndex.MemoryIndex
      const batch = documents(["a", "b", "c"])
      yield* sink.write(batch)
      yield* sink.write(batch)
      expect(yield* control.count).toBe(3)
      expect(yield* control.writes("b")).toBe(2)
      expect((yield* control.get("b"))?.version).toBe(2)
    }).pipe(Effect.provide(MemoryIndex.layerMemory()))
  )

  it.effect("fails the whole write with a DocumentSinkError when the request fails", () =>
    Effect.gen(function* () {
      const sink = yield* DocumentSink.DocumentSink
      const control = yield* MemoryIndex.MemoryIndex
      yield* control.startOutage()
      expect(yield* Effect.flip(sink.write(documents(["a"])))).toMatchObject({
        sink: "opensearch",
        reason: "Unavailable"
      })
      yield* control.endOutage
      const tooLarge = yield* Effect.flip(sink.write(documents(["a", "b"], () => ({ v: "z".repeat(600) }))))
      expect(tooLarge.reason).toBe("TooLarge")
      expect(tooLarge.isRetryable).toBe(false)
    }).pipe(Effect.provide(MemoryIndex.layerMemory({ maxRequestBytes: 1000 })))
  )

  it("reads item statuses as OpenSearch adapters should", () => {
    const item = (status: number): MemoryIndex.BulkItemResult => ({
      _index: "i",
      _id: "x",
      status,
      ...(status >= 300
        ? { error: { type: `type-${status}`, reason: "why", index: "i", shard: "0", index_uuid: "u" } }
        : {})
    })
    expect([200, 201, 409, 429, 503, 400, 404].map((s) => MemoryIndex.toWriteOutcome(item(s))._tag)).toEqual([
      "Written",
      "Written",
      "Written",
      "Retryable",
      "Retryable",
      "Rejected",
      "Rejected"
    ])
  })
})

describe("MemoryIndex snapshots", () => {
  it.effect("takes a frozen copy: later writes and deleteIndex leave it as it was", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.bulk([index("a", { v: 1 }), index("b", { v: 1 })])
      yield* TestClock.adjust("90 minutes")
      const snapshot = yield* search.takeSnapshot
      expect(snapshot).toEqual({
        name: expect.stringContaining("1970-01-01T01:30:00.000Z"),
        takenAt: 90 * 60_000,
        documents: 2
      })

      yield* search.bulk([index("a", { v: 2 }), index("c", { v: 3 })])
      yield* search.deleteIndex
      yield* search.bulk([index("d", { v: "text now" })])
      expect(yield* search.snapshots).toEqual([snapshot])

      // OpenSearch restores only into a deleted index: the one the write recreated is refused.
      const refused = yield* Effect.flip(search.restoreSnapshot(snapshot.name))
      expect(refused).toMatchObject({ _tag: "IndexExists", index: "telemetry" })
      expect(yield* search.get("d")).toBeDefined()
      yield* search.deleteIndex
      yield* search.restoreSnapshot(snapshot.name)
      expect(yield* search.count).toBe(2)
      expect(yield* search.get("a")).toEqual({ id: "a", version: 1, source: { v: 1 } })
      expect(yield* search.get("b")).toEqual({ id: "b", version: 1, source: { v: 1 } })
      // A restore replaces the index: what was written after the snapshot is gone.
      expect(yield* search.get("c")).toBeUndefined()
      expect(yield* search.get("d")).toBeUndefined()
      // The write history is the index's, not the snapshot's.
      expect(yield* search.writes("a")).toBe(2)
    })
  )

  it.effect("restores the mapping too: a value that conflicts with it is refused again", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make({ totalFieldsLimit: 4 })
      yield* search.bulk([index("a", { value: 1, host: { name: "web-1" } })])
      const snapshot = yield* search.takeSnapshot
      yield* search.deleteIndex
      // In the fresh index `value` is free to be text, and new fields fit.
      expect(statuses(yield* search.bulk([index("poison", { value: "not a number", x: 1, y: 2 })]))).toEqual([
        201
      ])

      yield* search.deleteIndex
      yield* search.restoreSnapshot(snapshot.name)
      expect(Object.fromEntries(yield* search.mapping)).toEqual({
        value: "long",
        host: "object",
        "host.name": "text"
      })
      expect(yield* search.get("poison")).toBeUndefined()
      const again = yield* search.bulk([index("poison", { value: "not a number" })])
      expect(statuses(again)).toEqual([400])
      expect(errorOf(again, 0)?.reason).toContain("failed to parse field [value] of type [long]")
      // The field count is the snapshot's: 4 used (host.name counts its keyword), none left.
      const full = yield* search.bulk([index("e", { extra: true })])
      expect(errorOf(full, 0)?.reason).toContain("Limit of total fields [4]")
      expect(statuses(yield* search.bulk([index("b", { value: 2, host: { name: "web-2" } })]))).toEqual([201])
    })
  )

  it.effect("lists snapshots with their names, times and document counts, oldest first", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      expect(yield* search.snapshots).toEqual([])
      const empty = yield* search.takeSnapshot
      yield* search.bulk([index("a", {}), index("b", {}), index("c", {})])
      yield* TestClock.adjust("1 hour")
      const hourly = yield* search.takeSnapshot
      // Two in the same millisecond still get distinct names.
      const again = yield* search.takeSnapshot
      expect(yield* search.snapshots).toEqual([
        { name: empty.name, takenAt: 0, documents: 0 },
        { name: hourly.name, takenAt: 3_600_000, documents: 3 },
        { name: again.name, takenAt: 3_600_000, documents: 3 }
      ])
      expect(new Set([empty.name, hourly.name, again.name]).size).toBe(3)

      // Restoring the empty one empties the index; restoring is repeatable.
      yield* search.deleteIndex
      yield* search.restoreSnapshot(empty.name)
      expect(yield* search.count).toBe(0)
      yield* search.deleteIndex
      yield* search.restoreSnapshot(hourly.name)
      yield* search.deleteIndex
      yield* search.restoreSnapshot(hourly.name)
      expect(yield* search.count).toBe(3)
    })
  )

  it.effect("a document written after a restore does not change the snapshot it came from", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.bulk([index("a", { v: 1 })])
      const snapshot = yield* search.takeSnapshot
      yield* search.deleteIndex
      yield* search.restoreSnapshot(snapshot.name)
      yield* search.bulk([index("a", { v: 2 }), index("b", { v: 2 })])
      expect(yield* search.get("a")).toMatchObject({ version: 2, source: { v: 2 } })
      yield* search.deleteIndex
      yield* search.restoreSnapshot(snapshot.name)
      expect(yield* search.documents).toEqual([{ id: "a", version: 1, source: { v: 1 } }])
      expect((yield* search.snapshots)[0]?.documents).toBe(1)
    })
  )

  it.effect("fails SnapshotMissing for a name it never took, and leaves the index alone", () =>
    Effect.gen(function* () {
      const search = yield* MemoryIndex.make()
      yield* search.bulk([index("a", {})])
      yield* search.takeSnapshot
      const error = yield* Effect.flip(search.restoreSnapshot("snapshot-nope"))
      expect(error).toBeInstanceOf(MemoryIndex.SnapshotMissing)
      expect(error).toMatchObject({ _tag: "SnapshotMissing", snapshot: "snapshot-nope" })
      expect(error.message).toBe("no snapshot named snapshot-nope")
      expect(yield* search.count).toBe(1)
      // Another index's snapshot is not this one's.
      const other = yield* MemoryIndex.make()
      yield* TestClock.adjust("1 hour")
      const foreign = yield* other.takeSnapshot
      expect((yield* Effect.flip(search.restoreSnapshot(foreign.name)))._tag).toBe("SnapshotMissing")
      expect(yield* search.get("a")).toMatchObject({ version: 1 })
    })
  )
})
