/**
 * `OpenSearchSink` against a loopback HTTP server that answers `_bulk` as OpenSearch documents it
 * (docs/aws-behaviour.md §6.2–6.4): per-item statuses, whole-request 429/5xx/401, 413 for oversized bodies. No
 * emulator exists, so the server keeps a map of documents by `_id` to show idempotent rewrites.
 * The shared `DocumentSink` conformance suite runs against the same server, reading its map back.
 */
import { createHash } from "node:crypto"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { DocumentSink, Schedules } from "@spillway/core"
import { Conformance } from "@spillway/testing"
import { ConfigProvider, Context, Effect, Layer, Schedule } from "effect"
import * as OpenSearchClient from "../src/OpenSearchClient.js"
import * as OpenSearchSink from "../src/OpenSearchSink.js"

/**
 * aws4, the SigV4 implementation the OpenSearch JavaScript client signs with: an independent
 * reference for the signatures `OpenSearchClient` makes with the SDK's signer.
 */
const aws4 = createRequire(import.meta.url)("aws4") as {
  sign: (
    request: Record<string, unknown>,
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  ) => { headers: Record<string, string> }
}

interface BulkLine {
  readonly action: string
  readonly id: string
  readonly index: string
  readonly source: Record<string, unknown>
}

interface Seen {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly lines: ReadonlyArray<BulkLine>
}

type Reply = { readonly status: number; readonly body: unknown }

interface FakeDomain {
  readonly url: string
  readonly requests: Array<Seen>
  readonly documents: Map<string, Record<string, unknown>>
  /** Answers a request itself; `undefined` indexes every line (201 new, 200 replaced). */
  reply: ((request: Seen) => Reply | undefined) | undefined
}

const parseLines = (body: string): Array<BulkLine> => {
  const raw = body.split("\n")
  const lines: Array<BulkLine> = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const meta = JSON.parse(raw[i]!) as Record<string, { _index: string; _id: string }>
    const [action, target] = Object.entries(meta)[0]!
    lines.push({ action, id: target._id, index: target._index, source: JSON.parse(raw[i + 1]!) })
  }
  return lines
}

const itemOf = (line: BulkLine, status: number, error?: { type: string; reason: string }) => ({
  [line.action]: {
    _index: line.index,
    _id: line.id,
    status,
    ...(error === undefined
      ? {
          _version: 1,
          result: status === 201 ? "created" : "updated",
          _shards: { total: 2, successful: 1, failed: 0 }
        }
      : { error: { ...error, index: line.index, shard: "0", index_uuid: "aBcD" } })
  }
})

const servers: Array<Server> = []

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((done) => {
          server.closeAllConnections()
          server.close(() => done())
        })
    )
  )
})

const startDomain = (): Promise<FakeDomain> =>
  new Promise((resolve) => {
    const domain: FakeDomain = {
      url: "",
      requests: [],
      documents: new Map(),
      reply: undefined
    }
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        const seen: Seen = {
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          body,
          lines: body.length > 0 && body.endsWith("\n") ? parseLines(body) : []
        }
        domain.requests.push(seen)
        const reply = domain.reply?.(seen) ?? {
          status: 200,
          body: {
            took: 3,
            errors: false,
            items: seen.lines.map((line) => {
              const existed = domain.documents.has(line.id)
              domain.documents.set(line.id, line.source)
              return itemOf(line, existed ? 200 : 201)
            })
          }
        }
        const payload = JSON.stringify(reply.body)
        res.writeHead(reply.status, { "content-type": "application/json; charset=UTF-8" })
        res.end(payload)
      })
    })
    servers.push(server)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve(Object.assign(domain, { url: `http://127.0.0.1:${port}` }))
    })
  })

const credentials = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
}

const sinkOn = (
  domain: FakeDomain,
  options: Partial<OpenSearchSink.Options> = {},
  client: Partial<OpenSearchClient.Options> = {}
) =>
  OpenSearchSink.layer({
    layout: { alias: "telemetry", period: "none" },
    manageTemplate: false,
    ...options
  }).pipe(
    Layer.provide(OpenSearchClient.layer({ node: domain.url, region: "eu-west-1", credentials, ...client }))
  )

const docs = (n: number, prefix = "doc") =>
  Array.from(
    { length: n },
    (_, i): DocumentSink.Document => ({
      id: `${prefix}-${i}`,
      body: { type: "cpu", value: i, host: `h${i % 3}` }
    })
  )

