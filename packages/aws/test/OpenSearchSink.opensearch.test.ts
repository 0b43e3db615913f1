/**
 * `OpenSearchSink` on a real OpenSearch node (the run's shared one, packages/emulators/vitest):
 * the `DocumentSink` conformance suite, then what only the real engine can show — the index
 * template and daily indices behind the alias, a field that changes type, bodies over
 * `http.max_content_length` (413, 2 MiB on the test node), real 429s from indexing pressure
 * (4 MiB on the test node), a write-blocked index, and the same id written twice.
 *
 * Faults the suite injects by hook (`retryNext`, `outage`) have no faithful switch on a real node
 * and run against the loopback server in OpenSearchSink.test.ts; the real node's own refusals are
 * the cases below.
 */
import { describe, expect, it } from "@effect/vitest"
import { DocumentSink, PartialRetry, Schedules } from "@spillway/core"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { Conformance } from "@spillway/testing"
import { Effect, Layer } from "effect"
import * as IndexLayout from "../src/IndexLayout.js"
import * as OpenSearchClient from "../src/OpenSearchClient.js"
import * as OpenSearchSink from "../src/OpenSearchSink.js"

const ns = testNamespace(import.meta.filename)
let aliases = 0
/** A fresh alias (and so a fresh set of indices and a template) per test. */
const freshAlias = () => `${ns}-${++aliases}`

