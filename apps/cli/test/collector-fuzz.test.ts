/**
 * Fuzzing the collector through a real HTTP server on 127.0.0.1:0: 10,000+ malformed, oversized,
 * wrongly typed and hostile requests (random bytes, deep nesting, huge strings, wrong types for each
 * field, `__proto__` keys, invalid gzip and zip bombs, wrong content types and codings, missing and
 * duplicate headers, wrong methods and paths). Each must be answered — no hang, no reset — with a
 * 4xx and a JSON error body, or 202 when part of it is valid; never a 5xx. Valid records sent
 * alongside hostile ones must all be accepted and, at the end, indexed.
 *
 * Cases come from fast-check with a fixed seed (printed on failure with the offending case) and
 * run with bounded concurrency; the pipeline runs on the live clock.
 */
import * as http from "node:http"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { MemoryPipeline } from "@spillway/memory"
import { Effect } from "effect"
import fc from "fast-check"
import * as CollectorServer from "../src/collector/server.js"
import { apiKey, waitUntilIdle } from "./harness.js"

const seed = 20261124
const numRuns = 10_000
const concurrency = 8
const maxBodyBytes = 64 * 1024

// ---- cases ----------------------------------------------------------------------------------

type Item = { readonly kind: "valid" } | { readonly kind: "hostile"; readonly json: string }
type BodyTemplate =
  | { readonly kind: "array"; readonly items: ReadonlyArray<Item> }
  | { readonly kind: "bytes"; readonly bytes: Uint8Array }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "gzipBytes"; readonly bytes: Uint8Array }
  | { readonly kind: "gzipTruncated"; readonly items: ReadonlyArray<Item>; readonly keep: number }
  | { readonly kind: "gzipBomb"; readonly size: number }

interface Template {
  readonly method: string
  readonly path: string
  readonly key: "ok" | "missing" | "wrong" | "empty" | "twice" | "twiceDifferent" | "long"
  readonly contentType: string | ReadonlyArray<string> | undefined
  readonly encoding: "auto" | string | ReadonlyArray<string>
  readonly gzip: boolean
  readonly chunked: boolean
  readonly body: BodyTemplate
}

const ts = "2026-11-24T10:00:00.000Z"
const base = { id: "h", type: "fuzz", timestamp: ts, payload: { n: 1 } }
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 60
})