const write = (documents: ReadonlyArray<DocumentSink.Document>) =>
  Effect.flatMap(DocumentSink.DocumentSink, (sink) => sink.write(documents))

/** The loopback domain behind the sink a conformance test writes to. */
class Domain extends Context.Service<Domain, FakeDomain>()("test/OpenSearchDomain") {}

/** Answers the suite's faults as OpenSearch does: per-item 429s for the next documents, 503 for every request. */
const domainFaults = Effect.map(Domain, (domain) => {
  let turnAway = 0
  let outage = false
  domain.reply = (request) => {
    if (outage) {
      return { status: 503, body: { error: { type: "unavailable", reason: "injected outage" }, status: 503 } }
    }
    if (turnAway === 0) return undefined
    const items = request.lines.map((line) => {
      if (turnAway > 0) {
        turnAway -= 1
        return itemOf(line, 429, {
          type: "es_rejected_execution_exception",
          reason: "queue capacity = 10000"
        })
      }
      const existed = domain.documents.has(line.id)
      domain.documents.set(line.id, line.source)
      return itemOf(line, existed ? 200 : 201)
    })
    return { status: 200, body: { took: 1, errors: true, items } }
  }
  return {
    retryNext: (count: number) =>
      Effect.sync(() => {
        turnAway = count
      }),
    outage: Effect.sync(() => {
      outage = true
    }),
    clear: Effect.sync(() => {
      turnAway = 0
      outage = false
    })
  }
})

Conformance.documentSinkSuite({
  name: "OpenSearchSink on a loopback _bulk server",
  clock: "live",
  layer: () =>
    Layer.unwrap(
      Effect.map(Effect.promise(startDomain), (domain) =>
        Layer.merge(Layer.succeed(Domain, domain), sinkOn(domain))
      )
    ),
  stored: Domain.useSync((domain) => Array.from(domain.documents, ([id, body]) => ({ id, body }))),
  requests: Domain.useSync((domain) => domain.requests.length),
  // A body JSON cannot carry is refused before it is sent.
  refusedDocument: (id) => ({ id, body: { count: 10n } }),
  faults: domainFaults,
  timeout: 30_000
})

