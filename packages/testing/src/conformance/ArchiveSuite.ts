/**
 * The `Archive` conformance suite: what every backend (in memory, S3 on an emulator, S3 itself)
 * must do, written once. A backend runs `archiveSuite` with a layer that builds a fresh, empty
 * archive with the given `Layout` for each test, and — when it can fail on demand — the
 * `ArchiveFaultsService` hooks too. Every test runs once per compression (`UNCOMPRESSED`, `GZIP`).
 *
 * Covered: object names in Firehose's layout (hour prefix of the oldest record, stream name,
 * version, timestamp; the UUID part is opaque but unique); records read back in order and
 * byte-exact (non-ASCII UTF-8, binary, large); listing inclusive of both ends' hours, in key
 * order, across a day boundary, and nothing outside; writes that cannot be read back whole refused
 * as `InvalidRequest` and nothing stored; missing objects as `NotFound`; backwards ranges as
 * `InvalidRequest`; `readEnvelopes` over what the collector writes, with non-envelopes reported
 * by key and index; and, with faults, outages as retryable errors that store nothing.
 */
import { describe, expect } from "@effect/vitest"
import { Archive, Telemetry } from "@spillway/core"
import { Context, Effect, Schema } from "effect"
import { register, registerWithFaults, type SuiteOptions } from "./Suite.js"

/** How a test makes the backend fail. Every hook lasts until `clear`. */
export interface ArchiveFaultsService {
  /** Every call fails as a whole, as during an S3 outage (503s). */
  readonly outage: Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

/** A key for layers that build the hooks next to the archive: pass it as is, `faults: ArchiveFaults`. */
export class ArchiveFaults extends Context.Service<ArchiveFaults, ArchiveFaultsService>()(
  "spillway/conformance/ArchiveFaults"
) {}

export type Compression = NonNullable<Archive.Layout["compression"]>

/** `layer` builds a fresh, empty archive with the given `Layout`. */
export interface ArchiveSuiteOptions<R = never>
  extends SuiteOptions<Archive.Layout, Archive.Archive, ArchiveFaultsService, R> {
  /** The compressions to run the suite with. @default both */
  readonly compressions?: ReadonlyArray<Compression>
}

/** Runs the suite against one backend, once per compression. */
export const archiveSuite = <R = never>(options: ArchiveSuiteOptions<R>): void => {
  for (const compression of options.compressions ?? (["UNCOMPRESSED", "GZIP"] as const)) {
    describe(`Archive conformance: ${options.name} (${compression})`, () => {
      suiteFor(compression, options)
    })
  }
}

const at = (iso: string) => Date.parse(iso)
const encoder = new TextEncoder()
const utf8 = (text: string) => encoder.encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)
const hex = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("hex")
const record = (data: string | Uint8Array, arrivedAt: number): Archive.ArchivedRecord => ({
  data: typeof data === "string" ? utf8(data) : data,
  arrivedAt
})

/** Deterministic bytes without 0x0a (a small xorshift), for binary records. */
const binary = (length: number, seed: number): Uint8Array => {
  const bytes = new Uint8Array(length)
  let x = seed | 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    const byte = x & 0xff
    bytes[i] = byte === 0x0a ? 0x0b : byte
  }
  return bytes
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const envelope = (n: number, receivedAt: number): Telemetry.TelemetryEnvelope =>
  Schema.decodeUnknownSync(Telemetry.TelemetryEnvelope)({
    tenant: "acme",
    receivedAt,
    record: {
      id: `r-${n}`,
      type: "metric",
      timestamp: "2026-11-24T10:00:00.000Z",
      payload: { n, text: "é ✓ 日本", nested: { list: [1, 2, 3] } }
    }
  })

/** The UUID part of `key`, after checking everything around it is `objectKey`'s. */
const uuidOf = (key: string, keyLayout: Archive.Layout, oldest: number): string => {
  const [head, tail] = Archive.objectKey(keyLayout, oldest, "\u0000").split("\u0000") as [string, string]
  expect(key).toMatch(new RegExp(`^${escapeRegExp(head)}[^/]+${escapeRegExp(tail)}$`))
  const uuid = key.slice(head.length, key.length - tail.length)
  expect(Archive.objectKey(keyLayout, oldest, uuid)).toBe(key)
  return uuid
}

type Body<R> = Effect.Effect<void, unknown, Archive.Archive | R>

/** What a group of cases needs: the suite's compression and layout, and how to register a test. */
interface Cases<R> {
  readonly compression: Compression
  readonly layout: Archive.Layout
  /** How an object's name ends for this compression. */
  readonly extension: string
  /** Registers a test on a fresh archive with `withLayout`, `layout` unless given. */
  readonly run: (title: string, body: () => Body<R>, withLayout?: Archive.Layout) => void
  readonly runWithFaults: (title: string, body: (faults: ArchiveFaultsService) => Body<R>) => void
}

