/**
 * `MemoryIndex` against the real engine: every case sends the same seeded `_bulk` requests to a
 * fresh `MemoryIndex` and to a fresh index on the run's OpenSearch node (one shard, no replica,
 * default dynamic mapping, the same `index.mapping.total_fields.limit`), then compares what both
 * answered and kept: per item the action, id, status, version, result, error type and the field
 * the error names; the stored documents (ids, `_source`, `_version`); the mapping of the fields
 * that were added. The real node is the reference: where they differ, `MemoryIndex` is wrong,
 * unless the difference is one it deliberately does not model (`notModelled`, below and in the
 * module header of MemoryIndex.ts), which is asserted to still differ.
 *
 * Exact reason texts, `took`, `_seq_no`, `_shards` and `index_uuid` are not compared.
 */
import { isDeepStrictEqual } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { Effect, Result } from "effect"
import * as MemoryIndex from "../src/MemoryIndex.js"

const ns = testNamespace(import.meta.filename)

// biome-ignore lint/suspicious/noExplicitAny: OpenSearch's JSON answers, only read to build the comparison
type Json = any

const http = async (method: string, path: string, body?: string, contentType = "application/json") => {
  const response = await fetch(`${node().url}${path}`, {
    method,
    headers: { "content-type": contentType },
    ...(body === undefined ? {} : { body })
  })
  const text = await response.text()
  return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as Json }
}

// --- Seeded generation --------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
const prng = (seed: number) => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(next() * values.length)] as A
  const chance = (p: number) => next() < p
  const shuffle = <A>(values: ReadonlyArray<A>): Array<A> => {
    const out = [...values]
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1))
      ;[out[i], out[j]] = [out[j] as A, out[i] as A]
    }
    return out
  }
  return { next, int, pick, chance, shuffle }
}
type Prng = ReturnType<typeof prng>

type Doc = Record<string, unknown>
const index = (id: string, document: Doc): MemoryIndex.BulkAction => ({ action: "index", id, document })
const create = (id: string, document: Doc): MemoryIndex.BulkAction => ({ action: "create", id, document })
const one = (actions: ReadonlyArray<MemoryIndex.BulkAction>) => [actions]

/** Scalars of every JSON kind, the kind drawn first. */
const scalar = (r: Prng): unknown =>
  r.pick([
    () => r.int(-1000, 1000),
    () => r.int(-100000, 100000) / 100 + 0.25,
    () => r.pick(["web-1", "db", "ok", "x y z", "é", "12", "true", ""]),
    () => r.chance(0.5),
    () => new Date(Date.UTC(2026, r.int(0, 11), r.int(1, 28), r.int(0, 23))).toISOString(),
    () => null
  ])()

const isoAt = (r: Prng) => new Date(Date.UTC(2026, 0, 1) + r.int(0, 365 * 86_400) * 1000).toISOString()

// --- Cases ----------------------------------------------------------------------------------------

interface Case {
  readonly name: string
  /** `index.mapping.total_fields.limit` on both sides. @default 1000 */
  readonly totalFieldsLimit?: number
  readonly requests: ReadonlyArray<ReadonlyArray<MemoryIndex.BulkAction>>
}

const validDocuments = (r: Prng): Case => {
  const requests = Array.from({ length: 3 }, (_, request) =>
    Array.from({ length: 20 }, (_, i) =>
      index(`doc-${request}-${i}`, {
        host: r.pick(["web-1", "web-2", "db-1"]),
        cpu: r.int(0, 1000) / 10 + 0.25,
        count: r.int(0, 1_000_000),
        up: r.chance(0.8),
        at: isoAt(r),
        tags: r.shuffle(["a", "b", "c", "d"]).slice(0, r.int(0, 3)),
        meta: { region: r.pick(["eu-west-1", "us-east-1"]), rack: r.int(1, 40) },
        ...(r.chance(0.3) ? { note: r.pick(["first", "second", "a longer note with spaces"]) } : {}),
        ...(r.chance(0.2) ? { nothing: null } : {})
      })
    )
  )
  return { name: "valid documents", requests }
}

