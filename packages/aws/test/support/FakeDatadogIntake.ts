/**
 * A loopback HTTP server that behaves like Datadog's metrics intake (`POST /api/v2/series`,
 * docs/aws-behaviour.md §8), for the Datadog sink's tests: it records every request (headers,
 * compressed and decompressed sizes, the decoded payload), checks what the real intake checks —
 * the `DD-API-KEY` (403 otherwise), `Content-Encoding: gzip` bodies that gunzip to JSON of the v2
 * `MetricPayload` shape, as the spec describes it and as Datadog's own client model
 * (`@datadog/datadog-api-client`) reads it (400 otherwise), the documented size limits (413 over 512,000 bytes
 * compressed or 5,242,880 decompressed) — and answers 202 `{"errors":[]}`, or what the test
 * planned: a 429 with the `X-RateLimit-*` headers, a 5xx, a request held without an answer (the
 * client's timeout).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { gunzipSync } from "node:zlib"
import { v2 } from "@datadog/datadog-api-client"
import { MetricsSink } from "@spillway/core"
import { Effect, Result, Schema, SchemaParser } from "effect"

/** The v2 `MetricPayload`, as Datadog's OpenAPI spec describes it (required fields and types). */
export const MetricPayload = Schema.Struct({
  series: Schema.Array(
    Schema.Struct({
      metric: Schema.String.check(Schema.isMinLength(1)),
      type: Schema.optionalKey(Schema.Literals([0, 1, 2, 3])),
      points: Schema.Array(Schema.Struct({ timestamp: Schema.Int, value: Schema.Finite })).check(
        Schema.isMinLength(1)
      ),
      tags: Schema.optionalKey(Schema.Array(Schema.String)),
      interval: Schema.optionalKey(Schema.Int),
      unit: Schema.optionalKey(Schema.String),
      resources: Schema.optionalKey(Schema.Array(Schema.Struct({ name: Schema.String, type: Schema.String })))
    })
  )
})
export type MetricPayload = typeof MetricPayload.Type

const decodePayload = SchemaParser.decodeUnknownResult(MetricPayload, { onExcessProperty: "error" })

const hasUnparsed = (value: unknown): boolean =>
  typeof value === "object" &&
  value !== null &&
  ((value as { _unparsed?: unknown })._unparsed === true || Object.values(value).some(hasUnparsed))

/**
 * Whether Datadog's own client, `@datadog/datadog-api-client`, reads `json` as a v2
 * `MetricPayload`: its deserializer throws on a missing required field or a value of the wrong
 * type, and marks what it cannot parse (a type outside the enum) `_unparsed`. It keeps unknown
 * fields as `additionalProperties`; our schema of the spec refuses those.
 */
export const acceptedByOfficialModel = (json: unknown): boolean => {
  try {
    return !hasUnparsed(v2.ObjectSerializer.deserialize(json, "MetricPayload", ""))
  } catch {
    return false
  }
}

export type Plan =
  | { readonly _tag: "Respond"; readonly status: number; readonly headers?: Readonly<Record<string, string>> }
  /** Keeps the request open without answering for `millis`, then closes the socket. */
  | { readonly _tag: "Hold"; readonly millis: number }

export interface Received {
  readonly apiKey: string | undefined
  readonly contentEncoding: string | undefined
  readonly compressedBytes: number
  readonly decompressedBytes: number
  readonly payload: MetricPayload | undefined
  readonly status: number | "held"
  readonly at: number
}

export interface FakeIntake {
  readonly url: string
  /** Every request, in arrival order. */
  readonly received: ReadonlyArray<Received>
  /** Points of the requests answered 202, as `metric|tags|timestamp` → value (summed). */
  readonly acceptedPoints: () => ReadonlyArray<{
    metric: string
    tags: ReadonlyArray<string>
    timestamp: number
    value: number
  }>
  readonly plan: (...plans: ReadonlyArray<Plan>) => void
  readonly clearPlans: () => void
}

