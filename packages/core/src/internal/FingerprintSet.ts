/**
 * A bounded, compact set of string ids that forgets its oldest entries first (FIFO by first
 * insertion). It backs `DedupCache`: the processor asks "did I already write this record id?".
 *
 * ## Design
 *
 * Ids are not stored. Each id is reduced to a 64-bit fingerprint (`hi`, `lo`: two 32-bit words),
 * kept in two typed arrays:
 *
 * - `table`: an open-addressing hash table with linear probing, `ceil(capacity / 0.7)` slots of
 *   8 bytes (the `lo`, `hi` pair, interleaved in one Uint32Array), so the load factor never exceeds
 *   0.7. The home slot of a fingerprint is `floor(hi × slots / 2^32)` (multiply-shift range
 *   reduction, so the table need not be a power of two and is sized exactly). A lookup, hit or
 *   miss, compares whole 64-bit fingerprints in one run of adjacent slots: typically one cache
 *   miss. The pair (0, 0) marks an empty slot; the single fingerprint equal to it is stored as (1, 0).
 * - `ring`: a circular buffer of `capacity` fingerprints (8 bytes each) in insertion order. The
 *   oldest entry is at `head`, a new one is written at `head + size`. Evicting the oldest `k`
 *   entries reads the next `k` ring cells and deletes each from the table: O(k).
 *
 * Deletion is backward-shift deletion: later entries of the probe run move back into the hole when
 * their home slot allows, so there are no tombstones and probe lengths do not degrade with churn.
 *
 * Memory: `8 × capacity + 8 × ceil(capacity / 0.7)` bytes ≈ 19.4 bytes per entry at every capacity;
 * at the default 10,000,000 ids: 80 MB ring + 114.3 MB table = 194.3 MB. A `Set<string>` of 10M
 * UUID strings takes ~90 bytes per entry (about 0.9 GB) in V8.
 *
 * Re-adding an id that is present is a no-op: it does NOT refresh the entry's age. The set is FIFO
 * by first insertion, not LRU: moving an entry to the young end would need a linked list (more
 * bytes per entry), and a redelivered record need not be remembered longer than its first copy.
 *
 * When an add finds the set full it first evicts the `evictionBatch` oldest entries (default
 * `ceil(capacity / 16)`: 625,000 at 10M), so `size` never exceeds `capacity`. Eviction costs O(1)
 * per entry either way; the batch sets how much headroom one eviction makes (and how long that one
 * `add` takes: ~0.1–0.3 s for 625,000 entries).
 *
 * ## Correctness bound (false "seen")
 *
 * A lookup of an id that is not in the set answers "seen" only if its 64-bit fingerprint equals
 * that of one of the n stored entries. Modelling the hash as uniform over 2^64 values, by the union
 * bound
 *
 *     P(false positive per lookup) ≤ n / 2^64 = 10^7 / 1.8447e19 ≈ 5.42e-13 < 10^-12
 *
 * at the full default capacity (n = 10^7). (Storing (0, 0) as (1, 0) doubles the odds for that one
 * value only: negligible.) Over L lookups the expected number of false positives is ≤ L × n / 2^64,
 * e.g. ≈ 5.4e-4 for a billion lookups against a full set.
 *
 * That model needs all 64 bits to be well mixed. The hash below reads the id's UTF-16 code units
 * two at a time (a 32-bit block; no TextEncoder, no allocation) into a two-lane, 64-bit state in
 * the style of MurmurHash3 x86_128: each lane mixes the block with its own multiply/rotate
 * constants and the lanes are cross-added after every block (one 64-bit state, not two independent
 * 32-bit hashes); the length, a murmur3 `fmix32` / lowbias32 avalanche finalizer per lane and a
 * last cross-add finish it. It runs at ~10M UUIDs/s; `node:crypto` was measured at 0.2–0.7M ids/s
 * (`createHash` md5/sha1/sha256, `crypto.hash`), too slow per id. The tests check the mixing:
 * no false positives among millions of random and of sequential ("rec-0000001", …) ids,
 * birthday-bound collision counts for each 32-bit half, and ~32 of 64 output bits flipping per
 * changed input bit.
 *
 * Caveat: this is not a cryptographic hash. Someone who knows it and controls ids could craft an id
 * whose fingerprint equals that of a known id. Record ids here come from our own producers and the
 * stream.
 *
 * ## Why hand-written
 *
 * No well-kept npm package offers this combination: general caches (`lru-cache`, `mnemonist`,
 * `quick-lru`) keep the key strings, so they cost about as much as a `Set<string>`; Bloom filters
 * cannot delete, and cuckoo/quotient filters delete but use short fingerprints (false-positive
 * rates of 10^-3…10^-6, far above the 10^-12 needed here, since a false positive drops a record)
 * and have no FIFO eviction. The structure is ~150 lines of code over two typed arrays; the tests
 * compare it with a reference model (a `Set` plus a FIFO array) on random operation sequences.
 */

