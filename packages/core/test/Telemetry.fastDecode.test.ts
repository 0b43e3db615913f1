/**
 * `decodeEnvelope`'s and `readEnvelope`'s hand-written checks against the envelope schema they stand in for: on
 * generated envelopes, each mutated at one field (a boundary length, a wrong type, a missing or
 * extra key, an impossible date), the fast path must answer exactly what the schema alone answers
 * — the same value (same classes, same fields) or the same reason, word for word.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import { toDocument } from "../src/stages/writeDocuments.js"
import {
  decodeEnvelope,
  decodeEnvelopeWithSchema,
  decodeRecord,
  decodeRecordWithSchema,
  encodeEnvelope,
  encodeEnvelopeWithSchema,
  makeEnvelope,
  readEnvelope,
  TelemetryEnvelope,
  TelemetryRecord
} from "../src/Telemetry.js"

const encoder = new TextEncoder()

const agree = (text: string) => {
  const fast = decodeEnvelope(encoder.encode(text))
  const reference = decodeEnvelopeWithSchema(text)
  expect(Result.isSuccess(fast), text).toBe(Result.isSuccess(reference))
  if (Result.isSuccess(fast) && Result.isSuccess(reference)) {
    expect(fast.success).toBeInstanceOf(TelemetryEnvelope)
    expect(fast.success.record).toBeInstanceOf(TelemetryRecord)
    expect(fast.success).toStrictEqual(reference.success)
  }
  if (Result.isFailure(fast) && Result.isFailure(reference)) {
    expect(fast.failure.reason, text).toBe(reference.failure.reason)
  }
  // The processor's read: the same verdict and reason, and the same document.
  const read = readEnvelope(encoder.encode(text))
  expect(Result.isSuccess(read), text).toBe(Result.isSuccess(reference))
  if (Result.isSuccess(read) && Result.isSuccess(reference)) {
    expect(toDocument(read.success)).toStrictEqual(toDocument(reference.success))
  }
  if (Result.isFailure(read) && Result.isFailure(reference)) {
    expect(read.failure.reason, text).toBe(reference.failure.reason)
  }
  return Result.isSuccess(reference)
}

const json = fc.jsonValue({ maxDepth: 3 })
const jsonObject = fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 5 })

/** Strings around the schema's bounds, in one- to four-byte characters. */
const boundedString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 10 }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(0, 1, 127, 128, 129, 170, 171, 255, 256, 257)
      .chain((n) =>
        fc.constantFrom("a", "é", "€", "😀").map((c) => c.repeat(Math.ceil(n / c.length)).slice(0, n))
      )
  }
)

const timestamp = fc.oneof(
  fc
    .date({ min: new Date("1970-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    "2026-12-02T10:00:00Z",
    "2026-12-02T10:00:00.123456789+05:30",
    "2026-02-30T10:00:00.000Z",
    "2026-13-01T10:00:00.000Z",
    "2026-12-02T25:00:00.000Z",
    "2026-12-02 10:00:00Z",
    "2026-12-02T10:00:00",
    "2026-12-02T10:00:00.000z",
    ""
  )
)

const field = <A>(valid: fc.Arbitrary<A>) =>
  fc.oneof(
    { weight: 16, arbitrary: valid },
    { weight: 1, arbitrary: json },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )

const envelope = fc.record({
  tenant: field(boundedString),
  receivedAt: field(
    fc.oneof(
      fc.integer({ min: 0, max: 2 ** 45 }),
      fc.constantFrom(-1, -0, 0.5, 253402300799999, 253402300800000, 2 ** 53, 2 ** 53 - 1, 1e21)
    )
  ),
  record: fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        id: field(boundedString),
        type: field(boundedString),
        timestamp: field(timestamp),
        payload: field(jsonObject),
        attributes: fc.oneof(fc.constant(undefined), jsonObject, json),
        extra: fc.option(json)
      })
    },
    { weight: 1, arbitrary: json }
  ),
  extra: fc.option(json)
})