const conflictingTypes = (r: Prng): Case => {
  const pairs: ReadonlyArray<readonly [unknown, unknown]> = [
    [r.int(1, 99), "forty-two"],
    [r.int(1, 99), "12"],
    [r.int(1, 99), r.int(1, 99) + 0.5],
    [1.5, "2.5"],
    ["abc", { x: 1 }],
    ["abc", r.int(1, 99)],
    ["abc", 2.5],
    ["abc", true],
    [{ x: 1 }, 5],
    [{ x: 1 }, "s"],
    [{ x: 1 }, [{ x: 2 }, 3]],
    [true, "yes"],
    [true, "false"],
    [true, ""],
    [false, 1],
    [isoAt(r), "tomorrow"],
    [isoAt(r), 1_717_236_000_000],
    [isoAt(r), "1717236000000"],
    ["2026-06-01", "2026-06"],
    ["2026-06-01", ""],
    ["2026-06-01", "2026-02-30"],
    ["2026-06-01", true],
    ["later", "2026-06-01"],
    [3, 3.7],
    [3.7, 3],
    [3, true],
    [3, ""],
    [3, " 12 "],
    [1, { x: 1 }],
    [null, 1],
    [[], "now text"]
  ]
  const firsts = pairs.map(([first], k) => index(`first-${k}`, { [`f${k}`]: first }))
  const seconds = pairs.map(([, second], k) =>
    r.chance(0.5) ? index(`second-${k}`, { [`f${k}`]: second }) : create(`first-${k}`, { [`f${k}`]: second })
  )
  // Half of the conflicts come in the request that set the type, half in the next one.
  const now: Array<MemoryIndex.BulkAction> = []
  const later: Array<MemoryIndex.BulkAction> = []
  for (const action of seconds) (r.chance(0.5) ? now : later).push(action)
  // A document that conflicts on one field adds none of its other, new fields.
  const mixed = index("mixed", { f0: "not a number", brandNew: 1, alsoNew: { deep: "x" } })
  return { name: "conflicting types", requests: [[...firsts, ...now], r.shuffle([...later, mixed])] }
}

const coercions = (r: Prng): Case => {
  const longs = [
    ...[" 12", "12 ", "+12", "-12", "1e3", "1E+3", "12.5", "0x10", "NaN", "Infinity", "-Infinity", "1e30"],
    ...["9223372036854775807", "9223372036854775808", "-9223372036854775809", "", " ", "1_000", ".5", "5."],
    ...["1,5", "12L", "0012", "true", "1.5e", "e5", "-", "."],
    ...[1e21, 1.5, -1.5, 9.3e18, 2 ** 63 - 1024, -(2 ** 63), 1e20, 2 ** 53 + 2]
  ]
  const floats = [
    ...[" 12", "+12", "1e3", "0x10", "NaN", "Infinity", "1e39", "", " ", ".5", "5.", "1f", "1d", "\t5\n"],
    ...["5 f", "1e", "-.5e-3F", "3.4028235e38", "1,5"],
    ...[3.4028235e38, 3.4028236e38, 1e39, 1e-50, 7]
  ]
  const dates = [
    ...["2026-06-01", "2026-06", "2026", "2026-06-01T10", "2026T10", "2026-06T10", "2026-06-01T", "tomorrow"],
    ...["2026-13", "2026-13-01", "2026-02-30", "2024-02-29", "2026-02-29", "2026-06-01 10:00:00", ""],
    ...["12345", "-5", "1.5", "1.", ".5", "+5", " 5", "1e3", "1.123456", "1.1234567", "-1.5", "00012"],
    ...["9223372036854775807", "-9223372036854775808", "12345678901234567890"],
    ...["2026-06-01T10:00:00+18:00", "2026-06-01T10:00:00+18:01", "2026-06-01T10:00:00+1:00"],
    ...["2026-06-01T10:00:00z", "2026-06-01T1", "2026-06-01T10:0", "2026-06-01T24:00:00Z"],
    ...["2026-06-01T10:00:00.123456789Z", "2026-06-01T10:00:00.1234567891Z", "-2026-06-01"],
    ...[12345, 1.5, -1e15, 1e20, 1e21, true]
  ]
  const booleans = ["true", "false", "", " ", "True", "1", "0", "yes", "off", 1, 0]
  const establish = index("types", { n: 1, f: 1.5, d: "2026-06-01T00:00:00Z", b: true, s: "text" })
  const values = [
    ...longs.map((v) => ({ n: v })),
    ...floats.map((v) => ({ f: v })),
    ...dates.map((v) => ({ d: v })),
    ...booleans.map((v) => ({ b: v })),
    ...[1, 1.5, false, "", [1, "a", true], [[1]], [{ x: 1 }]].map((v) => ({ s: v }))
  ]
  const actions = r.shuffle(values).map((document, i) => index(`v${i}`, document))
  return { name: "numeric, date and boolean coercions", requests: [[establish], actions] }
}

