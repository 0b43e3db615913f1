/**
 * `JsonLinesS3Sink` on S3 (fauxqs), through the `DocumentSink` conformance suite every Spillway
 * sink passes, with `stored` reading the bucket back with the plain SDK; then what the suite does
 * not ask: the object layout, per-document answers at full concurrency, whole-write failures,
 * the mapping of S3's errors, and the configuration.
 *
 * Faults come from a `FaultProxy` in front of fauxqs. It speaks S3 well enough for this sink, not
 * cleanly: S3 is REST-XML, so the proxy sees no operation (no `X-Amz-Target`) and no method or
 * path — a request is a `PutObject` of this sink when its body parses as a document line — and its
 * answers are JSON, which the SDK cannot parse: only the HTTP status reaches the sink (503 reads
 * as `Throttled`, which is also what S3's `SlowDown` maps to; error codes are checked on their
 * own, and `NoSuchBucket` comes from fauxqs itself).
 *
 * The suite runs twice. The sink sends up to 32 `PutObject`s at once, so the order in which the
 * backend receives a write's documents is not the write's order; the suite's `retryNext` turns
 * away "the next N documents the backend receives" and expects them to be the first N of the
 * write, which holds only one request at a time. So: once as deployed (concurrency 32), without
 * fault hooks; once with `concurrency: 1` and the hooks. Per-document faults at full concurrency
 * are checked below, chosen by document id instead of arrival order.
 */
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as S3Client from "@spillway/aws/S3Client"
import { DocumentSink } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { Conformance } from "@spillway/testing"
import { ConfigProvider, Context, Effect, Layer, Result } from "effect"
import * as JsonLinesS3Sink from "../src/JsonLinesS3Sink.js"
import { answer, carriedDocument, documentsIn, fauxqsForFile, freshBucket, keys } from "./support/bucket.js"

const fauxqs = fauxqsForFile()
const prefix = "telemetry/documents/"

/** What a test sees next to the sink: the bucket, a plain client for it, and the proxy in front. */
interface Setup {
  readonly bucket: string
  readonly client: S3Client.S3Client["Service"]
  readonly proxy: FaultProxy.FaultProxy
  /** Decides per document id (`undefined`: no document) what the proxy does; `forward` unless set. */
  intercept: (id: string | undefined) => FaultProxy.Action
}

class Bucket extends Context.Service<Bucket, Setup>()("example/test/Bucket") {}

const { SinkFaults } = Conformance

/** A fresh bucket behind a fresh proxy, the sink on it, and the suite's fault hooks. */
const sinkOnFauxqs = (options: { readonly concurrency?: number; readonly bucket?: string } = {}) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const proxy = yield* FaultProxy.scoped(fauxqs().endpoint)
      const client = yield* S3Client.make({ ...fauxqs().s3, endpoint: proxy.endpoint })
      const bucket = options.bucket ?? (yield* freshBucket(fauxqs()))
      const setup: Setup = { bucket, client, proxy, intercept: () => FaultProxy.forward }
      proxy.setInterceptor((request) => setup.intercept(carriedDocument(request)))
      const sink = yield* JsonLinesS3Sink.make({
        bucket,
        prefix,
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency })
      }).pipe(Effect.provideService(S3Client.S3Client, client))
      // The suite's hooks: `retryNext` and `outage` answer PutObjects 503 (S3's SlowDown); reads pass.
      let turnAway = 0
      let outage = false
      setup.intercept = (id) => {
        if (id === undefined) return FaultProxy.forward
        if (outage) return answer(503, "SlowDown")
        if (turnAway > 0) {
          turnAway -= 1
          return answer(503, "SlowDown")
        }
        return FaultProxy.forward
      }
      return Context.make(DocumentSink.DocumentSink, sink).pipe(
        Context.add(Bucket, setup),
        Context.add(
          SinkFaults,
          SinkFaults.of({
            retryNext: (count) =>
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
          })
        )
      )
    })
  )