const suiteFor = <R>(compression: Compression, options: ArchiveSuiteOptions<R>): void => {
  const layout: Archive.Layout = {
    prefix: "backup/",
    deliveryStreamName: "telemetry-backup",
    deliveryStreamVersion: 2,
    compression
  }
  const test = register(options)
  // A backend without fault hooks (a real bucket) runs the rest of the suite; nothing to register.
  const testWithFaults = registerWithFaults(options)
  const cases: Cases<R> = {
    compression,
    layout,
    extension: compression === "GZIP" ? ".gz" : "",
    run: (title, body, withLayout = layout) => test(title, body, withLayout),
    runWithFaults: (title, body) => testWithFaults(title, body, layout)
  }

  namingCases(cases)
  readBackCases(cases)
  listingCases(cases)
  refusalCases(cases)
  readEnvelopesCases(cases)
  outageCases(cases)
}

/** Object names in Firehose's layout, with the layout's own values or its defaults. */
const namingCases = <R>({ run, layout, extension, compression }: Cases<R>): void => {
  run("names an object after the hour and second of its oldest record, whatever its position", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const oldest = at("2026-11-24T21:59:58.120Z")
      const records = [
        record("next hour", at("2026-11-24T22:00:01.000Z")),
        record("oldest", oldest),
        record("same hour", at("2026-11-24T21:59:59.999Z"))
      ]
      const key = yield* archive.write(records)
      expect(key.startsWith("backup/2026/11/24/21/telemetry-backup-2-2026-11-24-21-59-58-")).toBe(true)
      expect(key.endsWith(extension)).toBe(true)
      uuidOf(key, layout, oldest)

      // Filed under the oldest record's hour only, though it holds a record of the next hour.
      expect(yield* archive.list({ from: oldest, to: oldest })).toEqual([key])
      expect(
        yield* archive.list({ from: at("2026-11-24T22:00:00Z"), to: at("2026-11-24T22:59:59Z") })
      ).toEqual([])
      expect((yield* archive.read(key)).map(text)).toEqual(["next hour", "oldest", "same hour"])

      // The same records again: another object, under another name, both kept.
      const again = yield* archive.write(records)
      expect(again).not.toBe(key)
      expect(uuidOf(again, layout, oldest)).not.toBe(uuidOf(key, layout, oldest))
      expect(yield* archive.list({ from: oldest, to: oldest })).toEqual([key, again].sort())
      expect((yield* archive.read(again)).map(text)).toEqual(["next hour", "oldest", "same hour"])
    })
  )

  run(
    "names objects with the layout's defaults: no prefix, version 1",
    () =>
      Effect.gen(function* () {
        const archive = yield* Archive.Archive
        const when = at("2027-01-01T00:00:00.000Z")
        const key = yield* archive.write([record("x", when)])
        expect(key.startsWith("2027/01/01/00/spillway-1-2027-01-01-00-00-00-")).toBe(true)
        uuidOf(key, { deliveryStreamName: "spillway", compression }, when)
        expect(yield* archive.list({ from: when, to: when })).toEqual([key])
      }),
    { deliveryStreamName: "spillway", compression }
  )
}

/** Records read back in order and byte-exact, and unchanged by what callers do with their bytes. */
const readBackCases = <R>({ run }: Cases<R>): void => {
  run("reads records back in order and byte-exact: UTF-8, binary, carriage returns, large", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const when = at("2026-11-24T10:15:00.000Z")
      const allButNewline = Uint8Array.from({ length: 255 }, (_, i) => (i < 0x0a ? i : i + 1))
      const data = [
        utf8('{"id":"a","text":"é ✓ 日本語 🚀 \\n stays escaped"}'),
        allButNewline,
        Uint8Array.of(0xff, 0xfe, 0xc3, 0x28, 0x00, 0x0d),
        utf8("ends with a carriage return\r"),
        utf8("  padded  "),
        Uint8Array.of(0x0d),
        binary(300 * 1024, 42),
        ...Array.from({ length: 200 }, (_, i) => utf8(`{"n":${i}}`))
      ]
      const key = yield* archive.write(data.map((d, i) => record(d, when + i)))
      const read = yield* archive.read(key)
      expect(read).toHaveLength(data.length)
      for (const r of read) expect(r).toBeInstanceOf(Uint8Array)
      expect(read.map(hex)).toEqual(data.map(hex))
    })
  )

  run("keeps what it stored: changing written or read bytes afterwards changes nothing", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const data = utf8("original")
      const key = yield* archive.write([record(data, at("2026-11-24T10:00:00Z"))])
      data.fill(0x21)
      const first = yield* archive.read(key)
      expect(first.map(text)).toEqual(["original"])
      first[0]!.fill(0x21)
      expect((yield* archive.read(key)).map(text)).toEqual(["original"])
    })
  )
}