const dateDetection = (r: Prng): Case => {
  const strings = [
    ...["2026-06-01T00:00:00Z", "2026-06-01", "2026-06", "2026", "-2026", "0001-01-01", "0000-01-01"],
    ...["99999-01-01", "+2026-06-01", "-2026-06-01", "-2026-06", "2026-6-1", "2026-06-1", "20260601"],
    ...["2024-02-29", "2026-02-29", "2026-04-31", "2026-06-00", "2026-06-32", "2026-13", "2026-00"],
    ...["2026-06-01T", "2026-06-01Tx", "2026-06-01TZ", "2026-06-01T10", "2026-06-01T10Z", "2026-06-01T25"],
    ...["2026-06-01T10:60", "2026-06-01T10:00:60Z", "2026-06-01T24:00:00Z", "2026-06-01T10:00Z"],
    ...["2026-06-01T10:00:00.Z", "2026-06-01T10:00:00.", "2026-06-01T10:00:00,5Z", "2026-06-01t10:00:00z"],
    ...["2026-06-01T10:00:00.123456789Z", "2026-06-01T10:00:00.1234567890", "2026-06-01T10:00:00.5+01:00"],
    ...["2026-06-01T10:00:00+0100", "2026-06-01T10:00:00+01", "2026-06-01T10:00:00-00:00"],
    ...["2026-06-01T10:00:00+01:00:00", "2026-06-01T10:00:00+18:00", "2026-06-01T10:00:00+19:00"],
    ...["2026-06-01T10:00:00+25:00", "2026-06-01T10:00:00+01:60", "2026-06-01T10:00:00+013"],
    ...["2026-06-01T10:00:00+18:00:01", "2026-06-01T10:00:00 Z", "2026-06-01T10:00:00Z ", " 2026-06-01"],
    ...["2026T10", "2026-06T10", "2026T", "2026-06T", "2026-13T10", "2026-06-01Z", "2026Z", "2026-W23"],
    ...["2026-152", "1e3", "NaN", "1f", "12", "", "2026-06-01 10:00:00"]
  ]
  // One field per document, so a value the engine refuses takes only its own document down.
  const single = strings.map((s, k) => index(`d${k}`, { [`f${k}`]: s }))
  const together = index("together", {
    ga: "2026-06-01",
    gb: "2026-06",
    gc: "not a date",
    gd: "2026-06-01T10Z"
  })
  return { name: "date detection", requests: [r.shuffle([...single, together])] }
}