const stored = Effect.flatMap(Bucket, ({ client, bucket }) => documentsIn(client, bucket, prefix))
const requests = Effect.map(Bucket, ({ proxy }) => proxy.requests())
const refusedDocument = (id: string): DocumentSink.Document => ({ id, body: { count: 10n } })

Conformance.documentSinkSuite({
  name: "JsonLinesS3Sink on fauxqs S3 (32 requests at once, as deployed)",
  layer: () => sinkOnFauxqs(),
  clock: "live",
  stored,
  requests,
  refusedDocument,
  timeout: 30_000
})

Conformance.documentSinkSuite({
  name: "JsonLinesS3Sink on fauxqs S3 (one request at a time), with faults",
  layer: () => sinkOnFauxqs({ concurrency: 1 }),
  clock: "live",
  stored,
  requests,
  refusedDocument,
  faults: SinkFaults,
  timeout: 30_000
})

const write = (documents: ReadonlyArray<DocumentSink.Document>) =>
  Effect.flatMap(DocumentSink.DocumentSink, (sink) => sink.write(documents))
const tags = (outcomes: ReadonlyArray<DocumentSink.WriteOutcome>) => outcomes.map((o) => o._tag)
const doc = (id: string, n = 0): DocumentSink.Document => ({ id, body: { n, type: "cpu" } })
const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex")