export interface FingerprintSetOptions {
  /** Most ids held at once; integer in [1, 2^28]. */
  readonly capacity: number
  /**
   * How many of the oldest ids an add evicts when it finds the set full; integer in
   * [1, capacity]. Default: `ceil(capacity / 16)`.
   */
  readonly evictionBatch?: number
}

/** The largest capacity accepted (~5.2 GB of typed arrays). */
export const maxCapacity = 2 ** 28

/** Highest load factor of the hash table. */
const maxLoad = 0.7

// Lane constants (MurmurHash3 for lane 1, xxHash32 primes for lane 2).
const C1 = 0xcc9e2d51 | 0
const C2 = 0x1b873593 | 0
const C3 = 0x85ebca77 | 0
const C4 = 0x27d4eb2f | 0
const SEED1 = 0x9747b28c | 0
const SEED2 = 0x2f3b6c1d | 0

/**
 * Output of `hashInto`: `[hi, lo]`, unsigned. A typed array rather than a returned object (no
 * allocation per call) or module-level `let`s (measured ~20% slower).
 */
const out = new Uint32Array(2)

/** Hashes `id` to 64 bits, written to `out`. */
const hashInto = (id: string): void => {
  const n = id.length
  let h1 = SEED1 ^ n
  let h2 = SEED2
  const end = n & ~1
  let i = 0
  for (; i < end; i += 2) {
    const k = id.charCodeAt(i) | (id.charCodeAt(i + 1) << 16)
    let k1 = Math.imul(k, C1)
    k1 = (k1 << 15) | (k1 >>> 17)
    h1 ^= Math.imul(k1, C2)
    h1 = (h1 << 19) | (h1 >>> 13)
    h1 = (h1 + h2) | 0
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0

    let k2 = Math.imul(k, C3)
    k2 = (k2 << 17) | (k2 >>> 15)
    h2 ^= Math.imul(k2, C4)
    h2 = (h2 << 17) | (h2 >>> 15)
    h2 = (h2 + h1) | 0
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0
  }
  if (i < n) {
    // Odd length: the last code unit alone (the length, mixed in below, tells "a" from "a\0").
    const k = id.charCodeAt(i)
    let k1 = Math.imul(k, C1)
    k1 = (k1 << 15) | (k1 >>> 17)
    h1 ^= Math.imul(k1, C2)
    let k2 = Math.imul(k, C3)
    k2 = (k2 << 17) | (k2 >>> 15)
    h2 ^= Math.imul(k2, C4)
  }
  h1 ^= n
  h2 ^= n
  h1 = (h1 + h2) | 0
  h2 = (h2 + h1) | 0
  // murmur3 fmix32
  h1 ^= h1 >>> 16
  h1 = Math.imul(h1, 0x85ebca6b)
  h1 ^= h1 >>> 13
  h1 = Math.imul(h1, 0xc2b2ae35)
  h1 ^= h1 >>> 16
  // lowbias32 (C. Wellons)
  h2 ^= h2 >>> 16
  h2 = Math.imul(h2, 0x7feb352d)
  h2 ^= h2 >>> 15
  h2 = Math.imul(h2, 0x846ca68b)
  h2 ^= h2 >>> 16
  h1 = (h1 + h2) | 0
  h2 = (h2 + h1) | 0
  out[0] = h1
  out[1] = h2
}

/** The 64-bit fingerprint of an id as two unsigned 32-bit words (for tests and diagnostics). */
export const fingerprint = (id: string): { readonly hi: number; readonly lo: number } => {
  hashInto(id)
  return { hi: out[0]!, lo: out[1]! }
}

const checkInteger = (name: string, value: unknown, min: number, max: number): number => {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `FingerprintSet: options.${name} must be an integer in [${min}, ${max}], got ${String(value)}`
    )
  }
  return value
}

export class FingerprintSet {
  readonly capacity: number
  readonly evictionBatch: number
  /** Number of hash table slots: `ceil(capacity / maxLoad)`, always more than `capacity`. */
  readonly slots: number

  /** Fingerprints in insertion order: `lo` at 2p, `hi` at 2p + 1. */
  readonly #ring: Uint32Array
  /** Fingerprints by slot: `lo` at 2s, `hi` at 2s + 1; (0, 0) is an empty slot. */
  readonly #table: Uint32Array
  /** `slots / 2^32`: the home slot of `hi` is `floor(hi × #scale)`. */
  readonly #scale: number

