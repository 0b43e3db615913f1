import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { chunkEntries, compareSequenceNumbers, entrySize, type Limits } from "../src/RecordStream.js"

const entry = (key: string, bytes: number) => ({ partitionKey: key, data: new Uint8Array(bytes) })

describe("RecordStream.chunkEntries", () => {
  it("keeps every call within the entry and byte limits, in order", () => {
    const limits: Limits = { maxEntriesPerCall: 5, maxBytesPerCall: 100, maxBytesPerRecord: 60 }
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 59 }), { maxLength: 200 }), (sizes) => {
        const entries = sizes.map((s, i) => entry(`k${i % 10}`, s))
        const chunks = chunkEntries(entries, limits)
        expect(chunks.flat()).toEqual(entries)
        for (const chunk of chunks) {
          expect(chunk.length).toBeGreaterThan(0)
          expect(chunk.length).toBeLessThanOrEqual(limits.maxEntriesPerCall)
          expect(chunk.reduce((n, e) => n + entrySize(e), 0)).toBeLessThanOrEqual(limits.maxBytesPerCall)
        }
      })
    )
  })

  it("counts the partition key as UTF-8 bytes", () => {
    expect(entrySize(entry("é", 10))).toBe(12)
  })

  it("gives an entry that is over the call limit by itself a call of its own", () => {
    const limits: Limits = { maxEntriesPerCall: 500, maxBytesPerCall: 10, maxBytesPerRecord: 10 }
    expect(chunkEntries([entry("a", 1), entry("b", 50), entry("c", 1)], limits).map((c) => c.length)).toEqual(
      [1, 1, 1]
    )
  })

  it("compares sequence numbers beyond float precision", () => {
    const a = "49590338271490256608559692538361571095921575989136588898"
    const b = "49590338271490256608559692538361571095921575989136588899"
    expect(compareSequenceNumbers(a, b)).toBe(-1)
    expect(compareSequenceNumbers(b, a)).toBe(1)
    expect(compareSequenceNumbers(a, a)).toBe(0)
  })
})