describe("JsonLinesS3Sink on fauxqs S3", () => {
  it.live("keeps each document as one JSON line at <prefix><sha256(id)>.jsonl, overwritten in place", () =>
    Effect.gen(function* () {
      const { client, bucket } = yield* Bucket
      const id = "caf\u00e9/42?"
      expect(tags(yield* write([doc(id, 1)]))).toEqual(["Written"])
      const key = `${prefix}${sha256(id)}.jsonl`
      expect(JsonLinesS3Sink.keyOf(prefix, id)).toBe(key)
      expect(yield* keys(client, bucket, prefix)).toEqual([key])
      expect(tags(yield* write([doc(id, 2)]))).toEqual(["Written"])
      expect(yield* keys(client, bucket, prefix)).toEqual([key])
      expect(yield* documentsIn(client, bucket, prefix)).toEqual([doc(id, 2)])
    }).pipe(Effect.provide(sinkOnFauxqs()))
  )

  it.live("answers each document by its own request at full concurrency, whatever the arrival order", () =>
    Effect.gen(function* () {
      const setup = yield* Bucket
      const throttled = new Set(["d-3", "d-11", "d-17", "d-38"])
      const denied = new Set(["d-7", "d-29"])
      setup.intercept = (id) =>
        id === undefined
          ? FaultProxy.forward
          : throttled.has(id)
            ? answer(503, "SlowDown")
            : denied.has(id)
              ? answer(403, "AccessDenied")
              : FaultProxy.forward
      const batch = Array.from({ length: 40 }, (_, i) => doc(`d-${i}`, i))
      const outcomes = yield* write(batch)
      expect(tags(outcomes)).toEqual(
        batch.map((d) => (throttled.has(d.id) ? "Retryable" : denied.has(d.id) ? "Rejected" : "Written"))
      )
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome._tag === "Written") continue
        expect(outcome.reason).toContain("json-lines-s3: PutObject")
        expect(outcome.reason).toContain(JsonLinesS3Sink.keyOf(prefix, `d-${i}`))
        expect(outcome.reason).toContain(outcome._tag === "Retryable" ? " 503 " : " 403 ")
      }
      const kept = (yield* documentsIn(setup.client, setup.bucket, prefix)).map((d) => d.id).sort()
      expect(kept).toEqual(
        batch
          .filter((d) => !throttled.has(d.id) && !denied.has(d.id))
          .map((d) => d.id)
          .sort()
      )
    }).pipe(Effect.provide(sinkOnFauxqs()))
  )

  it.live("fails a write whole, AccessDenied and not retryable, when every PutObject is denied", () =>
    Effect.gen(function* () {
      const setup = yield* Bucket
      setup.intercept = (id) => (id === undefined ? FaultProxy.forward : answer(403, "AccessDenied"))
      const error = yield* Effect.flip(write([doc("a"), doc("b"), doc("c")]))
      expect(error).toMatchObject({
        _tag: "DocumentSinkError",
        sink: "json-lines-s3",
        reason: "AccessDenied"
      })
      expect(error.isRetryable).toBe(false)
      expect(error.message).toContain("all 3 PutObject requests failed (AccessDenied)")
      expect(yield* keys(setup.client, setup.bucket, prefix)).toEqual([])
      // Through `fanOut`, a whole failure that cannot be retried is every document Rejected.
      const fanned = DocumentSink.fanOut([yield* DocumentSink.DocumentSink])
      expect(tags(yield* fanned.write([doc("a"), doc("b")]))).toEqual(["Rejected", "Rejected"])
    }).pipe(Effect.provide(sinkOnFauxqs()))
  )

  it.live("answers each document when every PutObject failed, but not for one reason", () =>
    Effect.gen(function* () {
      const setup = yield* Bucket
      setup.intercept = (id) =>
        id === undefined
          ? FaultProxy.forward
          : id === "b"
            ? answer(403, "AccessDenied")
            : answer(503, "SlowDown")
      expect(tags(yield* write([doc("a"), doc("b"), doc("c")]))).toEqual([
        "Retryable",
        "Rejected",
        "Retryable"
      ])
    }).pipe(Effect.provide(sinkOnFauxqs()))
  )

  it.live("fails a write whole, InvalidRequest and not retryable, into a bucket that does not exist", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(write([doc("a"), doc("b")]))
      expect(error).toMatchObject({ _tag: "DocumentSinkError", reason: "InvalidRequest" })
      expect(error.isRetryable).toBe(false)
      expect(error.message).toContain("404 NoSuchBucket")
    }).pipe(Effect.provide(sinkOnFauxqs({ bucket: "no-such-bucket" })))
  )

  it.live("refuses an id with a lone surrogate without a request, and writes the rest", () =>
    Effect.gen(function* () {
      const setup = yield* Bucket
      const before = setup.proxy.requests()
      const outcomes = yield* write([doc("ok-1"), doc("bad-\ud800"), doc("ok-2")])
      expect(tags(outcomes)).toEqual(["Written", "Rejected", "Written"])
      expect(outcomes[1]).toMatchObject({ reason: expect.stringContaining("lone surrogate") })
      expect(setup.proxy.requests() - before).toBe(2)
      // A well-formed pair of surrogates is one character like any other.
      expect(tags(yield* write([doc("emoji-\ud83d\ude80")]))).toEqual(["Written"])
    }).pipe(Effect.provide(sinkOnFauxqs()))
  )
})

describe("S3 errors", () => {
  it("map to a reason: throttling retryable, access denied and refusals not", () => {
    const reason = (name: string, status: number | undefined) =>
      JsonLinesS3Sink.reasonOf({ name, status, message: "" })
    expect(reason("SlowDown", 503)).toBe("Throttled")
    expect(reason("ServiceUnavailable", 503)).toBe("Throttled")
    expect(reason("Error", 503)).toBe("Throttled")
    expect(reason("TooManyRequests", 429)).toBe("Throttled")
    expect(reason("AccessDenied", 403)).toBe("AccessDenied")
    expect(reason("InvalidAccessKeyId", 403)).toBe("AccessDenied")
    expect(reason("Error", 403)).toBe("AccessDenied")
    expect(reason("ExpiredToken", 400)).toBe("AccessDenied")
    expect(reason("CredentialsProviderError", undefined)).toBe("AccessDenied")
    expect(reason("InternalError", 500)).toBe("Unavailable")
    expect(reason("RequestTimeout", 400)).toBe("Unavailable")
    expect(reason("TimeoutError", undefined)).toBe("Unavailable")
    expect(reason("EntityTooLarge", 400)).toBe("TooLarge")
    expect(reason("NoSuchBucket", 404)).toBe("InvalidRequest")
    expect(reason("InvalidArgument", 400)).toBe("InvalidRequest")
    const retryable = (r: DocumentSink.ErrorReason) =>
      new DocumentSink.DocumentSinkError({ sink: "s", reason: r, message: "" }).isRetryable
    expect(retryable(reason("SlowDown", 503))).toBe(true)
    expect(retryable(reason("AccessDenied", 403))).toBe(false)
  })
})

