/**
 * The in-memory archive: Firehose's S3 layout (hour prefixes after the oldest record, listing by
 * hour, optional gzip), outages that end on their own on TestClock, and names that are the same
 * on every run.
 */
import { gunzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Archive } from "@spillway/core"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryArchive from "../src/MemoryArchive.js"

const at = (iso: string) => Date.parse(iso)
const bytes = (value: string) => new TextEncoder().encode(value)
const text = (data: Uint8Array) => new TextDecoder().decode(data)
const record = (data: string, arrivedAt: number): Archive.ArchivedRecord => ({ data: bytes(data), arrivedAt })

const uuidShape = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(\.gz)?$/

describe("MemoryArchive write, list, read", () => {
  it.effect("writes an object under its hour, lists it and reads its records back in order", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      const when = at("2026-11-24T10:15:30.250Z")
      const key = yield* archive.write([record('{"id":"a"}', when), record('{"id":"b"}', when + 10)])

      expect(archive.bucket).toBe("spillway-backup")
      expect(key.startsWith("2026/11/24/10/spillway-backup-1-2026-11-24-10-15-30-")).toBe(true)
      expect(key).toMatch(uuidShape)
      expect(yield* archive.list({ from: when, to: when })).toEqual([key])
      expect((yield* archive.read(key)).map(text)).toEqual(['{"id":"a"}', '{"id":"b"}'])
      const objects = yield* archive.objects
      expect(objects.map((o) => o.key)).toEqual([key])
      expect(text(objects[0]!.bytes)).toBe('{"id":"a"}\n{"id":"b"}\n')
    })
  )

  it.effect("uses the bucket, prefix, stream name and version it is given", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make({
        bucket: "my-bucket",
        prefix: "raw/",
        deliveryStreamName: "telemetry-backup",
        deliveryStreamVersion: 3
      })
      const when = at("2026-11-24T10:15:30Z")
      const key = yield* archive.write([record("x", when)])
      expect(archive.bucket).toBe("my-bucket")
      expect(key.startsWith("raw/2026/11/24/10/telemetry-backup-3-2026-11-24-10-15-30-")).toBe(true)
      expect(yield* archive.list({ from: when, to: when })).toEqual([key])
    })
  )

  it.effect("files an object under the hour of its oldest record, even when its records span two hours", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      const late = at("2026-11-24T10:59:59.500Z")
      const next = at("2026-11-24T11:00:00.100Z")
      // The oldest record is not the first one (records of several shards, say).
      const key = yield* archive.write([record("b", next), record("a", late), record("c", next + 5)])

      expect(key.startsWith("2026/11/24/10/spillway-backup-1-2026-11-24-10-59-59-")).toBe(true)
      expect(yield* archive.list({ from: late, to: late })).toEqual([key])
      expect(yield* archive.list({ from: next, to: next })).toEqual([])
      expect((yield* archive.read(key)).map(text)).toEqual(["b", "a", "c"])
    })
  )

  it.effect("lists the hours of both ends of the range, in key order, and nothing outside it", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      const keys = new Map<string, string>()
      // Written out of time order, two objects in hour 11.
      for (const iso of [
        "2026-11-24T12:00:00.000Z",
        "2026-11-24T09:59:59.999Z",
        "2026-11-24T11:30:00.000Z",
        "2026-11-24T10:00:00.000Z",
        "2026-11-24T11:05:00.000Z",
        "2026-11-24T13:00:00.000Z"
      ]) {
        keys.set(iso, yield* archive.write([record(iso, at(iso))]))
      }
      const listed = yield* archive.list({
        from: at("2026-11-24T10:59:59.999Z"),
        to: at("2026-11-24T12:00:00.000Z")
      })
      expect(listed).toEqual([
        keys.get("2026-11-24T10:00:00.000Z"),
        keys.get("2026-11-24T11:05:00.000Z"),
        keys.get("2026-11-24T11:30:00.000Z"),
        keys.get("2026-11-24T12:00:00.000Z")
      ])
      expect(
        yield* archive.list({ from: at("2026-11-24T00:00:00Z"), to: at("2026-11-24T08:59:59.999Z") })
      ).toEqual([])
      expect(
        yield* archive.list({ from: at("2026-11-24T14:00:00Z"), to: at("2026-11-24T20:00:00Z") })
      ).toEqual([])
    })
  )

  it.effect("only lists objects under its own prefix", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make({ prefix: "raw/" })
      const when = at("2026-11-24T10:00:00Z")
      const key = yield* archive.write([record("x", when)])
      expect(key.startsWith("raw/")).toBe(true)
      expect(yield* archive.list({ from: when, to: when })).toEqual([key])
    })
  )

  it.effect("refuses a backwards or too long range as InvalidRequest", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      const backwards = yield* Effect.flip(archive.list({ from: at("2026-11-24T11:00:00Z"), to: 0 }))
      expect(backwards.reason).toBe("InvalidRequest")
      const tooLong = yield* Effect.flip(
        archive.list({ from: 0, to: Archive.maxListedHours * Archive.hourMillis })
      )
      expect(tooLong.reason).toBe("InvalidRequest")
    })
  )

  it.effect("refuses an empty object and a record with a newline, storing nothing", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      expect((yield* Effect.flip(archive.write([]))).reason).toBe("InvalidRequest")
      const newline = yield* Effect.flip(archive.write([record("ok", 0), record("a\nb", 0)]))
      expect(newline.reason).toBe("InvalidRequest")
      expect(newline.message).toContain("record 1")
      expect(yield* archive.objects).toEqual([])
    })
  )

  it.effect("answers NotFound, not retryable, for a key it does not hold", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      const key = yield* archive.write([record("x", 0)])
      const error = yield* Effect.flip(archive.read(`${key}-missing`))
      expect(error).toBeInstanceOf(Archive.ArchiveError)
      expect(error.reason).toBe("NotFound")
      expect(error.isRetryable).toBe(false)
      expect(error.message).toContain(`${key}-missing`)
    })
  )
})