describe("OpenSearchSink", () => {
  it.live("writes one index action per document, keyed by its id, and answers in order", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const outcomes = yield* write(docs(3)).pipe(Effect.provide(sinkOn(domain)))
      expect(outcomes).toEqual([DocumentSink.written, DocumentSink.written, DocumentSink.written])
      expect(domain.requests).toHaveLength(1)
      const [request] = domain.requests
      expect(request?.method).toBe("POST")
      expect(request?.path).toBe("/_bulk")
      expect(request?.headers["content-type"]).toContain("application/x-ndjson")
      expect(request?.body.endsWith("\n")).toBe(true)
      expect(request?.lines.map((l) => [l.action, l.index, l.id])).toEqual([
        ["index", "telemetry-all", "doc-0"],
        ["index", "telemetry-all", "doc-1"],
        ["index", "telemetry-all", "doc-2"]
      ])
      expect(domain.documents.get("doc-1")).toEqual({ type: "cpu", value: 1, host: "h1" })
    })
  )

  it.live("signs each request with SigV4 for the configured region and service", () =>
    Effect.gen(function* () {
      for (const service of ["es", "aoss"] as const) {
        const domain = yield* Effect.promise(startDomain)
        yield* write(docs(2)).pipe(
          Effect.provide(
            sinkOn(domain, {}, { service, credentials: { ...credentials, sessionToken: "session-token" } })
          )
        )
        const headers = domain.requests[0]!.headers
        const authorization = String(headers.authorization)
        expect(authorization).toMatch(
          new RegExp(
            `^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\\d{8}/eu-west-1/${service}/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`
          )
        )
        const signed = /SignedHeaders=([^,]+)/.exec(authorization)![1]!.split(";")
        expect(signed).toEqual(expect.arrayContaining(["host", "x-amz-content-sha256", "x-amz-date"]))
        expect(headers["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/)
        expect(headers["x-amz-security-token"]).toBe("session-token")
        // Serverless requires the payload hash; it must be the hash of the body actually sent.
        expect(headers["x-amz-content-sha256"]).toBe(
          createHash("sha256").update(domain.requests[0]!.body, "utf8").digest("hex")
        )
        // The same request signed by aws4, at the same instant, over the same headers.
        const seen = domain.requests[0]!
        const reference = aws4.sign(
          {
            host: headers.host,
            method: seen.method,
            path: seen.path,
            service,
            region: "eu-west-1",
            body: seen.body,
            headers: Object.fromEntries(
              signed.filter((name) => name !== "host").map((name) => [name, String(headers[name])])
            )
          },
          { ...credentials, sessionToken: "session-token" }
        )
        expect(reference.headers.Authorization).toBe(authorization)
      }
    })
  )

  it.live("sends unsigned requests when auth is none", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      yield* write(docs(1)).pipe(Effect.provide(sinkOn(domain, {}, { auth: "none" })))
      expect(domain.requests[0]!.headers.authorization).toBeUndefined()
    })
  )

  it.live(
    "maps each item: 2xx and 409 written; 429, 5xx and cluster blocks retryable; other 4xx rejected",
    () =>
      Effect.gen(function* () {
        const domain = yield* Effect.promise(startDomain)
        const answers: Array<[number, { type: string; reason: string }?]> = [
          [201],
          [
            429,
            { type: "es_rejected_execution_exception", reason: "rejected execution of primary operation" }
          ],
          [400, { type: "mapper_parsing_exception", reason: "failed to parse field [value] of type [long]" }],
          [
            409,
            {
              type: "version_conflict_engine_exception",
              reason: "[doc-3]: version conflict, document already exists"
            }
          ],
          [503, { type: "unavailable_shards_exception", reason: "primary shard is not active" }],
          [
            403,
            {
              type: "cluster_block_exception",
              reason: "index [telemetry] blocked by: [FORBIDDEN/8/index write]"
            }
          ],
          [429, { type: "circuit_breaking_exception", reason: "[parent] Data too large" }],
          [200],
          [404, { type: "index_not_found_exception", reason: "no such index [telemetry]" }]
        ]
        domain.reply = (request) => ({
          status: 200,
          body: {
            took: 5,
            errors: true,
            items: request.lines.map((line, i) => itemOf(line, answers[i]![0], answers[i]![1]))
          }
        })
        const outcomes = yield* write(docs(answers.length)).pipe(Effect.provide(sinkOn(domain)))
        expect(outcomes.map((o) => o._tag)).toEqual([
          "Written",
          "Retryable",
          "Rejected",
          "Written",
          "Retryable",
          "Retryable",
          "Retryable",
          "Written",
          "Rejected"
        ])
        expect(outcomes[2]).toEqual({
          _tag: "Rejected",
          reason: "400 mapper_parsing_exception: failed to parse field [value] of type [long]"
        })
      })
  )

  it.live("429 for the whole request is Throttled and retryable; the retried write lands once", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      let calls = 0
      domain.reply = () =>
        ++calls === 1
          ? {
              status: 429,
              body: {
                error: { type: "es_rejected_execution_exception", reason: "too many requests" },
                status: 429
              }
            }
          : undefined
      const layer = sinkOn(domain)
      const error = yield* Effect.flip(write(docs(4))).pipe(Effect.provide(layer))
      expect(error.reason).toBe("Throttled")
      expect(error.isRetryable).toBe(true)
      expect(error.sink).toBe("opensearch")
      expect(domain.requests).toHaveLength(1)

      calls = 0
      const outcomes = yield* write(docs(4)).pipe(
        Effect.retry({ schedule: Schedule.spaced("10 millis"), while: Schedules.isRetryable, times: 3 }),
        Effect.provide(layer)
      )
      expect(outcomes.every((o) => o._tag === "Written")).toBe(true)
      expect(domain.requests).toHaveLength(3)
      expect(domain.documents.size).toBe(4)
    })
  )

  it.live("items answered 429 are retryable, and writing them again replaces rather than duplicates", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const layer = sinkOn(domain)
      yield* write(docs(3)).pipe(Effect.provide(layer))
      let busy = true
      domain.reply = (request) =>
        busy
          ? {
              status: 200,
              body: {
                took: 1,
                errors: true,
                items: request.lines.map((line) =>
                  itemOf(line, 429, {
                    type: "es_rejected_execution_exception",
                    reason: "queue capacity = 10000"
                  })
                )
              }
            }
          : undefined
      const first = yield* write(docs(3)).pipe(Effect.provide(layer))
      expect(first.map((o) => o._tag)).toEqual(["Retryable", "Retryable", "Retryable"])
      busy = false
      const second = yield* write(docs(3)).pipe(Effect.provide(layer))
      expect(second.map((o) => o._tag)).toEqual(["Written", "Written", "Written"])
      expect(domain.documents.size).toBe(3)
    })
  )

  it.live("splits bodies by bytes: no request over maxBulkBytes, every document once, in order", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const documents = docs(40)
      const outcomes = yield* write(documents).pipe(Effect.provide(sinkOn(domain, { maxBulkBytes: 1000 })))
      expect(outcomes.every((o) => o._tag === "Written")).toBe(true)
      expect(domain.requests.length).toBeGreaterThan(3)
      for (const request of domain.requests) expect(Buffer.byteLength(request.body)).toBeLessThanOrEqual(1000)
      expect(domain.requests.flatMap((r) => r.lines.map((l) => l.id))).toEqual(documents.map((d) => d.id))
    })
  )

  it.live("a 413 splits the request in halves until it fits; a document too large alone is rejected", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const limit = 500
      domain.reply = (request) =>
        Buffer.byteLength(request.body) > limit
          ? { status: 413, body: { Message: `Request size exceeded ${limit} bytes` } }
          : undefined
      const documents = [
        ...docs(12),
        { id: "huge", body: { blob: "x".repeat(2 * limit) } },
        ...docs(3, "tail")
      ]
      const outcomes = yield* write(documents).pipe(Effect.provide(sinkOn(domain)))
      expect(outcomes.map((o) => o._tag)).toEqual(
        documents.map((d) => (d.id === "huge" ? "Rejected" : "Written"))
      )
      expect(outcomes[12]?._tag === "Rejected" && outcomes[12].reason).toContain("413")
      const accepted = domain.requests.filter((r) => Buffer.byteLength(r.body) <= limit)
      expect(accepted.flatMap((r) => r.lines.map((l) => l.id))).toEqual(
        documents.filter((d) => d.id !== "huge").map((d) => d.id)
      )
      expect(domain.documents.has("huge")).toBe(false)
    })
  )

  it.live(
    "maps whole-request failures: 401 AccessDenied, 500 Unavailable, 400 InvalidRequest, refused connection",
    () =>
      Effect.gen(function* () {
        const domain = yield* Effect.promise(startDomain)
        const layer = sinkOn(domain)
        const failWith = (status: number) =>
          Effect.gen(function* () {
            domain.reply = () => ({
              status,
              body: { error: { type: "some_exception", reason: "no" }, status }
            })
            return yield* Effect.flip(write(docs(1))).pipe(Effect.provide(layer))
          })
        expect((yield* failWith(401)).reason).toBe("AccessDenied")
        expect((yield* failWith(403)).reason).toBe("AccessDenied")
        const outage = yield* failWith(503)
        expect(outage.reason).toBe("Unavailable")
        expect(outage.isRetryable).toBe(true)
        expect((yield* failWith(500)).reason).toBe("Unavailable")
        expect((yield* failWith(400)).reason).toBe("InvalidRequest")
        // The client's own retries are off: each failure above is one request.
        expect(domain.requests).toHaveLength(5)

        domain.reply = () => ({ status: 200, body: { took: 1, errors: false, items: [] } })
        expect((yield* Effect.flip(write(docs(2))).pipe(Effect.provide(layer))).message).toContain(
          "0 items for 2"
        )

        // A port nothing listens on any more: the connection is refused.
        const url = yield* Effect.promise(
          () =>
            new Promise<string>((done) => {
              const probe = createServer().listen(0, "127.0.0.1", () => {
                const { port } = probe.address() as AddressInfo
                probe.close(() => done(`http://127.0.0.1:${port}`))
              })
            })
        )
        const refused = yield* Effect.flip(write(docs(1))).pipe(Effect.provide(sinkOn({ ...domain, url })))
        expect(refused.reason).toBe("Unavailable")
      })
  )

  it.live("rejects a document that cannot be serialized and writes the others", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const outcomes = yield* write([
        { id: "ok", body: { a: 1 } },
        { id: "bigint", body: { a: 10n } },
        { id: "ok-2", body: { a: 2 } }
      ]).pipe(Effect.provide(sinkOn(domain)))
      expect(outcomes.map((o) => o._tag)).toEqual(["Written", "Rejected", "Written"])
      expect(domain.requests[0]!.lines.map((l) => l.id)).toEqual(["ok", "ok-2"])
    })
  )

  it.live("with action create, a 409 on replay counts as written", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      domain.reply = (request) => ({
        status: 200,
        body: {
          took: 1,
          errors: true,
          items: request.lines.map((line) => {
            if (domain.documents.has(line.id)) {
              return itemOf(line, 409, {
                type: "version_conflict_engine_exception",
                reason: "document already exists"
              })
            }
            domain.documents.set(line.id, line.source)
            return itemOf(line, 201)
          })
        }
      })
      const layer = sinkOn(domain, { action: "create" })
      expect((yield* write(docs(2)).pipe(Effect.provide(layer))).map((o) => o._tag)).toEqual([
        "Written",
        "Written"
      ])
      expect((yield* write(docs(2)).pipe(Effect.provide(layer))).map((o) => o._tag)).toEqual([
        "Written",
        "Written"
      ])
      expect(domain.requests[1]!.lines.map((l) => l.action)).toEqual(["create", "create"])
    })
  )
})