const deepObjects = (r: Prng): Case => {
  // Leaf types follow the key (`n*` numbers, `s*` strings, `b*` booleans), with a little noise.
  const leaf = (key: string): unknown => {
    if (r.chance(0.08)) return scalar(r)
    if (key.startsWith("n")) return r.int(0, 100)
    if (key.startsWith("s")) return r.pick(["a", "b", "c"])
    return r.chance(0.5)
  }
  const keys = ["o", "p", "q"]
  const leaves = ["n1", "s1", "b1", "n2"]
  const nest = (depth: number): Doc => {
    const doc: Doc = {}
    if (depth > 1) doc[r.pick(keys)] = nest(depth - 1)
    for (let i = r.int(0, 2); i > 0; i--) {
      const key = r.pick(leaves)
      doc[key] = leaf(key)
    }
    if (depth > 1 && r.chance(0.15)) doc[`${r.pick(keys)}s`] = [nest(Math.min(depth - 1, 3)), nest(1)]
    return doc
  }
  // The same paths again, written with dots: `{"o.p.n1": 1}`.
  const dotted = (depth: number): Doc => ({
    [`${Array.from({ length: depth }, () => r.pick(keys)).join(".")}.${r.pick(leaves)}`]: r.int(0, 100)
  })
  const depths = [1, 2, 3, 5, 8, 12, 17, 18, 19, 19, 20, 20, 21, 21, 22, 25]
  const actions = r
    .shuffle([...depths, ...depths.map((d) => -d)])
    .map((d, i) => index(`deep-${i}`, d > 0 ? nest(d) : dotted(-d)))
  const nestedArrays = [19, 20, 21].map((depth) =>
    index(`arrays-${depth}`, { [`arr${depth}`]: JSON.parse(`${"[".repeat(depth)}1${"]".repeat(depth)}`) })
  )
  return { name: "deep objects", requests: [actions.slice(0, 16), [...actions.slice(16), ...nestedArrays]] }
}

const longStrings = (r: Prng): Case => {
  const kib40 = (unit: string) => unit.repeat(Math.floor((40 * 1024) / Buffer.byteLength(unit)))
  const ascii = kib40("x")
  const accented = kib40("é")
  const emoji = kib40("😀")
  const actions = [
    index("types", { n: 1, d: "2026-06-01", b: true, s: "short" }),
    index("ascii", { s: ascii, other: ascii.slice(0, 1000) }),
    index("accented", { s: accented }),
    index("emoji", { s: emoji, tags: [emoji.slice(0, 200), ascii.slice(0, 300)] }),
    index("into-long", { n: ascii }),
    index("into-date", { d: ascii }),
    index("into-boolean", { b: ascii }),
    index("long-name", { [`k${"k".repeat(10_000)}`]: 1 }),
    index("long-nested-name", { o: { [`q${"q".repeat(5_000)}`]: { r: accented.slice(0, 5000) } } }),
    index("looks-like-date", { late: `2026-06-01T10:00:00.${"1".repeat(40_000)}Z` })
  ]
  return { name: "long strings", requests: [r.shuffle(actions)] }
}

const unicode = (r: Prng): Case => {
  const ids = [
    "caf\u00e9",
    "cafe\u0301",
    "😀",
    "👩‍👩‍👧‍👦",
    "עברית",
    "العربية",
    "\u202eabc",
    "漢字",
    "a b",
    "a/b",
    "a?b=c&d",
    "%20",
    "_doc",
    "..",
    ".",
    "\u0000",
    "é".repeat(256),
    "😀".repeat(128)
  ]
  const randomId = () =>
    Array.from({ length: r.int(1, 6) }, () =>
      String.fromCodePoint(
        r.pick([r.int(0x20, 0x7e), r.int(0xa0, 0x2ff), r.int(0x590, 0x6ff), r.int(0x1f300, 0x1f64f)])
      )
    ).join("")
  const first = r.shuffle([...ids, ...Array.from({ length: 12 }, randomId)]).map((id, i) => index(id, { i }))
  const fields = [
    index("fields-1", {
      "caf\u00e9": 1,
      "cafe\u0301": "x",
      "😀": true,
      עברית: { ש: 1 },
      "\u202e": 1,
      漢字: [1, 2]
    }),
    index("fields-2", { "caf\u00e9": "not a number" }),
    index("fields-3", { "cafe\u0301": 5, "😀": "false" })
  ]
  // The NFC id again replaces only itself; the NFD one stays.
  const again = [index("caf\u00e9", { i: "again" }), create("cafe\u0301", { i: 0 })]
  // An id over 512 bytes (in UTF-8, not in characters) fails the whole request.
  const tooLong = [index("ok-before", {}), index(`${"é".repeat(256)}x`, {})]
  return {
    name: "unicode ids and field names",
    requests: [first, [...fields, ...again], tooLong, [index("after", {})]]
  }
}