/** Listing inclusive of both ends' hours, in key order, across a day boundary, and nothing outside. */
const listingCases = <R>({ run }: Cases<R>): void => {
  run("lists the hours of both ends of the range, in key order, and nothing outside them", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const keys = new Map<string, string>()
      // Written out of time order; two objects in hour 10.
      for (const iso of [
        "2026-11-24T12:00:00.000Z",
        "2026-11-24T10:45:00.000Z",
        "2026-11-24T08:59:59.999Z",
        "2026-11-24T11:59:59.999Z",
        "2026-11-24T09:00:00.000Z",
        "2026-11-24T10:30:00.000Z"
      ]) {
        keys.set(iso, yield* archive.write([record(iso, at(iso))]))
      }
      const key = (iso: string) => keys.get(iso)!

      // `from` and `to` fall inside their hours: the whole of both hours is listed.
      const listed = yield* archive.list({ from: at("2026-11-24T09:40:00Z"), to: at("2026-11-24T11:05:00Z") })
      expect(listed).toEqual(
        [
          key("2026-11-24T09:00:00.000Z"),
          key("2026-11-24T10:30:00.000Z"),
          key("2026-11-24T10:45:00.000Z"),
          key("2026-11-24T11:59:59.999Z")
        ].sort()
      )
      expect(listed).toEqual([...listed].sort())

      const hour10 = yield* archive.list({ from: at("2026-11-24T10:50:00Z"), to: at("2026-11-24T10:50:00Z") })
      expect(hour10).toEqual([key("2026-11-24T10:30:00.000Z"), key("2026-11-24T10:45:00.000Z")].sort())

      const everything = yield* archive.list({
        from: at("2026-11-24T00:00:00Z"),
        to: at("2026-11-24T23:59:59.999Z")
      })
      expect(everything).toEqual([...keys.values()].sort())
    })
  )

  run("lists across a day, month and year boundary", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const one = (iso: string) => archive.write([record(iso, at(iso))])
      const before = yield* one("2026-12-31T22:59:59.999Z")
      const late = yield* one("2026-12-31T23:30:00.000Z")
      const early = yield* one("2027-01-01T00:15:00.000Z")
      const after = yield* one("2027-01-01T01:00:00.000Z")
      expect(late.startsWith("backup/2026/12/31/23/")).toBe(true)
      expect(early.startsWith("backup/2027/01/01/00/")).toBe(true)
      const listed = yield* archive.list({ from: at("2026-12-31T23:59:00Z"), to: at("2027-01-01T00:00:00Z") })
      expect(listed).toEqual([late, early])
      expect(listed).not.toContain(before)
      expect(listed).not.toContain(after)
    })
  )

  run("lists nothing for an empty archive or an hour with no objects", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const when = at("2026-11-24T10:00:00Z")
      expect(yield* archive.list({ from: when, to: when + 5 * Archive.hourMillis })).toEqual([])
      yield* archive.write([record("x", when)])
      expect(yield* archive.list({ from: when + Archive.hourMillis, to: when + Archive.hourMillis })).toEqual(
        []
      )
      expect(yield* archive.list({ from: when - 1, to: when - 1 })).toEqual([])
    })
  )
}

