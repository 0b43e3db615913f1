import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { decodeEnvelope, decodeRecord, encodeEnvelope, TelemetryEnvelope } from "../src/Telemetry.js"

const valid = { id: "r-1", type: "cpu", timestamp: "2026-11-24T10:00:00.000Z", payload: { value: 0.7 } }

describe("Telemetry", () => {
  it("accepts a valid record and keeps unknown top-level fields under attributes", () => {
    const decoded = Result.getOrThrow(decodeRecord({ ...valid, extra: true, host: "h-1" }))
    expect(decoded.attributes).toEqual({ extra: true, host: "h-1" })
    expect(Result.getOrThrow(decodeRecord(valid))).not.toHaveProperty("attributes")
  })

  it("keeps a __proto__ field as data, not as a prototype", () => {
    const decoded = Result.getOrThrow(
      decodeRecord(JSON.parse(`{"__proto__":{"p":1},${JSON.stringify(valid).slice(1)}`))
    )
    expect(Object.keys(decoded.attributes ?? {})).toEqual(["__proto__"])
    expect(({} as Record<string, unknown>).p).toBeUndefined()
  })

  it("reads epoch milliseconds into ISO-8601 and keeps an ISO timestamp as written", () => {
    expect(Result.getOrThrow(decodeRecord({ ...valid, timestamp: 1_795_514_400_000 })).timestamp).toBe(
      "2026-11-24T10:00:00.000Z"
    )
    expect(
      Result.getOrThrow(decodeRecord({ ...valid, timestamp: "2026-11-24T11:00:00+01:00" })).timestamp
    ).toBe("2026-11-24T11:00:00+01:00")
  })

  it.each([
    [{ ...valid, id: "" }, "id: must not be empty"],
    [{ ...valid, id: "x".repeat(257) }, "id: must be at most 256 characters"],
    [{ ...valid, timestamp: "yesterday" }, "timestamp: must be an ISO-8601 timestamp"],
    [{ ...valid, timestamp: "2026-13-45T10:00:00Z" }, "timestamp: is not a real date"],
    [{ ...valid, payload: "x" }, "payload: must be a JSON object"],
    [{ ...valid, type: 42 }, "type: must be a string"],
    [{ ...valid, timestamp: 1_795_514_400 }, "timestamp: must be epoch milliseconds"],
    [{ id: "a" }, "type: is missing"],
    [null, "record must be a JSON object"]
  ])("refuses %j with the path of the bad field", (input, message) => {
    const decoded = decodeRecord(input)
    expect(Result.isFailure(decoded)).toBe(true)
    if (Result.isFailure(decoded)) expect(decoded.failure.reason).toContain(message)
  })

  it("reports every problem of a record, not just the first", () => {
    const decoded = decodeRecord({ id: "", type: "", timestamp: "no", payload: [] })
    if (Result.isSuccess(decoded)) throw new Error("expected a failure")
    for (const field of ["id:", "type:", "timestamp:", "payload:"])
      expect(decoded.failure.reason).toContain(field)
  })

  it("refuses a hostile, deeply nested record with a reason instead of overflowing the stack", () => {
    let deep: unknown = 1
    for (let i = 0; i < 200_000; i++) deep = { a: deep }
    for (const input of [
      { ...valid, payload: deep },
      { ...valid, id: deep }
    ]) {
      const decoded = decodeRecord(input)
      if (Result.isSuccess(decoded)) throw new Error("expected a failure")
      expect(decoded.failure.reason).toBe("record nests deeper than 20 levels")
    }
    let ok: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 19; i++) ok = { a: ok }
    expect(Result.isSuccess(decodeRecord({ ...valid, payload: ok }))).toBe(true)
  })

  it("round-trips an envelope through stream bytes", () => {
    const record = Result.getOrThrow(decodeRecord(valid))
    const envelope = new TelemetryEnvelope({ tenant: "acme", receivedAt: 1_700_000_000_000, record })
    const back = decodeEnvelope(encodeEnvelope(envelope))
    expect(Result.getOrThrow(back)).toEqual(envelope)
  })

  it("refuses stream bytes that are not UTF-8 JSON envelopes, with a reason", () => {
    const notUtf8 = decodeEnvelope(new Uint8Array([0xff, 0xfe, 0x00]))
    expect(Result.isFailure(notUtf8) && notUtf8.failure.reason).toBe("record data is not valid UTF-8")
    const notJson = decodeEnvelope(new TextEncoder().encode("{oops"))
    expect(Result.isFailure(notJson)).toBe(true)
    const wrongShape = decodeEnvelope(
      new TextEncoder().encode(JSON.stringify({ tenant: "a", receivedAt: -1 }))
    )
    if (Result.isSuccess(wrongShape)) throw new Error("expected a failure")
    expect(wrongShape.failure.reason).toContain("receivedAt")
    expect(wrongShape.failure.reason).toContain("record: is missing")
  })
})