describe("decodeEnvelope's fast path", () => {
  it("answers what the schema answers, on generated and mutated envelopes", () => {
    let accepted = 0
    fc.assert(
      fc.property(envelope, (value) => {
        if (agree(JSON.stringify(value))) accepted += 1
      }),
      { numRuns: 3000, seed: 20261202 }
    )
    // Both kinds were met: the generator is not all valid or all invalid.
    expect(accepted).toBeGreaterThan(250)
    expect(accepted).toBeLessThan(2900)
  })

  it("answers what the schema answers on the edge cases written out", () => {
    const valid = {
      tenant: "acme",
      receivedAt: 1764669600000,
      record: { id: "r-1", type: "cpu", timestamp: "2026-12-02T10:00:00.000Z", payload: { v: 1 } }
    }
    const cases = [
      valid,
      { ...valid, record: { ...valid.record, attributes: { host: "h" } } },
      { ...valid, record: { ...valid.record, id: "é".repeat(256) } },
      { ...valid, record: { ...valid.record, id: "😀".repeat(128) } },
      { ...valid, record: { ...valid.record, id: "€".repeat(171) } },
      { ...valid, record: { ...valid.record, payload: [] } },
      { ...valid, record: { ...valid.record, payload: null } },
      { ...valid, record: { ...valid.record, attributes: [1] } },
      { ...valid, record: { ...valid.record, attributes: null } },
      { ...valid, receivedAt: 1.5 },
      { ...valid, receivedAt: "1764669600000" },
      { ...valid, tenant: "" },
      [valid],
      "envelope",
      null
    ]
    for (const value of cases) agree(JSON.stringify(value))
    for (const text of ["", "{", '{"tenant":"acme"', "[]", "1e400", '{"__proto__":{"tenant":"x"}}'])
      agree(text)
    // A receipt time past the year 9999 is no date: refused, not a crash when the document is made.
    const late = decodeEnvelope(encoder.encode(JSON.stringify({ ...valid, receivedAt: 253402300800000 })))
    expect(Result.isFailure(late) && late.failure.reason).toMatch(/^receivedAt: /)
    // `__proto__` as a payload field is kept as data, on both paths.
    agree(
      JSON.stringify(valid).replace('"payload":{"v":1}', '"payload":{"__proto__":{"polluted":true},"v":1}')
    )
  })
})

describe("decodeRecord's fast path and encodeEnvelope", () => {
  const clientRecord = fc.record(
    {
      id: field(boundedString),
      type: field(boundedString),
      timestamp: fc.oneof(
        { weight: 3, arbitrary: field(timestamp) },
        {
          weight: 2,
          arbitrary: fc.oneof(
            fc.integer({ min: 100_000_000_000, max: 253402300799999 }),
            fc.constantFrom(99_999_999_999, 253402300800000, 1.5e12 + 0.5, -1, 2 ** 53, "1795514400000")
          )
        }
      ),
      payload: field(jsonObject),
      host: fc.option(json),
      __proto__: fc.option(json)
    },
    { requiredKeys: ["id", "type", "timestamp", "payload"] }
  )

  it("decodes what the schema decodes, refuses what it refuses with its reason, and writes the schema's bytes", () => {
    let accepted = 0
    fc.assert(
      fc.property(
        fc.oneof({ weight: 9, arbitrary: clientRecord }, { weight: 1, arbitrary: json }),
        (value) => {
          // Through JSON, as the collector gets it (`__proto__` becomes an own field).
          const input: unknown = JSON.parse(JSON.stringify(value) ?? "null")
          const fast = decodeRecord(input)
          const reference = decodeRecordWithSchema(input)
          expect(Result.isSuccess(fast)).toBe(Result.isSuccess(reference))
          if (Result.isFailure(fast) && Result.isFailure(reference)) {
            expect(fast.failure.reason).toBe(reference.failure.reason)
          }
          if (Result.isSuccess(fast) && Result.isSuccess(reference)) {
            accepted += 1
            expect(fast.success).toBeInstanceOf(TelemetryRecord)
            expect(fast.success).toStrictEqual(reference.success)
            const envelope = makeEnvelope("acme", 1764669600000, fast.success)
            expect(envelope).toStrictEqual(
              new TelemetryEnvelope({ tenant: "acme", receivedAt: 1764669600000, record: reference.success })
            )
            expect(Buffer.from(encodeEnvelope(envelope)).toString("utf8")).toBe(
              Buffer.from(encodeEnvelopeWithSchema(envelope)).toString("utf8")
            )
          }
        }
      ),
      { numRuns: 3000, seed: 20261202 }
    )
    expect(accepted).toBeGreaterThan(250)
    expect(accepted).toBeLessThan(2900)
  })
})