const duplicateIds = (r: Prng): Case => {
  const scripted = [
    index("a", { v: 1 }),
    index("a", { v: 2 }),
    create("a", { v: 3 }),
    create("b", { v: 1 }),
    create("b", { v: 2 }),
    index("c", { v: 1 }),
    index("c", { v: "bad" }),
    index("c", { v: 3 }),
    create("d", { v: "bad" }),
    create("d", { v: 4 }),
    index("", { v: 5 })
  ]
  const ids = ["a", "b", "c", "d", "e", "f"]
  const random = () =>
    Array.from({ length: 25 }, () =>
      (r.chance(0.6) ? index : create)(r.pick(ids), { v: r.chance(0.85) ? r.int(0, 9) : "bad" })
    )
  return { name: "duplicate ids and create on existing ids", requests: [scripted, random(), random()] }
}

const dottedNames = (r: Prng): Case => {
  const scripted = [
    { "a.b": 1 },
    { a: { b: 2 } },
    { a: { b: "x" } },
    { "a.b.c": 1 },
    { a: 5 },
    { x: { "y.z": "s" } },
    { "x.y": { z: 2 } },
    { p: 1 },
    { "p.q": 1 },
    { p: { q: 1 } },
    { "a.": 3 },
    { "a..": 3 },
    { "t.": 3 },
    { "..": 3 },
    { ".": 3 },
    { ".a": 1 },
    { "a..b": 1 },
    { "m.n": 1, m: { n: "x" } },
    { "c.d": 1, c: { e: 2 } },
    { "k.l": 1.5, k: { l: 1 } },
    { "q.r": 1, "q.r.s": 2 },
    { "u.v": { w: 1 }, u: { v: 2 } }
  ]
  const segments = ["a", "g", "h"]
  const random = Array.from({ length: 20 }, () => {
    const path = Array.from({ length: r.int(1, 3) }, () => r.pick(segments))
    const value = path.at(-1) === "h" ? r.pick(["s", "t"]) : r.int(0, 9)
    if (r.chance(0.5)) return { [path.join(".")]: value }
    return path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Doc
  })
  return {
    name: "dotted field names",
    requests: [scripted.map((d, i) => index(`s${i}`, d)), random.map((d, i) => index(`r${i}`, d))]
  }
}

const metadataFields = (r: Prng): Case => {
  const refused = ["_id", "_index", "_source", "_routing", "_version", "_seq_no", "_field_names", "_ignored"]
  const docs: ReadonlyArray<Doc> = [
    ...refused.map((field) => ({ [field]: r.pick([1, "x", true]) })),
    ...["_nested_path", "_data_stream_timestamp"].map((field) => ({ [field]: "x" })),
    ...["_type", "_foo", "_uid", "_all", "_parent", "_size", "_timestamp"].map((field) => ({ [field]: 1 })),
    { o: { _id: 1, _source: "nested is fine" } },
    { "_id.x": 1 },
    { _id: [] },
    { _id: null },
    { _id: [null] },
    { _id: {} },
    { _source: null },
    { _doc_count: 3 },
    { _doc_count: 0 },
    { _doc_count: 1.5 },
    { _doc_count: null },
    { _doc_count: [2] },
    { _doc_count: "5" },
    { _doc_count: 1e10 },
    { ok: 1, _routing: "r" }
  ]
  return { name: "metadata fields in the source", requests: [docs.map((d, i) => index(`m${i}`, d))] }
}

const emptyNames = (): Case => {
  const docs: ReadonlyArray<Doc> = [
    { "": 1 },
    { o: { "": 1 } },
    { " ": 1 },
    { "\t": 1 },
    { x: { " ": 2 } },
    { x: { "\t": {} } },
    { y: { " ": null } },
    { z: { " ": [] } },
    { "a. b": 1 },
    { "a.\u00a0": 1 },
    { " . ": 1 },
    { "w. ": 1 },
    { "ok.  x": 1 },
    { ok2: "fine", "": "takes the whole document down" }
  ]
  return { name: "empty and blank field names", requests: [docs.map((d, i) => index(`e${i}`, d))] }
}