describe("the object's line", () => {
  it("reads back what it wrote, and nothing else", () => {
    const document = doc("x", 1)
    const line = JsonLinesS3Sink.encodeLine(document)
    expect(line).toBe('{"id":"x","body":{"n":1,"type":"cpu"}}\n')
    expect(JsonLinesS3Sink.decodeLine(line)).toEqual(Result.succeed(document))
    expect(Result.isFailure(JsonLinesS3Sink.decodeLine(line.trimEnd()))).toBe(true)
    expect(Result.isFailure(JsonLinesS3Sink.decodeLine(line + line))).toBe(true)
    expect(Result.isFailure(JsonLinesS3Sink.decodeLine('{"id":1,"body":{}}\n'))).toBe(true)
    expect(() => JsonLinesS3Sink.encodeLine({ id: "x", body: { n: 1n } })).toThrow()
  })
})

describe("configuration", () => {
  const fromEnv = (env: Record<string, string>) =>
    Layer.provide(
      JsonLinesS3Sink.layerConfig(),
      Layer.merge(
        S3Client.layer({ ...Emulators.credentials, ...fauxqs().s3 }),
        ConfigProvider.layer(ConfigProvider.fromEnv({ env }))
      )
    )

  it.live("takes the bucket and prefix from CUSTOM_SINK_BUCKET and CUSTOM_SINK_PREFIX", () =>
    Effect.gen(function* () {
      const bucket = yield* freshBucket(fauxqs())
      const client = yield* S3Client.make(fauxqs().s3)
      yield* write([doc("configured")]).pipe(
        Effect.provide(fromEnv({ CUSTOM_SINK_BUCKET: bucket, CUSTOM_SINK_PREFIX: "lake/v1/" }))
      )
      expect(yield* keys(client, bucket, "")).toEqual([`lake/v1/${sha256("configured")}.jsonl`])
      yield* write([doc("defaulted")]).pipe(Effect.provide(fromEnv({ CUSTOM_SINK_BUCKET: bucket })))
      expect(yield* keys(client, bucket, "documents/")).toEqual([`documents/${sha256("defaulted")}.jsonl`])
    })
  )

  it.effect("fails at start naming the variable that is missing or malformed", () =>
    Effect.gen(function* () {
      const failure = (env: Record<string, string>) =>
        Effect.flip(Layer.build(fromEnv(env))).pipe(Effect.map(String), Effect.scoped)
      expect(yield* failure({})).toContain("CUSTOM_SINK_BUCKET")
      expect(yield* failure({ CUSTOM_SINK_BUCKET: "Not_A_Bucket" })).toContain("CUSTOM_SINK_BUCKET")
      expect(yield* failure({ CUSTOM_SINK_BUCKET: "Not_A_Bucket" })).toContain("must be an S3 bucket name")
      expect(yield* failure({ CUSTOM_SINK_BUCKET: "ok-bucket", CUSTOM_SINK_PREFIX: "/abs/" })).toContain(
        "CUSTOM_SINK_PREFIX"
      )
      expect(
        yield* failure({ CUSTOM_SINK_BUCKET: "ok-bucket", CUSTOM_SINK_PREFIX: "p".repeat(955) })
      ).toContain("at most 954 UTF-8 bytes")
    })
  )
})
