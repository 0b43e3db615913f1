import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { toDocument } from "../src/stages/writeDocuments.js"
import { decodeRecord, TelemetryEnvelope } from "../src/Telemetry.js"

const envelopeOf = (input: unknown) => {
  const decoded = decodeRecord(input)
  if (Result.isFailure(decoded)) throw new Error(decoded.failure.reason)
  return new TelemetryEnvelope({ tenant: "acme", receivedAt: 1_795_514_400_500, record: decoded.success })
}

describe("toDocument", () => {
  it("writes the record flat, keyed by id, with the collector's tenant and receipt time", () => {
    const document = toDocument(
      envelopeOf({ id: "r-1", type: "cpu", timestamp: 1_795_514_400_000, payload: { value: 42 } })
    )
    expect(document).toEqual({
      id: "r-1",
      body: {
        id: "r-1",
        type: "cpu",
        timestamp: "2026-11-24T10:00:00.000Z",
        tenant: "acme",
        receivedAt: "2026-11-24T10:00:00.500Z",
        payload: { value: 42 }
      }
    })
  })

  it("keeps the fields a client sent beyond the four under attributes in the document", () => {
    const document = toDocument(
      envelopeOf({
        id: "r-2",
        type: "cpu",
        timestamp: "2026-11-24T10:00:00.000Z",
        payload: {},
        host: "web-1",
        tags: ["a", "b"]
      })
    )
    expect(document.body.attributes).toEqual({ host: "web-1", tags: ["a", "b"] })
  })
})