const nested = (depth: number, open: string, close: string, inner = "1") =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`

const wrongValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  fc.string({ maxLength: 20 })
)

const hostileJson: fc.Arbitrary<string> = fc.oneof(
  // Anything at all where a record should be.
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "null"),
  // A record with one field of the wrong type, or missing.
  fc
    .tuple(fc.constantFrom("id", "type", "timestamp", "payload"), wrongValue, fc.boolean())
    .map(([field, value, drop]) => {
      const r: Record<string, unknown> = { ...base }
      if (drop) delete r[field]
      else r[field] = value
      return JSON.stringify(r)
    }),
  // Out-of-range strings.
  fc.oneof(
    fc.integer({ min: 257, max: 5000 }).map((n) => JSON.stringify({ ...base, id: "i".repeat(n) })),
    fc.integer({ min: 129, max: 5000 }).map((n) => JSON.stringify({ ...base, type: "t".repeat(n) })),
    fc
      .constantFrom("", "yesterday", "2026-13-45T99:99:99Z", "2026-11-24T10:00:00", "2026-02-30T10:00:00Z")
      .map((t) => JSON.stringify({ ...base, timestamp: t })),
    fc
      .integer({ min: 1, max: 40_000 })
      .map((n) => JSON.stringify({ ...base, id: `big-${n}`, payload: { s: "x".repeat(n) } }))
  ),
  // Deep nesting, as the record or inside its payload.
  fc
    .tuple(fc.integer({ min: 19, max: 25_000 }), fc.boolean(), fc.boolean())
    .map(([depth, array, inPayload]) => {
      const deep = array ? nested(depth, "[", "]") : nested(depth, '{"a":', "}")
      return inPayload
        ? JSON.stringify({ ...base, id: `deep-${depth}`, payload: { deep: 0 } }).replace("0}}", `${deep}}}`)
        : deep
    }),
  // Prototype pollution and inherited names as keys (raw text: an object literal would not keep them).
  fc.constantFrom(
    `{"__proto__":{"polluted":"yes"},"id":"pp-1","type":"t","timestamp":"${ts}","payload":{"n":1}}`,
    `{"id":"pp-2","type":"t","timestamp":"${ts}","payload":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}}`,
    `{"id":"pp-3","type":"t","timestamp":"${ts}","payload":{"__proto__":null,"toString":1,"hasOwnProperty":"x","valueOf":{}}}`,
    `{"constructor":{"prototype":{"polluted":"yes"}},"__proto__":[],"id":{"__proto__":"x"}}`,
    `{"id":"pp-4","type":"__proto__","timestamp":"${ts}","payload":{"prototype":{"__proto__":{"polluted":"yes"}}}}`
  ),
  // Odd but well-formed JSON: lone surrogates, NUL, huge and negative-zero numbers.
  fc.constantFrom(
    `{"id":"\\ud800","type":"\\u0000","timestamp":"${ts}","payload":{"n":1e400,"m":-0}}`,
    `{"id":"odd-\\udfff\\ud800","type":"t","timestamp":"${ts}","payload":{"":""}}`,
    `{"id":" ","type":" ","timestamp":"${ts}","payload":{}}`
  )
)

const item: fc.Arbitrary<Item> = fc.oneof(
  { arbitrary: fc.constant({ kind: "valid" as const }), weight: 2 },
  { arbitrary: hostileJson.map((json) => ({ kind: "hostile" as const, json })), weight: 3 }
)

const bodyTemplate: fc.Arbitrary<BodyTemplate> = fc.oneof(
  {
    arbitrary: fc
      .array(item, { minLength: 1, maxLength: 12 })
      .map((items) => ({ kind: "array" as const, items })),
    weight: 12
  },
  {
    arbitrary: fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ kind: "bytes" as const, bytes })),
    weight: 2
  },
  {
    arbitrary: fc
      .oneof(
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "null"),
        fc.constantFrom("", " ", "null", "[]", "{}", "[,]", "[1,]", '"[]"', "\u00ef\u00bb\u00bf[]"),
        fc.integer({ min: 1001, max: 1100 }).map((n) => `[${Array(n).fill("1").join(",")}]`),
        fc.integer({ min: 1, max: 4096 }).map((n) => `[${" ".repeat(maxBodyBytes + n)}]`),
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.constant('["\u00ff\u00fe"]')
      )
      .map((text) => ({ kind: "text" as const, text })),
    weight: 3
  },
  {
    arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => ({ kind: "gzipBytes" as const, bytes })),
    weight: 1
  },
  {
    arbitrary: fc
      .tuple(fc.array(item, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 40 }))
      .map(([items, keep]) => ({ kind: "gzipTruncated" as const, items, keep })),
    weight: 1
  },
  {
    arbitrary: fc
      .integer({ min: maxBodyBytes + 1, max: 8 * maxBodyBytes })
      .map((size) => ({ kind: "gzipBomb" as const, size })),
    weight: 1
  }
)

const template: fc.Arbitrary<Template> = fc.record({
  method: fc.oneof(
    { arbitrary: fc.constant("POST"), weight: 20 },
    { arbitrary: fc.constantFrom("GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"), weight: 1 }
  ),
  path: fc.oneof(
    { arbitrary: fc.constant("/v1/telemetry"), weight: 20 },
    {
      arbitrary: fc.oneof(
        fc.constantFrom(
          "/",
          "/healthz",
          "/v1/telemetry/",
          "/V1/TELEMETRY",
          "/v1/telemetry?x=1&y",
          "//v1/telemetry",
          "/v1/%2e%2e/telemetry"
        ),
        fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`))
      ),
      weight: 1
    }
  ),
  key: fc.oneof(
    { arbitrary: fc.constant("ok" as const), weight: 16 },
    {
      arbitrary: fc.constantFrom(
        "missing",
        "wrong",
        "empty",
        "twice",
        "twiceDifferent",
        "long"
      ) as fc.Arbitrary<Template["key"]>,
      weight: 1
    }
  ),
  contentType: fc.oneof(
    { arbitrary: fc.constant("application/json"), weight: 14 },
    {
      arbitrary: fc.oneof(
        fc.constantFrom(
          undefined,
          "text/plain",
          "application/xml",
          "application/json; charset=latin1",
          "APPLICATION/JSON; charset=UTF-8",
          "application/json-patch+json",
          "multipart/form-data; boundary=x",
          ""
        ),
        fc.constant(["application/json", "text/plain"]),
        printable
      ),
      weight: 2
    }
  ),
  encoding: fc.oneof(
    { arbitrary: fc.constant("auto"), weight: 16 },
    {
      arbitrary: fc.oneof(
        fc.constantFrom("br", "deflate", "gzip, br", "identity", "x-gzip", "GZIP"),
        fc.constant(["gzip", "gzip"]),
        printable
      ),
      weight: 1
    }
  ),
  gzip: fc.boolean(),
  chunked: fc.boolean(),
  body: bodyTemplate
})

// ---- building and sending -------------------------------------------------------------------