const nullsAndArrays = (r: Prng): Case => {
  const scripted: ReadonlyArray<Doc> = [
    { a: null },
    { a0: [null] },
    { a1: [] },
    { b: [1, "x"] },
    { c: ["x", 1] },
    { d: [1, 1.5] },
    { e: [true, "true"] },
    { g: [{ x: 1 }, 5] },
    { h: [5, { x: 1 }] },
    { i: [[1, 2], [3]] },
    { j: [null, 1, null] },
    { m: ["2026-06-01", "x"] },
    { o: [{ x: 1 }, { x: "a" }] },
    { p: [{ x: "a" }, { y: 1 }] },
    { q: {} },
    { r: [{}] },
    { s: "x" },
    { s: [1, "a", true, null] },
    { t: 1 },
    { t: [1, "x"] },
    { t: [1.5, "2", null] },
    { u: { x: 1 } },
    { u: [{ x: 2 }, null] },
    { u: [{ x: 2 }, 5] },
    { v: [null, [null, []]] },
    { w: ["a", ["b", ["c"]]] }
  ]
  // Arrays of mixed kinds into new and into existing fields.
  const random = Array.from({ length: 30 }, (_, i) => ({
    [`z${i % 6}`]: Array.from({ length: r.int(0, 4) }, () => scalar(r))
  }))
  return {
    name: "null values and arrays",
    requests: [scripted.map((d, i) => index(`n${i}`, d)), random.map((d, i) => index(`z${i}`, d))]
  }
}

const totalFieldsLimit = (r: Prng): Case => {
  const longs = (prefix: string, n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]))
  const texts = (prefix: string, n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, "t"]))
  const scripted: ReadonlyArray<Doc> = [
    longs("l", 20),
    texts("t", 10),
    { obj: longs("o", 5) },
    texts("u", 3),
    longs("m", 4),
    { one: 1 },
    { l0: 5, t0: "still fits", obj: { o1: 2 } },
    { late: null },
    { late: [] },
    { late: {} },
    { l1: "parse error first", extra: 1 },
    { extra: [1, "merge conflict first"], more: 1 }
  ]
  // A second index, filled at random until it overflows.
  const random = Array.from({ length: 15 }, () =>
    Object.fromEntries(
      Array.from({ length: r.int(1, 6) }, () => [
        `${r.pick(["a", "b", "c", "d", "e", "f", "g", "h"])}${r.int(0, 9)}`,
        r.pick([1, "s", { inner: 1 }, true])
      ])
    )
  )
  return {
    name: "total fields limit (50)",
    totalFieldsLimit: 50,
    requests: [scripted.map((d, i) => index(`f${i}`, d)), random.map((d, i) => index(`g${i}`, d))]
  }
}

/**
 * What `MemoryIndex` deliberately does not model (its module header lists the same): each case
 * here still differs from the real engine, and is asserted to, so that modelling one later shows.
 */
const notModelled: ReadonlyArray<{ readonly case: Case; readonly reason: string }> = [
  {
    reason:
      "the second dynamic date format (yyyy/MM/dd): OpenSearch maps such strings as dates of that format",
    case: {
      name: "slash dates",
      requests: one([
        index("1", { slash: "2026/06/01", slashTime: "2026/06/01 10:00:00" }),
        index("2", { slash: "2026-06-01" })
      ])
    }
  },
  {
    reason:
      "zone names in ISO dates (UTC, Europe/Paris): OpenSearch parses them, MemoryIndex only Z and offsets",
    case: {
      name: "zone names in dates",
      requests: one([
        index("1", { named: "2026-06-01T10:00:00UTC", at: "2026-06-01T10:00:00Z" }),
        index("2", { at: "2026-06-01T10:00:00Europe/Paris" })
      ])
    }
  },
  {
    reason: "numeric strings in non-ASCII digits: Java's number parsers read them into a long field",
    case: { name: "non-ASCII digits", requests: one([index("1", { n: 1 }), index("2", { n: "١٢" })]) }
  },
  {
    reason: "hexadecimal floating point strings (0x1p3): Java's Float.parseFloat reads them",
    case: { name: "hex float strings", requests: one([index("1", { f: 1.5 }), index("2", { f: "0x1p3" })]) }
  },
  {
    reason:
      "_primary_term in a source: OpenSearch maps it as a field, then Lucene refuses the document (illegal_argument_exception)",
    case: { name: "_primary_term in the source", requests: one([index("1", { _primary_term: 1 })]) }
  },
  {
    reason: "unpaired UTF-16 surrogates: OpenSearch stores them as U+FFFD",
    case: { name: "unpaired surrogate id", requests: one([index("\ud800", { v: 1 })]) }
  }
]

