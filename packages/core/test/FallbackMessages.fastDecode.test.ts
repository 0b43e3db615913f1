/**
 * `decodeFallbackMessage`'s written-out checks against the message schema they stand in for: on
 * generated fallback messages, mutated at the message level (version, attempt, records) or in one
 * record (the envelope's fields, their types, an impossible date), the fast path must answer
 * exactly what the schema alone answers — the same envelopes (same classes, same fields) and
 * attempt, or the same reason, word for word.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import { decodeFallbackMessage, decodeFallbackMessageWithSchema } from "../src/stages/fallbackMessages.js"
import { TelemetryEnvelope, TelemetryRecord } from "../src/Telemetry.js"

const agree = (body: string): boolean => {
  const fast = decodeFallbackMessage(body)
  const reference = decodeFallbackMessageWithSchema(body)
  expect(Result.isSuccess(fast), body).toBe(Result.isSuccess(reference))
  if (Result.isSuccess(fast) && Result.isSuccess(reference)) {
    for (const envelope of fast.success.records) {
      expect(envelope).toBeInstanceOf(TelemetryEnvelope)
      expect(envelope.record).toBeInstanceOf(TelemetryRecord)
    }
    expect(fast.success).toStrictEqual(reference.success)
  }
  if (Result.isFailure(fast) && Result.isFailure(reference))
    expect(fast.failure, body).toBe(reference.failure)
  return Result.isSuccess(reference)
}

const json = fc.jsonValue({ maxDepth: 2 })
const sometimes = <A>(valid: fc.Arbitrary<A>) =>
  fc.oneof(
    { weight: 20, arbitrary: valid },
    { weight: 1, arbitrary: json },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )

const envelope = fc.record({
  tenant: sometimes(fc.string({ minLength: 1, maxLength: 6 })),
  receivedAt: sometimes(
    fc.oneof(fc.integer({ min: 0, max: 2 ** 45 }), fc.constantFrom(-1, 0.5, 253402300800000, 2 ** 53))
  ),
  record: fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        id: sometimes(
          fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom("", "x".repeat(257)))
        ),
        type: sometimes(fc.string({ minLength: 1, maxLength: 8 })),
        timestamp: sometimes(
          fc.oneof(
            fc
              .date({ min: new Date("1970-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
              .map((d) => d.toISOString()),
            fc.constantFrom("2026-02-30T10:00:00.000Z", "2026-12-02 10:00:00Z", "yesterday")
          )
        ),
        payload: sometimes(fc.dictionary(fc.string({ maxLength: 4 }), json, { maxKeys: 3 })),
        attributes: fc.oneof(fc.constant(undefined), fc.dictionary(fc.string({ maxLength: 4 }), json), json),
        extra: fc.option(json)
      })
    },
    { weight: 1, arbitrary: json }
  ),
  extra: fc.option(json)
})

const message = fc.record({
  version: fc.oneof({ weight: 20, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: json }),
  attempt: fc.oneof(
    { weight: 10, arbitrary: fc.nat({ max: 20 }) },
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, "2", null, 2 ** 53, 1e21) }
  ),
  records: fc.oneof(
    { weight: 20, arbitrary: fc.array(envelope, { maxLength: 4 }) },
    { weight: 1, arbitrary: json }
  ),
  extra: fc.option(json)
})

describe("decodeFallbackMessage's fast path", () => {
  it("answers what the schema answers, on generated and mutated messages", () => {
    let accepted = 0
    fc.assert(
      fc.property(message, (value) => {
        if (agree(JSON.stringify(value))) accepted += 1
      }),
      { numRuns: 2000, seed: 20261202 }
    )
    // Both kinds were met: the generator is not all valid or all invalid.
    expect(accepted).toBeGreaterThan(200)
    expect(accepted).toBeLessThan(1900)
  })

  it("answers what the schema answers on bodies that are not JSON objects", () => {
    for (const body of ["", "{", "[]", "null", "1", '"x"', '{"version":1,"records":[]} trailing', "{}"]) {
      expect(agree(body), body).toBe(false)
    }
    expect(agree('{"version":1,"records":[]}')).toBe(true)
  })
})