interface Case {
  readonly n: number
  readonly template: Template
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | Array<string>>>
  readonly body: Buffer
  /** Valid records (position in the array and id) that must be accepted, when the request is well-formed. */
  readonly valid: ReadonlyArray<{ readonly index: number; readonly id: string }>
  readonly wellFormed: boolean
}

const validRecord = (id: string, n: number) =>
  JSON.stringify({ id, type: "fuzz", timestamp: ts, payload: { fuzzMarker: n } })

const arrayText = (items: ReadonlyArray<Item>, n: number) => {
  const valid: Array<{ index: number; id: string }> = []
  const parts = items.map((it, index) => {
    if (it.kind === "hostile") return it.json
    const id = `fuzz-${n}-${index}`
    valid.push({ index, id })
    return validRecord(id, index)
  })
  return { text: `[${parts.join(",")}]`, valid }
}

const list = (value: string | ReadonlyArray<string>): Array<string> =>
  typeof value === "string" ? [value] : [...value]

const build = (t: Template, n: number): Case => {
  let body: Buffer
  let valid: ReadonlyArray<{ index: number; id: string }> = []
  let gzipped = false
  let payloadOk = false
  switch (t.body.kind) {
    case "array": {
      const built = arrayText(t.body.items, n)
      const raw = Buffer.from(built.text)
      gzipped = t.gzip
      body = gzipped ? gzipSync(raw) : raw
      valid = built.valid
      payloadOk = raw.byteLength <= maxBodyBytes && body.byteLength <= maxBodyBytes
      break
    }
    case "bytes":
      body = Buffer.from(t.body.bytes)
      break
    case "text":
      body = Buffer.from(t.body.text)
      break
    case "gzipBytes":
      body = Buffer.from(t.body.bytes)
      gzipped = true
      break
    case "gzipTruncated": {
      const full = gzipSync(Buffer.from(arrayText(t.body.items, n).text))
      body = full.subarray(0, Math.min(t.body.keep, full.byteLength - 1))
      gzipped = true
      break
    }
    case "gzipBomb":
      body = gzipSync(Buffer.alloc(t.body.size, 0x20))
      gzipped = true
      break
  }
  const headers: Record<string, string | Array<string>> = {}
  const key = {
    ok: apiKey,
    missing: undefined,
    wrong: "not-a-key",
    empty: "",
    twice: [apiKey, apiKey],
    twiceDifferent: [apiKey, "other"],
    long: "k".repeat(4000)
  }[t.key]
  if (key !== undefined) headers["x-api-key"] = key
  if (t.contentType !== undefined) headers["content-type"] = list(t.contentType)
  const encoding = t.encoding === "auto" ? (gzipped ? "gzip" : undefined) : t.encoding
  if (encoding !== undefined) headers["content-encoding"] = list(encoding)
  const wellFormed =
    t.method === "POST" &&
    t.path === "/v1/telemetry" &&
    t.key === "ok" &&
    t.contentType === "application/json" &&
    t.encoding === "auto" &&
    payloadOk
  return { n, template: t, method: t.method, path: t.path, headers, body, valid, wellFormed }
}

interface Answer {
  readonly status: number
  readonly contentType: string | undefined
  readonly text: string
}

const send = (agent: http.Agent, port: number, c: Case): Promise<Answer> =>
  new Promise((resolve, reject) => {
    let answered = false
    const req = http.request(
      { host: "127.0.0.1", port, method: c.method, path: c.path, headers: c.headers, agent },
      (res) => {
        answered = true
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers["content-type"],
            text: Buffer.concat(chunks).toString("utf8")
          })
        )
        res.on("error", reject)
      }
    )
    // Framed explicitly: Node's client sends a GET, HEAD or DELETE body unframed, which the server
    // can only read as the start of the next request.
    if (c.template.chunked) req.setHeader("transfer-encoding", "chunked")
    else req.setHeader("content-length", c.body.byteLength)
    req.setTimeout(20_000, () => req.destroy(new Error("no answer within 20 s (hang)")))
    // An upload cut short after the answer (413 before the whole body was read) is fine.
    req.on("error", (e) => {
      if (!answered) reject(e)
    })
    if (c.template.chunked) {
      req.write(c.body)
      req.end()
    } else req.end(c.body)
  })

const describeCase = (c: Case) =>
  JSON.stringify({
    n: c.n,
    method: c.method,
    path: c.path,
    headers: c.headers,
    chunked: c.template.chunked,
    bodyKind: c.template.body.kind,
    bodyStart: c.body.subarray(0, 300).toString("latin1"),
    bodyBytes: c.body.byteLength
  })