/** Writes that cannot be read back whole, missing objects and backwards ranges refused. */
const refusalCases = <R>({ run, layout }: Cases<R>): void => {
  run(
    "refuses a write of no records, or with an empty record or one containing a newline, and stores nothing",
    () =>
      Effect.gen(function* () {
        const archive = yield* Archive.Archive
        const when = at("2026-11-24T10:00:00Z")
        const empty = yield* Effect.flip(archive.write([]))
        expect(empty._tag).toBe("ArchiveError")
        expect(empty.reason).toBe("InvalidRequest")
        expect(empty.isRetryable).toBe(false)

        // An empty record would read back as nothing; one with a newline as two records.
        for (const bad of ["", "two\nlines", "\n", "trailing\n", "\r\n"]) {
          const error = yield* Effect.flip(
            archive.write([record("fine", when), record(bad, when + 1), record("also fine", when + 2)])
          )
          expect(error.reason).toBe("InvalidRequest")
          expect(error.isRetryable).toBe(false)
        }
        expect(
          yield* archive.list({ from: when - Archive.hourMillis, to: when + Archive.hourMillis })
        ).toEqual([])
      })
  )

  run("fails NotFound, not retryable, for a key it does not hold", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const when = at("2026-11-24T10:00:00Z")
      const missing = Archive.objectKey(layout, when, "00000000-0000-4000-8000-000000000000")
      const error = yield* Effect.flip(archive.read(missing))
      expect(error._tag).toBe("ArchiveError")
      expect(error.reason).toBe("NotFound")
      expect(error.isRetryable).toBe(false)

      // A key next to one it holds is still missing.
      const key = yield* archive.write([record("x", when)])
      expect((yield* Effect.flip(archive.read(`${key}x`))).reason).toBe("NotFound")
      expect((yield* Effect.flip(archive.read(key.slice(0, -1)))).reason).toBe("NotFound")
    })
  )

  run("refuses a backwards range (and one over a year) as InvalidRequest", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const when = at("2026-11-24T10:00:00Z")
      yield* archive.write([record("x", when)])
      const backwards = yield* Effect.flip(archive.list({ from: when + Archive.hourMillis, to: when }))
      expect(backwards.reason).toBe("InvalidRequest")
      expect(backwards.isRetryable).toBe(false)
      const overAYear = yield* Effect.flip(
        archive.list({ from: when, to: when + Archive.maxListedHours * Archive.hourMillis })
      )
      expect(overAYear.reason).toBe("InvalidRequest")
    })
  )
}

/** `readEnvelopes` over what the collector writes, with non-envelopes reported by key and index. */
const readEnvelopesCases = <R>({ run }: Cases<R>): void => {
  run("readEnvelopes returns the envelopes of the range in key then record order, and reports the rest", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const hour10 = at("2026-11-24T10:05:00Z")
      const hour11 = at("2026-11-24T11:20:00Z")
      const envelopes = Array.from({ length: 5 }, (_, n) => envelope(n, hour10 + n))
      const encoded = envelopes.map(Telemetry.encodeEnvelope)

      // Written newest first: the answer follows key order, not write order.
      const second = yield* archive.write([
        record(encoded[2]!, hour11),
        record(Uint8Array.of(0xc3, 0x28), hour11 + 1),
        record('{"tenant":"acme"}', hour11 + 2),
        record(encoded[3]!, hour11 + 3)
      ])
      const first = yield* archive.write([
        record(encoded[0]!, hour10),
        record("not json", hour10 + 1),
        record(encoded[1]!, hour10 + 2)
      ])
      // Outside the range on both sides.
      yield* archive.write([record(encoded[4]!, at("2026-11-24T09:59:59.999Z"))])
      yield* archive.write([record(encoded[4]!, at("2026-11-24T12:00:00.000Z"))])

      const contents = yield* Archive.readEnvelopes({
        from: at("2026-11-24T10:00:00Z"),
        to: at("2026-11-24T11:59:59.999Z")
      })
      expect(contents.objects).toBe(2)
      expect(contents.envelopes).toEqual(envelopes.slice(0, 4))
      expect(contents.undecodable.map(({ key, index }) => ({ key, index }))).toEqual([
        { key: first, index: 1 },
        { key: second, index: 1 },
        { key: second, index: 2 }
      ])
      for (const { reason } of contents.undecodable) expect(reason.length).toBeGreaterThan(0)
      expect(contents.undecodable[1]?.reason).toContain("UTF-8")

      expect(
        yield* Archive.readEnvelopes({ from: at("2026-11-25T10:00:00Z"), to: at("2026-11-25T12:00:00Z") })
      ).toEqual({ envelopes: [], undecodable: [], objects: 0 })
    })
  )
}

/** With faults: outages as retryable errors that store nothing. */
const outageCases = <R>({ runWithFaults }: Cases<R>): void => {
  runWithFaults("fails every call during an outage as retryable, stores nothing, and works after", (faults) =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const when = at("2026-11-24T10:00:00Z")
      const range = { from: when, to: when }
      const kept = yield* archive.write([record("before", when)])

      yield* faults.outage
      const error = yield* Effect.flip(archive.write([record("during", when + 1)]))
      expect(error._tag).toBe("ArchiveError")
      expect(error.isRetryable).toBe(true)
      expect(["Throttled", "Unavailable"]).toContain(error.reason)
      expect((yield* Effect.flip(archive.list(range))).isRetryable).toBe(true)
      expect((yield* Effect.flip(archive.read(kept))).isRetryable).toBe(true)

      yield* faults.clear
      expect(yield* archive.list(range)).toEqual([kept])
      const after = yield* archive.write([record("after", when + 2)])
      expect(yield* archive.list(range)).toEqual([kept, after].sort())
      expect((yield* archive.read(kept)).map(text)).toEqual(["before"])
      expect((yield* archive.read(after)).map(text)).toEqual(["after"])
    })
  )
}