describe("OpenSearchSink index layout", () => {
  const dated = (id: string, timestamp: unknown): DocumentSink.Document => ({
    id,
    body: { id, type: "cpu", timestamp, receivedAt: "2026-12-01T10:00:00.000Z" }
  })

  it.live("puts the layout's template once, before the first write, then only bulk requests", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const layer = sinkOn(domain, { layout: { alias: "logs", replicas: 0 }, manageTemplate: true })
      yield* Effect.gen(function* () {
        yield* write([dated("a", "2026-11-30T12:00:00.000Z")])
        yield* write([dated("b", "2026-12-01T00:00:00.000Z")])
      }).pipe(Effect.provide(layer))
      expect(domain.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        "PUT /_index_template/logs-template",
        "POST /_bulk",
        "POST /_bulk"
      ])
      const template = JSON.parse(domain.requests[0]!.body) as {
        index_patterns: Array<string>
        template: { aliases: object; settings: Record<string, unknown>; mappings: { properties: object } }
      }
      expect(template.index_patterns).toEqual(["logs-*"])
      expect(template.template.aliases).toEqual({ logs: {} })
      expect(template.template.settings).toMatchObject({
        "index.mapping.total_fields.limit": 1000,
        "index.number_of_replicas": 0
      })
      expect(template.template.mappings.properties).toMatchObject({
        id: { type: "keyword" },
        type: { type: "keyword" },
        tenant: { type: "keyword" },
        timestamp: { type: "date" },
        receivedAt: { type: "date" },
        payload: { type: "object", dynamic: true }
      })
      expect(domain.requests.slice(1).map((r) => r.lines[0]?.index)).toEqual([
        "logs-2026.11.30",
        "logs-2026.12.01"
      ])
    })
  )

  it.live("a template refused fails the write whole, typed; the next write puts it again", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      let refuse = true
      domain.reply = (request) =>
        request.path.startsWith("/_index_template/") && refuse
          ? {
              status: 403,
              body: {
                error: {
                  type: "security_exception",
                  reason: "no permissions for [indices:admin/index_template/put]"
                },
                status: 403
              }
            }
          : undefined
      const layer = sinkOn(domain, { layout: { alias: "logs" }, manageTemplate: true })
      const [first, second] = yield* Effect.gen(function* () {
        const first = yield* Effect.flip(write([dated("a", "2026-11-30T12:00:00.000Z")]))
        refuse = false
        const second = yield* write([dated("a", "2026-11-30T12:00:00.000Z")])
        return [first, second] as const
      }).pipe(Effect.provide(layer))
      expect(first.reason).toBe("AccessDenied")
      expect(first.message).toContain("cannot put the index template logs-template")
      expect(second).toEqual([DocumentSink.written])
      expect(domain.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        "PUT /_index_template/logs-template",
        "PUT /_index_template/logs-template",
        "POST /_bulk"
      ])
    })
  )

  it.live(
    "indices follow the UTC date of timestamp, then receivedAt; a document with neither is rejected",
    () =>
      Effect.gen(function* () {
        const domain = yield* Effect.promise(startDomain)
        const outcomes = yield* write([
          dated("utc", "2026-02-28T23:59:59.999Z"),
          dated("offset", "2026-02-28T23:30:00.000-05:00"),
          dated("no-timestamp", undefined),
          { id: "none", body: { type: "cpu" } }
        ]).pipe(Effect.provide(sinkOn(domain, { layout: { alias: "telemetry" } })))
        expect(outcomes.map((o) => o._tag)).toEqual(["Written", "Written", "Written", "Rejected"])
        expect(outcomes[3]).toMatchObject({ reason: expect.stringContaining("no valid timestamp") })
        expect(domain.requests[0]!.lines.map((l) => [l.id, l.index])).toEqual([
          ["utc", "telemetry-2026.02.28"],
          ["offset", "telemetry-2026.03.01"],
          ["no-timestamp", "telemetry-2026.12.01"]
        ])
      })
  )

  it.live("a whole-request 403 cluster_block_exception (read-only) is retryable, unlike other 403s", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      domain.reply = () => ({
        status: 403,
        body: {
          error: {
            type: "cluster_block_exception",
            reason: "index [telemetry-all] blocked by: [FORBIDDEN/8/index write (api)];"
          },
          status: 403
        }
      })
      const error = yield* Effect.flip(write(docs(1)).pipe(Effect.provide(sinkOn(domain))))
      expect(error.reason).toBe("Unavailable")
      expect(error.isRetryable).toBe(true)
    })
  )
})