/** The reasons the answer breaks the contract; empty when it keeps it. */
const check = (c: Case, a: Answer): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const okStatus =
    a.status === 202 || (a.status >= 400 && a.status < 500) || (a.status === 200 && c.path === "/healthz")
  if (!okStatus) problems.push(`status ${a.status}`)
  if (c.method === "HEAD") return problems
  if (!a.contentType?.startsWith("application/json")) problems.push(`content-type ${a.contentType}`)
  let body: unknown
  try {
    body = JSON.parse(a.text)
  } catch {
    problems.push(`body is not JSON: ${a.text.slice(0, 200)}`)
    return problems
  }
  if (a.status >= 400) {
    const error = (body as { error?: { code?: unknown; message?: unknown } }).error
    if (typeof error?.code !== "string" || typeof error.message !== "string")
      problems.push(`error body ${a.text.slice(0, 200)}`)
  }
  if (c.wellFormed && c.valid.length > 0) {
    if (a.status !== 202)
      problems.push(`well-formed request with valid records answered ${a.status}: ${a.text.slice(0, 300)}`)
    else {
      const answer = body as {
        rejected: ReadonlyArray<{ index: number }>
        unavailable: ReadonlyArray<{ index: number }>
      }
      const notTaken = new Set([...answer.rejected, ...answer.unavailable].map((r) => r.index))
      for (const v of c.valid)
        if (notTaken.has(v.index))
          problems.push(`valid record ${v.index} not accepted: ${a.text.slice(0, 300)}`)
    }
  }
  return problems
}

describe("collector fuzz", () => {
  it.live(
    `${numRuns} hostile requests: only 4xx or 202 with a JSON body, and every valid record sent alongside is indexed`,
    () =>
      Effect.gen(function* () {
        // Fast polling and retries: hostile-but-valid records may fail indexing (mapping
        // conflicts) and go through retries to the on-failure destination; that need not take seconds.
        const pipeline = yield* MemoryPipeline.make({
          processor: { pollIntervalMillis: 50, retryDelayMillis: 20 },
          redriver: { pollIntervalMillis: 50 }
        })
        const server = yield* CollectorServer.serve({ port: 0, maxBodyBytes }, pipeline.layers.collector)
        const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
        yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))

        const cases = fc.sample(template, { numRuns, seed }).map(build)
        // Map `payload.fuzzMarker` as a number before any hostile record can claim the name.
        const first: Case = build(
          {
            method: "POST",
            path: "/v1/telemetry",
            key: "ok",
            contentType: "application/json",
            encoding: "auto",
            gzip: false,
            chunked: false,
            body: { kind: "array", items: [{ kind: "valid" }] }
          },
          -1
        )
        const all = [first, ...cases]

        const failures: Array<string> = []
        const expected: Array<string> = []
        const statuses = new Map<number, number>()
        yield* Effect.promise(async () => {
          let next = 0
          const worker = async () => {
            for (let i = next++; i < all.length; i = next++) {
              const c = all[i]!
              try {
                const answer = await send(agent, server.port, c)
                statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
                const problems = check(c, answer)
                if (problems.length > 0) failures.push(`${problems.join("; ")}\n  case ${describeCase(c)}`)
                else if (c.wellFormed && answer.status === 202) expected.push(...c.valid.map((v) => v.id))
              } catch (e) {
                failures.push(`${String(e)}\n  case ${describeCase(c)}`)
              }
            }
          }
          await Promise.all(Array.from({ length: concurrency }, worker))
        })

        expect(failures.slice(0, 5), `seed ${seed}: ${failures.length} failing cases`).toEqual([])
        // The mix really exercised both sides of the contract.
        expect(statuses.get(202) ?? 0).toBeGreaterThan(numRuns / 4)
        for (const status of [400, 401, 404, 405, 413, 415])
          expect(statuses.get(status) ?? 0).toBeGreaterThan(0)
        expect(expected.length).toBeGreaterThan(numRuns / 2)

        expect(yield* waitUntilIdle(pipeline, "60 seconds")).toBe(true)
        const indexed = new Set((yield* pipeline.index.documents).map((d) => d.id))
        const missing = expected.filter((id) => !indexed.has(id))
        expect(
          missing.slice(0, 10),
          `${missing.length} of ${expected.length} valid records not indexed`
        ).toEqual([])
        // No request reached the prototype of plain objects.
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
        expect(Object.getPrototypeOf({})).toBe(Object.prototype)
        // And the server still answers.
        const health = yield* Effect.promise(() =>
          send(agent, server.port, {
            ...first,
            method: "GET",
            path: "/healthz",
            headers: {},
            body: Buffer.alloc(0)
          })
        )
        expect(health.status).toBe(200)
      }),
    180_000
  )
})