export const rateLimited = (resetSeconds: number): Plan => ({
  _tag: "Respond",
  status: 429,
  headers: {
    "X-RateLimit-Limit": "100",
    "X-RateLimit-Period": "60",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": String(resetSeconds),
    "X-RateLimit-Name": "metrics_submit"
  }
})

const readBody = (request: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks)))
    request.on("error", reject)
  })

/** Starts the intake for the scope; `apiKey` is the only key it takes. */
export const start = (apiKey: string) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ server: ReturnType<typeof createServer>; intake: FakeIntake }>((resolve) => {
          const received: Array<Received> = []
          const plans: Array<Plan> = []
          const accepted: Array<MetricPayload> = []
          const answer = (
            response: ServerResponse,
            status: number,
            body: unknown,
            headers: Readonly<Record<string, string>> = {}
          ) => {
            response.writeHead(status, { "Content-Type": "application/json", ...headers })
            response.end(JSON.stringify(body))
          }
          const server = createServer((request, response) => {
            void readBody(request).then((raw) => {
              const key = request.headers["dd-api-key"]
              const encoding = request.headers["content-encoding"]
              let plain: Buffer | undefined
              try {
                plain = encoding === "gzip" ? gunzipSync(raw) : raw
              } catch {
                plain = undefined
              }
              let payload: MetricPayload | undefined
              if (plain !== undefined) {
                try {
                  const json: unknown = JSON.parse(plain.toString("utf8"))
                  const decoded = decodePayload(json)
                  // A payload is the intake's only when both our schema of the spec and Datadog's
                  // own client model accept it.
                  payload =
                    Result.isSuccess(decoded) && acceptedByOfficialModel(json) ? decoded.success : undefined
                } catch {
                  payload = undefined
                }
              }
              const record = (status: number | "held") =>
                received.push({
                  apiKey: typeof key === "string" ? key : undefined,
                  contentEncoding: encoding,
                  compressedBytes: raw.byteLength,
                  decompressedBytes: plain?.byteLength ?? 0,
                  payload,
                  status,
                  at: Date.now()
                })
              const plan = plans.shift()
              if (plan?._tag === "Hold") {
                record("held")
                setTimeout(() => request.socket.destroy(), plan.millis).unref()
                return
              }
              if (request.method !== "POST" || request.url !== "/api/v2/series") {
                record(404)
                return answer(response, 404, { errors: ["Not found"] })
              }
              if (key !== apiKey) {
                record(403)
                return answer(response, 403, { errors: ["Forbidden"] })
              }
              if (
                raw.byteLength > MetricsSink.datadogV2Limits.maxCompressedBytes ||
                (plain?.byteLength ?? 0) > MetricsSink.datadogV2Limits.maxUncompressedBytes
              ) {
                record(413)
                return answer(response, 413, { errors: ["Payload too large"] })
              }
              if (plan !== undefined) {
                record(plan.status)
                return answer(response, plan.status, { errors: [`planned ${plan.status}`] }, plan.headers)
              }
              if (encoding !== "gzip" || payload === undefined) {
                record(400)
                return answer(response, 400, {
                  errors: ["Bad Request: the body is not a gzipped v2 MetricPayload"]
                })
              }
              record(202)
              accepted.push(payload)
              answer(response, 202, { errors: [] })
            })
          })
          server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo
            resolve({
              server,
              intake: {
                url: `http://127.0.0.1:${port}/api/v2/series`,
                received,
                acceptedPoints: () =>
                  accepted.flatMap((p) =>
                    p.series.flatMap((s) =>
                      s.points.map((point) => ({
                        metric: s.metric,
                        tags: s.tags ?? [],
                        timestamp: point.timestamp,
                        value: point.value
                      }))
                    )
                  ),
                plan: (...more) => plans.push(...more),
                clearPlans: () => {
                  plans.length = 0
                }
              }
            })
          })
        })
    ),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  ).pipe(Effect.map(({ intake }) => intake))
