import { randomUUID } from "node:crypto"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { FingerprintSet, fingerprint, maxCapacity } from "../src/internal/FingerprintSet.js"

const ids = (prefix: string, from: number, to: number): Array<string> => {
  const out: Array<string> = []
  for (let i = from; i < to; i++) out.push(`${prefix}${i}`)
  return out
}

/** Seeded PRNG (mulberry32), so the statistical tests are reproducible. */
const prng = (seed: number) => {
  let a = seed | 0
  return (): number => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** Number of equal pairs among 32-bit values (sorting; groups of k count k(k-1)/2). */
const collidingPairs = (values: Uint32Array): number => {
  const sorted = values.slice().sort()
  let pairs = 0
  let run = 1
  for (let i = 1; i <= sorted.length; i++) {
    if (i < sorted.length && sorted[i] === sorted[i - 1]) {
      run++
    } else {
      pairs += (run * (run - 1)) / 2
      run = 1
    }
  }
  return pairs
}

const popcount = (x: number): number => {
  let v = x >>> 0
  let n = 0
  while (v !== 0) {
    v &= v - 1
    n++
  }
  return n
}

describe("FingerprintSet options", () => {
  it("uses ceil(capacity / 16) as the default eviction batch", () => {
    expect(new FingerprintSet({ capacity: 10_000 }).evictionBatch).toBe(625)
    expect(new FingerprintSet({ capacity: 17 }).evictionBatch).toBe(2)
    expect(new FingerprintSet({ capacity: 1 }).evictionBatch).toBe(1)
  })

  it("accepts an evictionBatch from 1 to capacity", () => {
    expect(new FingerprintSet({ capacity: 5, evictionBatch: 1 }).evictionBatch).toBe(1)
    expect(new FingerprintSet({ capacity: 5, evictionBatch: 5 }).evictionBatch).toBe(5)
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, maxCapacity + 1])(
    "rejects capacity %s with a RangeError naming the option",
    (capacity) => {
      expect(() => new FingerprintSet({ capacity })).toThrow(RangeError)
      expect(() => new FingerprintSet({ capacity })).toThrow(/options\.capacity must be an integer/)
    }
  )

  it("rejects a capacity that is not a number", () => {
    expect(() => new FingerprintSet({ capacity: "10" as unknown as number })).toThrow(/options\.capacity/)
  })

  it.each([0, -3, 2.5, 11, Number.NaN])("rejects evictionBatch %s (capacity 10)", (evictionBatch) => {
    expect(() => new FingerprintSet({ capacity: 10, evictionBatch })).toThrow(RangeError)
    expect(() => new FingerprintSet({ capacity: 10, evictionBatch })).toThrow(
      /options\.evictionBatch must be an integer in \[1, 10\]/
    )
  })

  it("sizes its typed arrays at under 19.5 bytes per entry (load factor ≤ 0.7)", () => {
    for (const capacity of [1, 3, 1000, 1_000_003]) {
      const set = new FingerprintSet({ capacity })
      expect(set.slots).toBeGreaterThan(capacity)
      expect(capacity / set.slots).toBeLessThanOrEqual(0.7)
      if (capacity >= 1000) expect(set.byteLength / capacity).toBeLessThan(19.5)
    }
  })
})

describe("FingerprintSet membership and eviction", () => {
  it("answers has() for added ids and not for others", () => {
    const set = new FingerprintSet({ capacity: 100 })
    expect(set.size).toBe(0)
    expect(set.has("a")).toBe(false)
    set.add("a")
    set.add("b")
    expect(set.has("a")).toBe(true)
    expect(set.has("b")).toBe(true)
    expect(set.has("c")).toBe(false)
    expect(set.size).toBe(2)
    expect(set.evicted).toBe(0)
  })

  it("does not grow on a duplicate add", () => {
    const set = new FingerprintSet({ capacity: 10 })
    for (let i = 0; i < 5; i++) set.add("same")
    expect(set.size).toBe(1)
    set.add("other")
    set.add("same")
    expect(set.size).toBe(2)
  })

  it("tells apart ids of odd length, empty ids, NULs, non-ASCII and lone surrogates", () => {
    const tricky = [
      "",
      "a",
      "a\u0000",
      "\u0000a",
      "\u0000",
      "\u0000\u0000",
      "é",
      "e\u0301",
      "😀",
      "\ud83d",
      "\ude00"
    ]
    const set = new FingerprintSet({ capacity: 100 })
    for (const [i, id] of tricky.entries()) {
      for (const later of tricky.slice(i)) expect(set.has(later)).toBe(false)
      set.add(id)
      expect(set.has(id)).toBe(true)
    }
    expect(set.size).toBe(tricky.length)
  })

  it("evicts the oldest batch first when full", () => {
    const set = new FingerprintSet({ capacity: 100, evictionBatch: 10 })
    for (const id of ids("id-", 0, 100)) set.add(id)
    expect(set.size).toBe(100)
    expect(set.evicted).toBe(0)

    set.add("id-100")
    expect(set.size).toBe(91)
    expect(set.evicted).toBe(10)
    for (const id of ids("id-", 0, 10)) expect(set.has(id)).toBe(false)
    for (const id of ids("id-", 10, 101)) expect(set.has(id)).toBe(true)

    // Nine more fit before the next eviction.
    for (const id of ids("id-", 101, 110)) set.add(id)
    expect(set.size).toBe(100)
    expect(set.evicted).toBe(10)
    set.add("id-110")
    expect(set.evicted).toBe(20)
    for (const id of ids("id-", 0, 20)) expect(set.has(id)).toBe(false)
    for (const id of ids("id-", 20, 111)) expect(set.has(id)).toBe(true)
  })

  it("takes back an evicted id as the youngest entry", () => {
    const set = new FingerprintSet({ capacity: 3, evictionBatch: 1 })
    for (const id of ["a", "b", "c", "d"]) set.add(id)
    expect(set.has("a")).toBe(false)
    set.add("a") // evicts b
    expect(["a", "b", "c", "d"].map((id) => set.has(id))).toEqual([true, false, true, true])
    set.add("e") // evicts c, not the re-added a
    set.add("f") // evicts d
    expect(["a", "c", "d", "e", "f"].map((id) => set.has(id))).toEqual([true, false, false, true, true])
    expect(set.evicted).toBe(4)
  })

  it("does not refresh the age of an id added again (FIFO, not LRU)", () => {
    const set = new FingerprintSet({ capacity: 3, evictionBatch: 1 })
    for (const id of ["a", "b", "c"]) set.add(id)
    set.add("a")
    set.add("d")
    expect(["a", "b", "c", "d"].map((id) => set.has(id))).toEqual([false, true, true, true])
  })

  it("works at capacity 1", () => {
    const set = new FingerprintSet({ capacity: 1 })
    set.add("a")
    set.add("a")
    expect(set.size).toBe(1)
    set.add("b")
    expect([set.has("a"), set.has("b"), set.size, set.evicted]).toEqual([false, true, 1, 1])
    set.add("a")
    expect([set.has("a"), set.has("b"), set.size, set.evicted]).toEqual([true, false, 1, 2])
  })

  it("works at capacity 2 and 3 with every eviction batch", () => {
    for (const capacity of [2, 3]) {
      for (let evictionBatch = 1; evictionBatch <= capacity; evictionBatch++) {
        const set = new FingerprintSet({ capacity, evictionBatch })
        const live: Array<string> = []
        for (let i = 0; i < 50; i++) {
          const id = `x${i}`
          if (live.length === capacity) live.splice(0, evictionBatch)
          live.push(id)
          set.add(id)
          expect(set.size).toBe(live.length)
          expect(set.evicted).toBe(i + 1 - live.length)
          for (let j = 0; j <= i; j++) expect(set.has(`x${j}`)).toBe(live.includes(`x${j}`))
        }
      }
    }
  })

  it("evicting everything at once (evictionBatch = capacity) empties the set before the add", () => {
    const set = new FingerprintSet({ capacity: 4, evictionBatch: 4 })
    for (const id of ["a", "b", "c", "d", "e"]) set.add(id)
    expect(set.size).toBe(1)
    expect(set.evicted).toBe(4)
    expect(["a", "b", "c", "d", "e"].map((id) => set.has(id))).toEqual([false, false, false, false, true])
  })

  it("keeps exactly the newest ids through many wraps of the ring", () => {
    const capacity = 5000
    const set = new FingerprintSet({ capacity, evictionBatch: 7 })
    const total = 100_000
    for (let i = 0; i < total; i++) set.add(`rec-${i}`)
    expect(set.size + set.evicted).toBe(total)
    expect(set.size).toBeLessThanOrEqual(capacity)
    expect(set.size).toBeGreaterThan(capacity - 7)
    for (let i = 0; i < total; i++) expect(set.has(`rec-${i}`)).toBe(i >= set.evicted)
  })
})

describe("FingerprintSet against a reference model", () => {
  it("size never exceeds capacity and evicted counts every dropped id", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 300 })
          .chain((capacity) =>
            fc.tuple(
              fc.constant(capacity),
              fc.option(fc.integer({ min: 1, max: capacity }), { nil: undefined }),
              fc.integer({ min: 0, max: 2000 })
            )
          ),
        ([capacity, evictionBatch, adds]) => {
          const set = new FingerprintSet(
            evictionBatch === undefined ? { capacity } : { capacity, evictionBatch }
          )
          for (let i = 0; i < adds; i++) {
            set.add(`u${i}`)
            if (set.size > capacity) return false
          }
          if (set.size + set.evicted !== adds) return false
          // Below capacity nothing is evicted; past it, at most one batch is missing.
          return adds <= capacity ? set.size === adds : set.size > capacity - set.evictionBatch
        }
      ),
      { numRuns: 300 }
    )
  })

  it("behaves like a Set plus a FIFO queue on random add/has sequences", () => {
    type Op = { readonly add: boolean; readonly id: number }
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }).chain((capacity) =>
          fc.tuple(
            fc.constant(capacity),
            fc.integer({ min: 1, max: capacity }),
            fc.array(fc.record({ add: fc.boolean(), id: fc.integer({ min: 0, max: 3 * capacity }) }), {
              maxLength: 400
            })
          )
        ),
        ([capacity, evictionBatch, ops]: [number, number, Array<Op>]) => {
          const set = new FingerprintSet({ capacity, evictionBatch })
          const fifo: Array<string> = []
          const members = new Set<string>()
          let evicted = 0
          for (const op of ops) {
            const id = `id:${op.id}`
            if (op.add) {
              if (!members.has(id)) {
                if (fifo.length === capacity) {
                  for (const old of fifo.splice(0, evictionBatch)) members.delete(old)
                  evicted += evictionBatch
                }
                fifo.push(id)
                members.add(id)
              }
              set.add(id)
            } else if (set.has(id) !== members.has(id)) {
              return false
            }
            if (set.size !== fifo.length || set.evicted !== evicted) return false
          }
          for (let k = 0; k <= 3 * capacity; k++) {
            if (set.has(`id:${k}`) !== members.has(`id:${k}`)) return false
          }
          return true
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("FingerprintSet fingerprints", () => {
  it("reports none of 1M random UUIDs as seen after adding 1M other random UUIDs", () => {
    const n = 1_000_000
    const set = new FingerprintSet({ capacity: n })
    // Keeping 1M strings in an array costs more time than the test itself: keep a sample.
    const sample: Array<string> = []
    for (let i = 0; i < n; i++) {
      const id = randomUUID()
      set.add(id)
      if (i % 100 === 0) sample.push(id)
    }
    expect(set.size).toBe(n)
    expect(sample.every((id) => set.has(id))).toBe(true)
    let falsePositives = 0
    for (let i = 0; i < n; i++) if (set.has(randomUUID())) falsePositives++
    // Expected ≈ n² / 2^64 ≈ 5e-8; a hash with ~32 effective bits would give ~230.
    expect(falsePositives).toBe(0)
  })

  it("reports none of 1M similar sequential ids as seen after adding 1M of them", () => {
    const n = 1_000_000
    const set = new FingerprintSet({ capacity: n })
    const pad = (i: number) => String(i).padStart(7, "0")
    for (let i = 0; i < n; i++) set.add(`rec-${pad(i)}`)
    expect(set.size).toBe(n)
    let falsePositives = 0
    for (let i = n; i < 2 * n; i++) if (set.has(`rec-${pad(i)}`)) falsePositives++
    // Same digits in other shapes: shorter/longer padding, other prefix, suffix.
    for (let i = 0; i < 200_000; i++) {
      if (set.has(`rec-${String(i).padStart(6, "0")}`)) falsePositives++
      if (set.has(`rec-${String(i).padStart(8, "0")}`)) falsePositives++
      if (set.has(`reC-${pad(i)}`)) falsePositives++
      if (set.has(`rec-${pad(i)} `)) falsePositives++
    }
    expect(falsePositives).toBe(0)
  })

  it("gives distinct 64-bit fingerprints, and each 32-bit half collides at the birthday rate", () => {
    const n = 1 << 20
    // Expected colliding pairs for one 32-bit half: n(n-1)/2 / 2^32 ≈ 128 (Poisson, sd ≈ 11).
    const expected = (n * (n - 1)) / 2 / 2 ** 32
    const next = prng(42)
    const hex = (x: number) => Math.floor(x * 2 ** 32).toString(16)
    const sources: Record<string, (i: number) => string> = {
      sequential: (i) => `rec-${String(i).padStart(7, "0")}`,
      random: () => `${hex(next())}-${hex(next())}-${hex(next())}`
    }
    for (const [name, make] of Object.entries(sources)) {
      const his = new Uint32Array(n)
      const los = new Uint32Array(n)
      const full = new BigUint64Array(n)
      for (let i = 0; i < n; i++) {
        const { hi, lo } = fingerprint(make(i))
        his[i] = hi
        los[i] = lo
        full[i] = (BigInt(hi) << 32n) | BigInt(lo)
      }
      full.sort()
      let duplicates = 0
      for (let i = 1; i < n; i++) if (full[i] === full[i - 1]) duplicates++
      expect(duplicates, name).toBe(0)
      for (const half of [his, los]) {
        const pairs = collidingPairs(half)
        expect(pairs, name).toBeGreaterThan(expected - 60)
        expect(pairs, name).toBeLessThan(expected + 60)
      }
    }
  })

  it("flips about half of the 64 output bits when one input bit changes (avalanche)", () => {
    const next = prng(7)
    const samples = 20_000
    const flips = new Float64Array(64)
    let total = 0
    for (let s = 0; s < samples; s++) {
      const id = randomUUID()
      const at = Math.floor(next() * id.length)
      const bit = Math.floor(next() * 16)
      const changed = id.slice(0, at) + String.fromCharCode(id.charCodeAt(at) ^ (1 << bit)) + id.slice(at + 1)
      const a = fingerprint(id)
      const b = fingerprint(changed)
      const dHi = (a.hi ^ b.hi) >>> 0
      const dLo = (a.lo ^ b.lo) >>> 0
      total += popcount(dHi) + popcount(dLo)
      for (let k = 0; k < 32; k++) {
        flips[k]! += (dLo >>> k) & 1
        flips[32 + k]! += (dHi >>> k) & 1
      }
    }
    const mean = total / samples
    expect(mean).toBeGreaterThan(31.5)
    expect(mean).toBeLessThan(32.5)
    // Each output bit flips with probability ~1/2 (sd of the estimate ≈ 0.0035).
    for (const count of flips) {
      expect(count / samples).toBeGreaterThan(0.47)
      expect(count / samples).toBeLessThan(0.53)
    }
  })
})