  /** Ring position of the oldest entry. */
  #head = 0
  #size = 0
  #evicted = 0

  constructor(options: FingerprintSetOptions) {
    const capacity = checkInteger("capacity", options.capacity, 1, maxCapacity)
    const evictionBatch =
      options.evictionBatch === undefined
        ? Math.ceil(capacity / 16)
        : checkInteger("evictionBatch", options.evictionBatch, 1, capacity)
    this.capacity = capacity
    this.evictionBatch = evictionBatch
    this.slots = Math.ceil(capacity / maxLoad)
    this.#scale = this.slots / 2 ** 32
    this.#ring = new Uint32Array(2 * capacity)
    this.#table = new Uint32Array(2 * this.slots)
  }

  /** Number of ids held; never more than `capacity`. */
  get size(): number {
    return this.#size
  }

  /** Entries evicted (oldest first) since the set was made. */
  get evicted(): number {
    return this.#evicted
  }

  /** Bytes held by the two typed arrays (the set's whole footprint, bar a few object headers). */
  get byteLength(): number {
    return this.#ring.byteLength + this.#table.byteLength
  }

  /** Whether `id` was added and has not been evicted since (up to the collision bound above). */
  has(id: string): boolean {
    hashInto(id)
    return this.#find(out[0]!, out[1]!) >= 0
  }

  /**
   * Adds `id` as the youngest entry, evicting the `evictionBatch` oldest first if the set is full.
   * An id already present is left as it is (its age is not refreshed).
   */
  add(id: string): void {
    hashInto(id)
    const hi = out[0]!
    const lo = out[1]!
    let slot = this.#find(hi, lo)
    if (slot >= 0) return
    if (this.#size === this.capacity) {
      this.#evictOldest(this.evictionBatch)
      // Backward shifts may have moved entries into the slot found above: probe again.
      slot = this.#find(hi, lo)
    }
    slot = ~slot
    const table = this.#table
    // (0, 0) marks an empty slot; the one fingerprint equal to it is stored as (1, 0) instead.
    const storedLo = (lo | hi) === 0 ? 1 : lo
    table[2 * slot] = storedLo
    table[2 * slot + 1] = hi
    let pos = this.#head + this.#size
    if (pos >= this.capacity) pos -= this.capacity
    const ring = this.#ring
    ring[2 * pos] = storedLo
    ring[2 * pos + 1] = hi
    this.#size++
  }

  /** The slot holding the fingerprint, or `~slot` of the empty slot that ended the probe. */
  #find(hi: number, rawLo: number): number {
    const lo = (rawLo | hi) === 0 ? 1 : rawLo
    const table = this.#table
    const slots = this.slots
    let i = (hi * this.#scale) >>> 0
    for (;;) {
      const a = table[2 * i]!
      const b = table[2 * i + 1]!
      if (a === lo && b === hi) return i
      if ((a | b) === 0) return ~i
      i = i + 1 === slots ? 0 : i + 1
    }
  }

  /** Removes the `count` oldest entries (`count` ≤ size). */
  #evictOldest(count: number): void {
    const table = this.#table
    const ring = this.#ring
    const slots = this.slots
    const scale = this.#scale
    const capacity = this.capacity
    let head = this.#head
    for (let n = 0; n < count; n++) {
      const lo = ring[2 * head]!
      const hi = ring[2 * head + 1]!
      let i = (hi * scale) >>> 0
      for (;;) {
        const a = table[2 * i]!
        const b = table[2 * i + 1]!
        if (a === lo && b === hi) break
        if ((a | b) === 0) throw new Error("FingerprintSet: internal error, evicted entry not in table")
        i = i + 1 === slots ? 0 : i + 1
      }
      // Backward-shift deletion: pull later entries of the cluster into the hole when their home
      // slot is at or before the hole (cyclically), so every entry stays reachable from its home
      // and no tombstones are needed.
      let j = i
      for (;;) {
        j = j + 1 === slots ? 0 : j + 1
        const a = table[2 * j]!
        const b = table[2 * j + 1]!
        if ((a | b) === 0) break
        let fromHome = j - ((b * scale) >>> 0)
        if (fromHome < 0) fromHome += slots
        let fromHole = j - i
        if (fromHole < 0) fromHole += slots
        if (fromHome >= fromHole) {
          table[2 * i] = a
          table[2 * i + 1] = b
          i = j
        }
      }
      table[2 * i] = 0
      table[2 * i + 1] = 0
      head = head + 1 === capacity ? 0 : head + 1
    }
    this.#head = head
    this.#size -= count
    this.#evicted += count
  }
}
