import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import type { Limits } from "../src/FallbackQueue.js"
import { decodeFallbackMessage, encodeFallbackMessages } from "../src/stages/fallbackMessages.js"
import { decodeRecord, encodeEnvelope, TelemetryEnvelope } from "../src/Telemetry.js"

const envelope = (id: string, padding: number) =>
  new TelemetryEnvelope({
    tenant: "t",
    receivedAt: 1,
    record: Result.getOrThrow(
      decodeRecord({
        id,
        type: "x",
        timestamp: "2026-01-01T00:00:00Z",
        payload: { pad: "é".repeat(padding) }
      })
    )
  })

describe("fallback messages", () => {
  it("packs records within message and batch limits and decodes them back in order", () => {
    const limits: Limits = { maxEntriesPerCall: 3, maxMessageBytes: 600, maxBatchBytes: 1500 }
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 150 }), { minLength: 1, maxLength: 60 }), (paddings) => {
        const envelopes = paddings.map((p, i) => envelope(`id-${i}`, p))
        const packed = encodeFallbackMessages(
          envelopes.map((e, index) => ({ index, data: encodeEnvelope(e) })),
          limits
        )
        const decoded: Array<TelemetryEnvelope> = []
        for (const batch of packed.batches) {
          expect(batch.length).toBeLessThanOrEqual(limits.maxEntriesPerCall)
          expect(new Set(batch.map((m) => m.message.id)).size).toBe(batch.length)
          const bytes = batch.reduce((n, m) => n + Buffer.byteLength(m.message.body), 0)
          expect(bytes).toBeLessThanOrEqual(limits.maxBatchBytes)
          for (const m of batch) {
            expect(Buffer.byteLength(m.message.body)).toBeLessThanOrEqual(limits.maxMessageBytes)
            decoded.push(...Result.getOrThrow(decodeFallbackMessage(m.message.body)).records)
          }
        }
        expect(decoded).toEqual(envelopes)
      })
    )
  })

  it("says why a body is not a fallback message", () => {
    const result = decodeFallbackMessage('{"version":2,"records":[]}')
    expect(Result.isFailure(result) && result.failure).toContain("version")
  })
})

describe("fallback message attempts", () => {
  it("carry the redrive attempt and the SQS delay, and default to attempt 0", () => {
    const data = encodeEnvelope(envelope("a", 1))
    const limits: Limits = { maxEntriesPerCall: 10, maxMessageBytes: 10_000, maxBatchBytes: 10_000 }
    const [batch] = encodeFallbackMessages([{ index: 0, data }], limits, {
      attempt: 3,
      delaySeconds: 4
    }).batches
    const message = batch![0]!.message
    expect(message.delaySeconds).toBe(4)
    expect(Result.getOrThrow(decodeFallbackMessage(message.body)).attempt).toBe(3)
    const [plain] = encodeFallbackMessages([{ index: 0, data }], limits).batches
    expect(plain![0]!.message.delaySeconds).toBeUndefined()
    const legacy = `{"version":1,"records":[${new TextDecoder().decode(data)}]}`
    expect(Result.getOrThrow(decodeFallbackMessage(legacy)).attempt).toBe(0)
  })
})