const cases: ReadonlyArray<Case> = [
  validDocuments(prng(1)),
  conflictingTypes(prng(2)),
  coercions(prng(3)),
  dateDetection(prng(4)),
  deepObjects(prng(5)),
  longStrings(prng(6)),
  unicode(prng(7)),
  duplicateIds(prng(8)),
  dottedNames(prng(9)),
  metadataFields(prng(10)),
  emptyNames(),
  nullsAndArrays(prng(11)),
  totalFieldsLimit(prng(12))
]

// --- What both sides answered, in one shape -------------------------------------------------------

/**
 * Not modelled, and so excluded from the comparison: which object a "Limit of mapping depth" error
 * names when several new objects are too deep (OpenSearch names the first in its hash map's order,
 * MemoryIndex the shallowest). Both still answer 400 `illegal_argument_exception` for the document.
 */
const excludedFromComparison = /^Limit of mapping depth/

/** The field an error's reason names, in the phrasings OpenSearch uses; undefined when it names none. */
const namedField = (reason: string | undefined): string | undefined =>
  excludedFromComparison.test(reason ?? "")
    ? "(not compared)"
    : reason?.match(/(?:field|mapper|mapping for|mapping) \[([^\]]*)\]/i)?.[1]

interface ItemOutcome {
  readonly action: string
  readonly id: string
  readonly status: number
  readonly version?: number
  readonly result?: string
  readonly error?: { readonly type: string; readonly field: string | undefined }
}

type ResponseOutcome =
  | { readonly errors: boolean; readonly items: ReadonlyArray<ItemOutcome> }
  | { readonly refused: { readonly status: number; readonly type: string } }

interface Outcome {
  readonly responses: ReadonlyArray<ResponseOutcome>
  readonly documents: ReadonlyArray<{
    readonly id: string
    readonly version: number
    readonly source: unknown
  }>
  readonly mapping: Readonly<Record<string, string>>
}

const itemOutcome = (action: string, result: Json): ItemOutcome => ({
  action,
  id: result._id,
  status: result.status,
  ...(result.status < 300 ? { version: result._version, result: result.result } : {}),
  ...(result.error === undefined
    ? {}
    : { error: { type: result.error.type, field: namedField(result.error.reason) } })
})

const byId = <A extends { readonly id: string }>(values: ReadonlyArray<A>): Array<A> =>
  [...values].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

const sortedRecord = (entries: Iterable<readonly [string, string]>) =>
  Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))

/** `_mapping` flattened to the names MemoryIndex uses: dotted paths, `text` only with its keyword. */
const flattenMapping = (properties: Json, prefix = ""): Array<[string, string]> =>
  Object.entries(properties ?? {}).flatMap(([key, field]: [string, Json]) => {
    const path = prefix === "" ? key : `${prefix}.${key}`
    if (field.properties !== undefined || field.type === "object" || field.type === undefined) {
      return [[path, "object"] as [string, string], ...flattenMapping(field.properties, path)]
    }
    if (field.type === "text") {
      const keyword = field.fields?.keyword
      return [
        [path, keyword?.type === "keyword" && keyword.ignore_above === 256 ? "text" : "text(no keyword)"]
      ]
    }
    return [[path, field.format === undefined ? field.type : `${field.type}(${field.format})`]]
  })

