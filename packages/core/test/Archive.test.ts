/**
 * The archive's layout, as Firehose writes it to S3 (docs/aws-behaviour.md §5.4–5.5): UTC hour prefixes,
 * object names after the oldest record, newline-delimited records. Run under a process time zone
 * far from UTC, so that a helper reading local time instead of UTC fails here and not only on a
 * machine set to some other zone.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import {
  type ArchivedRecord,
  ArchiveError,
  decodeObject,
  type ErrorReason,
  encodeObject,
  hourMillis,
  hourPrefix,
  hourPrefixes,
  maxListedHours,
  objectKey,
  oldestArrival
} from "../src/Archive.js"

const at = (iso: string) => Date.parse(iso)
const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)
const archived = (data: string, arrivedAt = 0): ArchivedRecord => ({ data: bytes(data), arrivedAt })

const failureOf = <A>(result: Result.Result<A, ArchiveError>): ArchiveError => {
  if (Result.isSuccess(result)) throw new Error(`expected an ArchiveError, got ${String(result.success)}`)
  return result.failure
}
const successOf = <A>(result: Result.Result<A, ArchiveError>): A => {
  if (Result.isFailure(result)) throw new Error(`expected a value, got ${result.failure.message}`)
  return result.success
}

// A half-hour offset west of UTC: local hours, days, months and years all differ from UTC's near
// the instants below, so any local-time getter gives a different prefix.
const originalTimeZone = process.env.TZ
beforeAll(() => {
  process.env.TZ = "America/St_Johns"
})
afterAll(() => {
  if (originalTimeZone === undefined) delete process.env.TZ
  else process.env.TZ = originalTimeZone
})

describe("Archive.hourPrefix", () => {
  it("runs under a zone that is not UTC (so the UTC tests below can fail)", () => {
    expect(new Date(at("2026-11-24T10:00:00.000Z")).getHours()).not.toBe(10)
  })

  it("files an instant under its UTC hour, up to the last millisecond of the hour", () => {
    expect(hourPrefix(at("2026-11-24T23:59:59.999Z"))).toBe("2026/11/24/23/")
    expect(hourPrefix(at("2026-11-25T00:00:00.000Z"))).toBe("2026/11/25/00/")
    expect(hourPrefix(at("2026-11-24T10:00:00.000Z"))).toBe("2026/11/24/10/")
    expect(hourPrefix(at("2026-11-24T09:59:59.999Z"))).toBe("2026/11/24/09/")
  })

  it("converts an instant written with a zone offset to UTC", () => {
    expect(hourPrefix(at("2026-11-25T01:30:00.000+02:00"))).toBe("2026/11/24/23/")
  })

  it("pads months, days and hours to two digits", () => {
    expect(hourPrefix(at("2027-01-02T03:04:05.000Z"))).toBe("2027/01/02/03/")
    expect(hourPrefix(0)).toBe("1970/01/01/00/")
  })
})

describe("Archive.objectKey", () => {
  const layout = { deliveryStreamName: "telemetry" }

  it("names an object after its oldest record, to the second, in UTC, with version 1 and no prefix by default", () => {
    expect(objectKey(layout, at("2026-11-24T23:59:59.999Z"), "uuid-1")).toBe(
      "2026/11/24/23/telemetry-1-2026-11-24-23-59-59-uuid-1"
    )
  })

  it("puts an object whose oldest record arrived exactly on the hour under that hour", () => {
    expect(objectKey(layout, at("2026-11-25T00:00:00.000Z"), "u")).toBe(
      "2026/11/25/00/telemetry-1-2026-11-25-00-00-00-u"
    )
  })

  it("pads every part of the time stamp to two digits", () => {
    expect(objectKey(layout, at("2027-01-02T03:04:05.678Z"), "u")).toBe(
      "2027/01/02/03/telemetry-1-2027-01-02-03-04-05-u"
    )
  })

  it("writes the prefix before the hour and the stream version after the stream name", () => {
    expect(
      objectKey(
        { prefix: "backup/raw/", deliveryStreamName: "spillway", deliveryStreamVersion: 7 },
        at("2026-11-24T10:15:30.000Z"),
        "u"
      )
    ).toBe("backup/raw/2026/11/24/10/spillway-7-2026-11-24-10-15-30-u")
  })

  it("ends GZIP objects with .gz and uncompressed ones with no extension", () => {
    const when = at("2026-11-24T10:15:30.000Z")
    expect(objectKey({ ...layout, compression: "GZIP" }, when, "u")).toBe(
      "2026/11/24/10/telemetry-1-2026-11-24-10-15-30-u.gz"
    )
    expect(objectKey({ ...layout, compression: "UNCOMPRESSED" }, when, "u")).toBe(
      "2026/11/24/10/telemetry-1-2026-11-24-10-15-30-u"
    )
  })

  it("starts with the object's hour prefix for any instant", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: at("2100-01-01T00:00:00Z") }), (when) => {
        expect(objectKey({ ...layout, prefix: "p/" }, when, "u").startsWith(`p/${hourPrefix(when)}`)).toBe(
          true
        )
      })
    )
  })
})

describe("Archive.hourPrefixes", () => {
  it("gives one prefix for a range within one hour, including a single instant", () => {
    const from = at("2026-11-24T10:00:00.000Z")
    expect(successOf(hourPrefixes({ from, to: from + hourMillis - 1 }))).toEqual(["2026/11/24/10/"])
    expect(successOf(hourPrefixes({ from, to: from }))).toEqual(["2026/11/24/10/"])
  })

  it("includes the hours of both ends, even when they only touch them", () => {
    expect(
      successOf(hourPrefixes({ from: at("2026-11-24T10:59:59.999Z"), to: at("2026-11-24T12:00:00.000Z") }))
    ).toEqual(["2026/11/24/10/", "2026/11/24/11/", "2026/11/24/12/"])
  })

  it("spans midnight, the end of a month, a leap day and the end of a year", () => {
    expect(
      successOf(hourPrefixes({ from: at("2026-11-24T23:30:00Z"), to: at("2026-11-25T01:10:00Z") }))
    ).toEqual(["2026/11/24/23/", "2026/11/25/00/", "2026/11/25/01/"])
    expect(
      successOf(hourPrefixes({ from: at("2026-01-31T23:00:00Z"), to: at("2026-02-01T00:00:00Z") }))
    ).toEqual(["2026/01/31/23/", "2026/02/01/00/"])
    expect(
      successOf(hourPrefixes({ from: at("2028-02-28T23:59:00Z"), to: at("2028-02-29T00:01:00Z") }))
    ).toEqual(["2028/02/28/23/", "2028/02/29/00/"])
    expect(
      successOf(hourPrefixes({ from: at("2026-12-31T23:59:59.999Z"), to: at("2027-01-01T00:00:00Z") }))
    ).toEqual(["2026/12/31/23/", "2027/01/01/00/"])
  })

  it("puts the given prefix before every hour", () => {
    expect(
      successOf(hourPrefixes({ from: at("2026-11-24T10:00:00Z"), to: at("2026-11-24T11:00:00Z") }, "raw/"))
    ).toEqual(["raw/2026/11/24/10/", "raw/2026/11/24/11/"])
  })

  it("refuses a range that runs backwards as InvalidRequest", () => {
    const error = failureOf(
      hourPrefixes({ from: at("2026-11-24T11:00:00Z"), to: at("2026-11-24T10:00:00Z") })
    )
    expect(error).toBeInstanceOf(ArchiveError)
    expect(error.reason).toBe("InvalidRequest")
    expect(error.isRetryable).toBe(false)
  })

  it.each([
    ["NaN start", { from: Number.NaN, to: 0 }],
    ["NaN end", { from: 0, to: Number.NaN }],
    ["infinite end", { from: 0, to: Number.POSITIVE_INFINITY }],
    ["infinite start", { from: Number.NEGATIVE_INFINITY, to: 0 }],
    ["both infinite", { from: Number.POSITIVE_INFINITY, to: Number.POSITIVE_INFINITY }]
  ])("refuses a range with a %s as InvalidRequest", (_, range) => {
    expect(failureOf(hourPrefixes(range)).reason).toBe("InvalidRequest")
  })

  it("lists exactly maxListedHours hours, and refuses one hour more naming the count", () => {
    const from = at("2026-01-01T00:00:00Z")
    const year = successOf(hourPrefixes({ from, to: from + (maxListedHours - 1) * hourMillis }))
    expect(year).toHaveLength(maxListedHours)
    expect(year[0]).toBe("2026/01/01/00/")
    const error = failureOf(hourPrefixes({ from, to: from + maxListedHours * hourMillis }))
    expect(error.reason).toBe("InvalidRequest")
    expect(error.message).toContain(String(maxListedHours + 1))
  })

  it("gives every hour between the ends once, oldest first (property)", () => {
    const start = at("2020-01-01T00:00:00Z")
    fc.assert(
      fc.property(
        fc.integer({ min: start, max: start + 5 * 365 * 24 * hourMillis }),
        fc.integer({ min: 0, max: 200 * hourMillis }),
        (from, length) => {
          const to = from + length
          const prefixes = successOf(hourPrefixes({ from, to }))
          expect(prefixes).toHaveLength(Math.floor(to / hourMillis) - Math.floor(from / hourMillis) + 1)
          expect(prefixes[0]).toBe(hourPrefix(from))
          expect(prefixes.at(-1)).toBe(hourPrefix(to))
          expect(new Set(prefixes).size).toBe(prefixes.length)
          // Zero-padded `YYYY/MM/dd/HH/` sorts as time does.
          expect([...prefixes].sort()).toEqual(prefixes)
        }
      )
    )
  })
})

describe("Archive.encodeObject / decodeObject", () => {
  // Bytes 0–255 except 0x0a: a record may hold anything but the delimiter.
  const newlineFreeByte = fc.integer({ min: 0, max: 254 }).map((b) => (b >= 0x0a ? b + 1 : b))
  // At least one byte: an empty record is accepted on write as a bare newline but reads back as
  // nothing (empty lines are skipped), so it does not round-trip.
  const newlineFreeRecord = fc
    .array(newlineFreeByte, { minLength: 1, maxLength: 64 })
    .map((values) => Uint8Array.from(values))

  it("round-trips any non-empty list of newline-free records, each followed by one newline (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(newlineFreeRecord, fc.nat()), { minLength: 1, maxLength: 30 }),
        (entries) => {
          const records = entries.map(([data, arrivedAt]) => ({ data, arrivedAt }))
          const encoded = successOf(encodeObject(records))
          expect(encoded.length).toBe(records.reduce((n, r) => n + r.data.length + 1, 0))
          expect(encoded.at(-1)).toBe(0x0a)
          expect(encoded.filter((b) => b === 0x0a).length).toBe(records.length)
          expect(decodeObject(encoded)).toEqual(records.map((r) => r.data))
        }
      )
    )
  })

  it("writes the records' bytes as they are, in order", () => {
    const encoded = successOf(encodeObject([archived('{"a":1}'), archived("é"), archived("x")]))
    expect(text(encoded)).toBe('{"a":1}\né\nx\n')
  })

  it("refuses an empty list as InvalidRequest", () => {
    const error = failureOf(encodeObject([]))
    expect(error.reason).toBe("InvalidRequest")
    expect(error.isRetryable).toBe(false)
  })

  it("refuses a record that contains a newline, naming its index", () => {
    const error = failureOf(encodeObject([archived("ok"), archived("fine"), archived("two\nlines")]))
    expect(error.reason).toBe("InvalidRequest")
    expect(error.message).toContain("record 2")
    expect(failureOf(encodeObject([archived("\n")])).message).toContain("record 0")
  })

  it("refuses a record holding 0x0a anywhere among arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(
        fc.array(newlineFreeRecord, { minLength: 1, maxLength: 10 }),
        fc.nat(),
        fc.nat(),
        (datas, pick, position) => {
          const index = pick % datas.length
          const poisoned = datas.map((data, i) => {
            if (i !== index) return data
            const copy = Uint8Array.from(data)
            copy[position % copy.length] = 0x0a
            return copy
          })
          const error = failureOf(encodeObject(poisoned.map((data) => ({ data, arrivedAt: 0 }))))
          expect(error.message).toContain(`record ${index} `)
        }
      )
    )
  })

  it("reads Firehose-style data whose last record has no newline", () => {
    expect(decodeObject(bytes('{"id":"a"}\n{"id":"b"}\n{"id":"c"}')).map(text)).toEqual([
      '{"id":"a"}',
      '{"id":"b"}',
      '{"id":"c"}'
    ])
    expect(decodeObject(bytes("single")).map(text)).toEqual(["single"])
  })

  it("skips empty lines, leading, inner and trailing", () => {
    expect(decodeObject(bytes("\n\na\n\n\nb\n\n")).map(text)).toEqual(["a", "b"])
    expect(decodeObject(bytes("\n\n\n"))).toEqual([])
    expect(decodeObject(new Uint8Array(0))).toEqual([])
  })

  it("returns records that do not alias the object's bytes", () => {
    const object = bytes("ab\ncd\n")
    const [first] = decodeObject(object)
    object[0] = 0x7a
    expect(text(first!)).toBe("ab")
  })
})

describe("Archive.oldestArrival", () => {
  it("is the earliest arrival, wherever it is in the list", () => {
    expect(oldestArrival([archived("a", 30), archived("b", 10), archived("c", 20)])).toBe(10)
    expect(oldestArrival([archived("a", 5)])).toBe(5)
  })
})

describe("ArchiveError", () => {
  it.each<[ErrorReason, boolean]>([
    ["Throttled", true],
    ["Unavailable", true],
    ["NotFound", false],
    ["AccessDenied", false],
    ["InvalidRequest", false],
    ["Corrupt", false]
  ])("%s is retryable: %s", (reason, retryable) => {
    expect(new ArchiveError({ reason, message: "m" }).isRetryable).toBe(retryable)
  })
})