describe("OpenSearch layers from Config", () => {
  it.live("read OPENSEARCH_ENDPOINT and OPENSEARCH_INDEX, and name a missing or malformed variable", () =>
    Effect.gen(function* () {
      const domain = yield* Effect.promise(startDomain)
      const layerWith = (env: Record<string, string>) =>
        OpenSearchSink.layerConfig().pipe(
          Layer.provide(OpenSearchClient.layerConfig({ credentials })),
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
        )
      const dated = [{ id: "d-1", body: { type: "cpu", timestamp: "2026-11-30T23:30:00.000-02:00" } }]
      yield* write(dated).pipe(
        Effect.provide(
          layerWith({ OPENSEARCH_ENDPOINT: domain.url, OPENSEARCH_INDEX: "metrics", AWS_REGION: "eu-west-1" })
        )
      )
      expect(domain.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        "PUT /_index_template/metrics-template",
        "POST /_bulk"
      ])
      // 23:30 at UTC-2 is 01:30 UTC the next day: indices are by UTC date.
      expect(domain.requests[1]!.lines.map((l) => l.index)).toEqual(["metrics-2026.12.01"])
      expect(String(domain.requests[0]!.headers.authorization)).toContain("/eu-west-1/es/aws4_request")

      yield* write(dated).pipe(
        Effect.provide(
          layerWith({
            OPENSEARCH_ENDPOINT: domain.url,
            AWS_REGION: "eu-west-1",
            OPENSEARCH_INDEX_PERIOD: "month",
            OPENSEARCH_MANAGE_TEMPLATE: "false"
          })
        )
      )
      expect(domain.requests.slice(2).map((r) => `${r.method} ${r.path}`)).toEqual(["POST /_bulk"])
      expect(domain.requests[2]!.lines.map((l) => l.index)).toEqual(["telemetry-2026.12"])
      for (const [name, value] of [
        ["OPENSEARCH_INDEX", "Telemetry"],
        ["OPENSEARCH_INDEX_PERIOD", "hourly"],
        ["OPENSEARCH_TOTAL_FIELDS_LIMIT", "3"],
        ["OPENSEARCH_PAYLOAD_MAPPING", "nested"]
      ] as const) {
        const refused = yield* Effect.flip(
          write(dated).pipe(
            Effect.provide(
              layerWith({ OPENSEARCH_ENDPOINT: domain.url, AWS_REGION: "eu-west-1", [name]: value })
            )
          )
        )
        expect(String(refused)).toContain(name)
      }

      const missing = yield* Effect.flip(
        write(docs(1)).pipe(Effect.provide(layerWith({ AWS_REGION: "eu-west-1" })))
      )
      expect(String(missing)).toContain("OPENSEARCH_ENDPOINT")
      const badService = yield* Effect.flip(
        write(docs(1)).pipe(
          Effect.provide(
            layerWith({
              OPENSEARCH_ENDPOINT: domain.url,
              AWS_REGION: "eu-west-1",
              OPENSEARCH_SERVICE: "lambda"
            })
          )
        )
      )
      expect(String(badService)).toContain("OPENSEARCH_SERVICE")
    })
  )
})