// biome-ignore lint/suspicious/noExplicitAny: OpenSearch's JSON answers, only read by assertions that fail on a wrong shape
type Json = any
const http = async (
  method: string,
  path: string,
  body?: unknown
): Promise<{ status: number; body: Json }> => {
  const response = await fetch(`${node().url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}
const call = (method: string, path: string, body?: unknown) => Effect.promise(() => http(method, path, body))

/** Every document under the alias, as stored (`_source`), after a refresh. */
const storedUnder = (alias: string) =>
  Effect.gen(function* () {
    const refreshed = yield* call("POST", `/${alias}/_refresh`)
    if (refreshed.status === 404) return [] as Array<DocumentSink.Document>
    const found = yield* call("POST", `/${alias}/_search`, { size: 10_000, query: { match_all: {} } })
    return (found.body.hits.hits as Array<{ _id: string; _source: Record<string, unknown> }>).map(
      (hit): DocumentSink.Document => ({ id: hit._id, body: hit._source })
    )
  })

const sinkLayer = (options: OpenSearchSink.Options) =>
  OpenSearchSink.layer(options).pipe(
    Layer.provide(OpenSearchClient.layer({ node: node().url, region: "us-east-1", auth: "none" }))
  )

const write = (documents: ReadonlyArray<DocumentSink.Document>) =>
  Effect.flatMap(DocumentSink.DocumentSink, (sink) => sink.write(documents))

const record = (id: string, timestamp: string, payload: Record<string, unknown>): DocumentSink.Document => ({
  id,
  body: { id, type: "cpu", tenant: "acme", timestamp, receivedAt: timestamp, payload }
})

// Each test builds its sink on a fresh alias: the suite's documents carry no timestamp, so one
// index (period `none`) holds them.
let suiteAlias = ""
Conformance.documentSinkSuite({
  name: "OpenSearchSink on a real OpenSearch node",
  clock: "live",
  layer: () => {
    suiteAlias = freshAlias()
    return sinkLayer({ layout: { alias: suiteAlias, period: "none", replicas: 0 } })
  },
  stored: Effect.suspend(() => storedUnder(suiteAlias)),
  // OpenSearch itself refuses a source that sets a metadata field (400 mapper_parsing_exception).
  refusedDocument: (id) => ({ id, body: { _id: "not-allowed", n: 1 } }),
  timeout: 60_000
})

describe("OpenSearchSink on a real node", () => {
  it.live("puts the template, writes into daily indices behind the alias, mapped as the layout says", () =>
    Effect.gen(function* () {
      const alias = freshAlias()
      const outcomes = yield* write([
        record("a", "2026-11-30T23:59:59.000Z", { cpu: 0.5, host: { name: "h1" } }),
        record("b", "2026-12-01T00:00:00.000Z", { cpu: 0.7, host: { name: "h2" } }),
        record("c", "2026-12-01T22:00:00.000-05:00", { cpu: 0.1 })
      ]).pipe(Effect.provide(sinkLayer({ layout: { alias, replicas: 0 } })))
      expect(outcomes).toEqual([DocumentSink.written, DocumentSink.written, DocumentSink.written])

      const indices = yield* call("GET", `/_cat/indices/${alias}-*?format=json&h=index,docs.count`)
      yield* call("POST", `/${alias}/_refresh`)
      const counts = yield* call("GET", `/_cat/indices/${alias}-*?format=json&h=index,docs.count`)
      expect(indices.status).toBe(200)
      expect(
        (counts.body as Array<{ index: string; "docs.count": string }>)
          .map((i) => [i.index, Number(i["docs.count"])])
          .sort()
      ).toEqual([
        [`${alias}-2026.11.30`, 1],
        [`${alias}-2026.12.01`, 1],
        [`${alias}-2026.12.02`, 1]
      ])
      const mapping = yield* call("GET", `/${alias}-2026.12.01/_mapping`)
      const properties = mapping.body[`${alias}-2026.12.01`].mappings.properties
      expect(properties.id).toEqual({ type: "keyword" })
      expect(properties.tenant).toEqual({ type: "keyword" })
      expect(properties.timestamp).toEqual({ type: "date" })
      expect(properties.payload.properties.host.properties.name.type).toBe("text")

      // Searches go to the alias; keyword fields match exactly.
      const found = yield* call("POST", `/${alias}/_search`, {
        query: {
          bool: { filter: [{ term: { tenant: "acme" } }, { range: { "payload.cpu": { gte: 0.5 } } }] }
        }
      })
      expect((found.body.hits.hits as Array<{ _id: string }>).map((h) => h._id).sort()).toEqual(["a", "b"])
    })
  )

  it.live("putting the template again changes nothing; a second sink on the same alias works alongside", () =>
    Effect.gen(function* () {
      const alias = freshAlias()
      const layout = IndexLayout.make({ alias, replicas: 0 })
      yield* write([record("x", "2026-12-01T10:00:00.000Z", { n: 1 })]).pipe(
        Effect.provide(sinkLayer({ layout }))
      )
      const before = yield* call("GET", `/_index_template/${layout.templateName}`)
      yield* write([record("y", "2026-12-01T11:00:00.000Z", { n: 2 })]).pipe(
        Effect.provide(sinkLayer({ layout }))
      )
      const after = yield* call("GET", `/_index_template/${layout.templateName}`)
      expect(after.body).toEqual(before.body)
      expect((yield* storedUnder(alias)).map((d) => d.id).sort()).toEqual(["x", "y"])
    })
  )

  it.live("a field that changes type is rejected with OpenSearch's reason; the others are written", () =>
    Effect.gen(function* () {
      const alias = freshAlias()
      const outcomes = yield* Effect.gen(function* () {
        yield* write([record("first", "2026-12-01T10:00:00.000Z", { latency: 12 })])
        return yield* write([
          record("bad", "2026-12-01T10:00:01.000Z", { latency: "slow" }),
          record("good", "2026-12-01T10:00:02.000Z", { latency: 15 })
        ])
      }).pipe(Effect.provide(sinkLayer({ layout: { alias, replicas: 0 } })))
      expect(outcomes[0]).toMatchObject({
        _tag: "Rejected",
        reason: expect.stringMatching(
          /^400 mapper_parsing_exception: failed to parse field \[payload\.latency\] of type \[long\]/
        )
      })
      expect(outcomes[1]).toEqual(DocumentSink.written)
      expect((yield* storedUnder(alias)).map((d) => d.id).sort()).toEqual(["first", "good"])
    })
  )

  it.live("fields past the template's limit are rejected (a mapping explosion stops at the limit)", () =>
    Effect.gen(function* () {
      const alias = freshAlias()
      const wide = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`field_${i}`, i]))
      const outcomes = yield* write([
        record("narrow", "2026-12-01T10:00:00.000Z", { a: 1 }),
        record("wide", "2026-12-01T10:00:01.000Z", wide)
      ]).pipe(Effect.provide(sinkLayer({ layout: { alias, replicas: 0, totalFieldsLimit: 40 } })))
      expect(outcomes[0]).toEqual(DocumentSink.written)
      expect(outcomes[1]).toMatchObject({
        _tag: "Rejected",
        reason: expect.stringContaining("Limit of total fields [40] has been exceeded")
      })

      // flat_object: the same document is one field, and its leaves stay searchable by path.
      const flat = freshAlias()
      const flatOutcomes = yield* write([
        record("wide", "2026-12-01T10:00:01.000Z", { ...wide, user: { id: "u-1" } })
      ]).pipe(
        Effect.provide(
          sinkLayer({
            layout: { alias: flat, replicas: 0, totalFieldsLimit: 40, payloadMapping: "flat_object" }
          })
        )
      )
      expect(flatOutcomes).toEqual([DocumentSink.written])
      yield* call("POST", `/${flat}/_refresh`)
      const found = yield* call("POST", `/${flat}/_search`, { query: { term: { "payload.user.id": "u-1" } } })
      expect(found.body.hits.hits.map((h: { _id: string }) => h._id)).toEqual(["wide"])
    })
  )

  it.live(
    "a body over http.max_content_length (413) is split until it fits; a document too large alone is rejected",
    () =>
      Effect.gen(function* () {
        const alias = freshAlias()
        // 12 documents of ~300 KB: 3.6 MB in one request at the default 5 MiB, over the node's 2 MiB.
        const big = (i: number) =>
          record(`big-${i}`, "2026-12-01T10:00:00.000Z", { blob: "x".repeat(300_000), i })
        const documents = [
          ...Array.from({ length: 12 }, (_, i) => big(i)),
          record("huge", "2026-12-01T10:00:00.000Z", { blob: "y".repeat(2_500_000) })
        ]
        const outcomes = yield* write(documents).pipe(
          Effect.provide(sinkLayer({ layout: { alias, replicas: 0 } }))
        )
        expect(outcomes.slice(0, 12)).toEqual(Array.from({ length: 12 }, () => DocumentSink.written))
        expect(outcomes[12]).toMatchObject({
          _tag: "Rejected",
          reason: expect.stringContaining("over the domain's request size limit")
        })
        const stored = yield* storedUnder(alias)
        expect(stored.map((d) => d.id).sort()).toEqual(
          Array.from({ length: 12 }, (_, i) => `big-${i}`).sort()
        )
      })
  )

  it.live(
    "real 429s under indexing pressure are Throttled, and retried until every document is written",
    () =>
      Effect.gen(function* () {
        const alias = freshAlias()
        const layer = sinkLayer({ layout: { alias, replicas: 0 }, maxBulkBytes: 1_900_000 })
        // Writes of ~1.8 MB each: three at once are over the node's 4 MiB pressure limit.
        const batches = Array.from({ length: 8 }, (_, b) =>
          Array.from({ length: 6 }, (_, i) =>
            record(`p-${b}-${i}`, "2026-12-01T10:00:00.000Z", { blob: "z".repeat(300_000) })
          )
        )
        const throttled = yield* Effect.gen(function* () {
          // Concurrency is the node's to schedule: send rounds until one is refused (the first, as a rule).
          for (let round = 0; round < 10; round++) {
            const results = yield* Effect.forEach(batches, (batch) => Effect.result(write(batch)), {
              concurrency: "unbounded"
            })
            const refused = results.flatMap((r) => (r._tag === "Failure" ? [r.failure] : []))
            if (refused.length > 0) return refused
          }
          return []
        }).pipe(Effect.provide(layer))
        expect(throttled.length).toBeGreaterThan(0)
        for (const error of throttled) {
          expect(error.reason).toBe("Throttled")
          expect(error.isRetryable).toBe(true)
          expect(error.message).toContain("rejected_execution_exception")
        }

        // The processor's retry policy (Schedules.sinkWrite over PartialRetry): every document lands, once.
        const all = batches.flat()
        const outcomes = yield* Effect.forEach(
          batches,
          (batch) =>
            Effect.flatMap(DocumentSink.DocumentSink, (sink) =>
              PartialRetry.retryPending({
                items: batch,
                send: sink.write,
                isSettled: (outcome) => outcome._tag !== "Retryable",
                whenCallFails: (error): DocumentSink.WriteOutcome => ({
                  _tag: "Retryable",
                  reason: error.message
                }),
                whenUnanswered: { _tag: "Retryable", reason: "unanswered" },
                schedule: Schedules.sinkWrite
              })
            ),
          { concurrency: "unbounded" }
        ).pipe(Effect.provide(layer))
        expect(outcomes.flat().map((o) => o._tag)).toEqual(all.map(() => "Written"))
        const stored = yield* storedUnder(alias)
        expect(stored).toHaveLength(all.length)
      })
  )

  it.live("an index blocked for writes answers Retryable with the block named; written once it lifts", () =>
    Effect.gen(function* () {
      const alias = freshAlias()
      const layer = sinkLayer({ layout: { alias, replicas: 0 } })
      const doc = record("blocked", "2026-12-01T10:00:00.000Z", { n: 1 })
      yield* write([record("before", "2026-12-01T09:00:00.000Z", { n: 0 })]).pipe(Effect.provide(layer))
      const index = `${alias}-2026.12.01`
      for (const block of ["index.blocks.write", "index.blocks.read_only_allow_delete"]) {
        expect((yield* call("PUT", `/${index}/_settings`, { [block]: true })).status).toBe(200)
        const [outcome] = yield* write([doc]).pipe(Effect.provide(layer))
        expect(outcome).toMatchObject({
          _tag: "Retryable",
          reason: expect.stringMatching(/^(403|429) cluster_block_exception: index \[.*\] blocked by/)
        })
        yield* call("PUT", `/${index}/_settings`, { [block]: null })
      }
      expect(yield* write([doc]).pipe(Effect.provide(layer))).toEqual([DocumentSink.written])
      expect((yield* storedUnder(alias)).map((d) => d.id).sort()).toEqual(["before", "blocked"])
    })
  )

  it.live(
    "the same id written twice, in one request and across requests, is one document with the last source",
    () =>
      Effect.gen(function* () {
        const alias = freshAlias()
        const layer = sinkLayer({ layout: { alias, replicas: 0 } })
        const at = "2026-12-01T10:00:00.000Z"
        const outcomes = yield* Effect.gen(function* () {
          const first = yield* write([record("same", at, { v: 1 }), record("same", at, { v: 2 })])
          const second = yield* write([record("same", at, { v: 3 })])
          return [...first, ...second]
        }).pipe(Effect.provide(layer))
        expect(outcomes).toEqual([DocumentSink.written, DocumentSink.written, DocumentSink.written])
        const stored = yield* storedUnder(alias)
        expect(stored).toHaveLength(1)
        expect(stored[0]!.body.payload).toEqual({ v: 3 })
        const got = yield* call("GET", `/${alias}-2026.12.01/_doc/same`)
        expect(got.body._version).toBe(3)
      })
  )
})