describe("MemoryArchive GZIP", () => {
  it.effect("stores real gzip under .gz keys and reads the records back", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make({ compression: "GZIP" })
      const when = at("2026-11-24T10:15:30Z")
      const lines = Array.from({ length: 50 }, (_, i) => `{"id":"r-${i}","payload":{"value":${i}}}`)
      const key = yield* archive.write(lines.map((line, i) => record(line, when + i)))

      expect(key.endsWith(".gz")).toBe(true)
      expect(key).toMatch(uuidShape)
      const [stored] = yield* archive.objects
      // The gzip magic number, and a body that gunzips to the newline-delimited records.
      expect([stored!.bytes[0], stored!.bytes[1]]).toEqual([0x1f, 0x8b])
      expect(text(gunzipSync(stored!.bytes))).toBe(`${lines.join("\n")}\n`)
      expect((yield* archive.read(key)).map(text)).toEqual(lines)
      expect(yield* archive.list({ from: when, to: when })).toEqual([key])
    })
  )

  it.effect("stores uncompressed objects as plain newline-delimited bytes with no extension", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make({ compression: "UNCOMPRESSED" })
      const key = yield* archive.write([record("a", 0), record("b", 0)])
      expect(key.endsWith(".gz")).toBe(false)
      expect(text((yield* archive.objects)[0]!.bytes)).toBe("a\nb\n")
    })
  )
})

describe("MemoryArchive outages", () => {
  it.effect("fails every call Unavailable (retryable) until endOutage, storing nothing meanwhile", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      const before = yield* archive.write([record("before", 0)])
      yield* archive.startOutage()

      const errors = [
        yield* Effect.flip(archive.write([record("during", 0)])),
        yield* Effect.flip(archive.list({ from: 0, to: 0 })),
        yield* Effect.flip(archive.read(before))
      ]
      for (const error of errors) {
        expect(error.reason).toBe("Unavailable")
        expect(error.isRetryable).toBe(true)
      }
      // An outage with no end outlasts any amount of time.
      yield* TestClock.adjust("10 days")
      expect((yield* Effect.flip(archive.list({ from: 0, to: 0 }))).reason).toBe("Unavailable")
      expect((yield* archive.objects).map((o) => o.key)).toEqual([before])

      yield* archive.endOutage
      const after = yield* archive.write([record("after", 0)])
      expect((yield* archive.read(before)).map(text)).toEqual(["before"])
      expect((yield* archive.read(after)).map(text)).toEqual(["after"])
      expect(yield* archive.list({ from: 0, to: 0 })).toEqual([before, after].sort())
    })
  )

  it.effect("ends an outage by itself when the clock reaches `until`", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      yield* TestClock.adjust("1 minute")
      const now = yield* Clock.currentTimeMillis
      yield* archive.startOutage({ until: now + 5000 })

      yield* TestClock.adjust(4999)
      const error = yield* Effect.flip(archive.write([record("x", 0)]))
      expect(error.reason).toBe("Unavailable")
      expect(yield* archive.objects).toEqual([])

      yield* TestClock.adjust(1)
      const key = yield* archive.write([record("x", 0)])
      expect((yield* archive.read(key)).map(text)).toEqual(["x"])
    })
  )

  it.effect("a new outage replaces an earlier one, and endOutage ends a timed one early", () =>
    Effect.gen(function* () {
      const archive = yield* MemoryArchive.make()
      yield* archive.startOutage({ until: 60_000 })
      yield* archive.endOutage
      yield* archive.write([record("x", 0)])
      yield* archive.startOutage({ until: 1000 })
      yield* archive.startOutage()
      yield* TestClock.adjust("1 hour")
      expect((yield* Effect.flip(archive.write([record("y", 0)]))).reason).toBe("Unavailable")
    })
  )
})

describe("MemoryArchive naming", () => {
  it.effect(
    "gives the same keys for the same writes in a second archive, and a distinct key per object",
    () =>
      Effect.gen(function* () {
        const writes = [
          [record("a", at("2026-11-24T10:00:00Z"))],
          [record("b", at("2026-11-24T10:00:00Z"))],
          [record("c", at("2026-11-24T10:00:00.500Z")), record("d", at("2026-11-24T12:00:00Z"))],
          [record("e", at("2026-11-25T00:00:00Z"))]
        ]
        const keysOf = Effect.gen(function* () {
          const archive = yield* MemoryArchive.make({ compression: "GZIP" })
          const keys: Array<string> = []
          for (const records of writes) keys.push(yield* archive.write(records))
          return keys
        })
        const first = yield* keysOf
        const second = yield* keysOf
        expect(second).toEqual(first)
        // Three objects whose oldest record arrived in the same second still get distinct names.
        expect(new Set(first).size).toBe(writes.length)
        for (const key of first) expect(key).toMatch(uuidShape)
      })
  )
})