let indices = 0
const real = async (c: Case): Promise<Outcome> => {
  const name = `${ns}-${++indices}`
  const created = await http(
    "PUT",
    `/${name}`,
    JSON.stringify({
      settings: {
        "index.number_of_shards": 1,
        "index.number_of_replicas": 0,
        "index.mapping.total_fields.limit": c.totalFieldsLimit ?? 1000
      }
    })
  )
  if (created.status !== 200) throw new Error(`creating ${name}: ${JSON.stringify(created.body)}`)
  const responses: Array<ResponseOutcome> = []
  for (const actions of c.requests) {
    const answer = await http("POST", "/_bulk", MemoryIndex.toNdjson(name, actions), "application/x-ndjson")
    responses.push(
      answer.status === 200
        ? {
            errors: answer.body.errors,
            items: answer.body.items.map((item: Json) => {
              const [action, result] = Object.entries(item)[0] as [string, Json]
              return itemOutcome(action, result)
            })
          }
        : { refused: { status: answer.status, type: answer.body?.error?.type } }
    )
  }
  await http("POST", `/${name}/_refresh`)
  const found = await http("POST", `/${name}/_search`, JSON.stringify({ size: 10_000, version: true }))
  const mapping = await http("GET", `/${name}/_mapping`)
  return {
    responses,
    documents: byId(
      found.body.hits.hits.map((hit: Json) => ({ id: hit._id, version: hit._version, source: hit._source }))
    ),
    mapping: sortedRecord(flattenMapping(mapping.body[name].mappings.properties))
  }
}

const memory = (c: Case) =>
  Effect.gen(function* () {
    const search = yield* MemoryIndex.make({
      indexName: "memory",
      totalFieldsLimit: c.totalFieldsLimit ?? 1000
    })
    const responses: Array<ResponseOutcome> = []
    for (const actions of c.requests) {
      const answer = yield* Effect.result(search.bulk(actions))
      if (Result.isSuccess(answer)) {
        responses.push({
          errors: answer.success.errors,
          items: answer.success.items.map((item) =>
            "index" in item ? itemOutcome("index", item.index) : itemOutcome("create", item.create)
          )
        })
      } else {
        // The request-level answer is in the message: "400 action_request_validation_exception: ...".
        const [, status, type] = answer.failure.message.match(/^(\d{3}) ([^:\s]+)/) ?? []
        responses.push({ refused: { status: Number(status), type: type ?? answer.failure.message } })
      }
    }
    const documents = yield* search.documents
    return {
      responses,
      documents: byId(documents.map(({ id, version, source }) => ({ id, version, source }))),
      mapping: sortedRecord(yield* search.mapping)
    } satisfies Outcome
  })

// --- The comparison ------------------------------------------------------------------------------

const rows: Array<{ readonly name: string; readonly items: number; readonly matches: string }> = []
const itemsOf = (c: Case) => c.requests.reduce((n, actions) => n + actions.length, 0)

describe("MemoryIndex against a real OpenSearch node", () => {
  beforeAll(async () => {
    await http("DELETE", `/${ns}-*`)
  })
  afterAll(async () => {
    const width = Math.max(...rows.map((row) => row.name.length))
    console.log(
      [
        `${"case".padEnd(width)}  items  matches now`,
        ...rows.map((row) => `${row.name.padEnd(width)}  ${String(row.items).padStart(5)}  ${row.matches}`)
      ].join("\n")
    )
    await http("DELETE", `/${ns}-*`)
  })

  for (const c of cases) {
    it.effect(c.name, () =>
      Effect.gen(function* () {
        const expected = yield* Effect.promise(() => real(c))
        const actual = yield* memory(c)
        rows.push({
          name: c.name,
          items: itemsOf(c),
          matches: isDeepStrictEqual(actual, expected) ? "yes" : "NO"
        })
        expect(actual).toEqual(expected)
      })
    )
  }

  for (const { case: c, reason } of notModelled) {
    it.effect(`not modelled: ${c.name} (${reason})`, () =>
      Effect.gen(function* () {
        const expected = yield* Effect.promise(() => real(c))
        const actual = yield* memory(c)
        const matches = isDeepStrictEqual(actual, expected)
        rows.push({
          name: `${c.name} (not modelled)`,
          items: itemsOf(c),
          matches: matches ? "yes" : "no, as listed"
        })
        expect(matches, "modelled now: move it out of notModelled and the MemoryIndex header").toBe(false)
      })
    )
  }
})
