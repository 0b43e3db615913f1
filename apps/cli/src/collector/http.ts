/**
 * The collector's HTTP contract: a pure mapping from a request to a JSON response over the core
 * `collect` stage. Transports only adapt to it — the local server of `spillway dev` today, the
 * Lambda collector behind API Gateway or a function URL later — so every deployment answers alike.
 *
 *   POST /v1/telemetry   x-api-key: <key>   content-type: application/json   [content-encoding: gzip]
 *   body: a JSON array of records
 *
 *   202 { accepted, rejected: [{ index, reason }], unavailable: [{ index, reason }] }
 *   400 not UTF-8 JSON, not an array, invalid gzip, or no valid record (still listing the reasons)
 *   401 missing or unknown key          404 unknown path     405 wrong method (with `Allow`)
 *   413 body over the limit, raw or decompressed (zip bombs)
 *   415 content type other than JSON, or a content coding other than gzip
 *   503 + Retry-After: neither the stream nor the fallback queue took any record
 *   GET /healthz → 200 { ok: true }
 *
 * Guarantees:
 * - every answer has a JSON body, and every error body is `{ error: { code, message } }`;
 * - bad input of any kind answers 4xx: the only 5xx for a request is 503 (try again later), and
 *   500 only if the collector itself is broken (a defect), never because of what was sent;
 * - the key is checked before the body is read, so an unknown client makes the collector neither
 *   read nor parse anything;
 * - the body is never read past `maxBodyBytes`, and gzip never inflates past `maxDecodedBytes`;
 * - records nested deeper than `Telemetry.maxNestingDepth` are rejected one by one by the stage
 *   itself (with a reason), so a 1 MiB `[[[[…]]]]` cannot take valid records down with it.
 */
import { gunzip } from "node:zlib"
import { ApiKeys, Collect, type FallbackQueue, type RecordStream } from "@spillway/core"
import { Cause, Data, Effect, Result } from "effect"

export type HeaderValue = string | ReadonlyArray<string> | undefined

/** The body is longer than the limit the caller asked for. */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

/** The body could not be read (the client went away, the connection broke). */
export class BodyUnreadable extends Data.TaggedError("BodyUnreadable")<{ readonly message: string }> {}

export interface CollectorRequest {
  readonly method: string
  /** Path and query string as received, e.g. `/v1/telemetry?debug=1`. */
  readonly url: string
  /**
   * Header names lower-cased. A header sent more than once is either an array or one
   * comma-joined string (API Gateway's form); both are read as the joined string.
   */
  readonly headers: Readonly<Record<string, HeaderValue>>
  /** Reads the whole body, failing with `BodyTooLarge` as soon as more than `limit` bytes arrived. */
  readonly readBody: (limit: number) => Effect.Effect<Uint8Array, BodyTooLarge | BodyUnreadable>
}

export type ErrorCode =
  | "NotFound"
  | "MethodNotAllowed"
  | "MissingApiKey"
  | "UnknownApiKey"
  | "UnsupportedMediaType"
  | "UnsupportedContentEncoding"
  | "PayloadTooLarge"
  | "UnreadableBody"
  | "InvalidGzip"
  | "InvalidJson"
  | "InvalidBody"
  | "NoValidRecords"
  | "Unavailable"
  | "InternalError"

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string }
  /** Present when the records reached the collect stage (400 `NoValidRecords`, 503). */
  readonly accepted?: number
  readonly rejected?: ReadonlyArray<Collect.Rejection>
  readonly unavailable?: ReadonlyArray<Collect.Rejection>
}

export interface AcceptedBody {
  readonly accepted: number
  /** Invalid records: sending them again cannot help. */
  readonly rejected: ReadonlyArray<Collect.Rejection>
  /** Valid records nothing would take right now: the client must send these again. */
  readonly unavailable: ReadonlyArray<Collect.Rejection>
}

export type ResponseBody = ErrorBody | AcceptedBody | { readonly ok: true }

export interface CollectorResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: ResponseBody
  /**
   * What the collect stage was given and what it answered, for callers that keep figures (the
   * local pipeline checks that every accepted id is indexed). Absent when the request was refused
   * before the stage.
   */
  readonly collected?: {
    readonly records: ReadonlyArray<unknown>
    readonly result: Collect.CollectResult
  }
}

export interface Options {
  /** Largest body read off the wire, in bytes. @default 1,048,576 (1 MiB) */
  readonly maxBodyBytes?: number
  /** Largest body after gzip decompression, in bytes. @default maxBodyBytes */
  readonly maxDecodedBytes?: number
  /** `Retry-After` of a 503, in seconds. @default 5 */
  readonly retryAfterSeconds?: number
  readonly collect?: Collect.CollectOptions
}

export const telemetryPath = "/v1/telemetry"
export const healthPath = "/healthz"
export const defaultMaxBodyBytes = 1024 * 1024

// Reasons echo parts of what was sent; a hostile 1 MiB string must not come back at full length.
const maxReasonLength = 500

const jsonHeaders = { "content-type": "application/json; charset=utf-8" } as const

const error = (
  status: number,
  code: ErrorCode,
  message: string,
  headers: Readonly<Record<string, string>> = {}
): CollectorResponse => ({
  status,
  headers: { ...jsonHeaders, ...headers },
  body: { error: { code, message } }
})

export const headerValue = (headers: CollectorRequest["headers"], name: string): string | undefined => {
  const value = headers[name]
  if (value === undefined) return undefined
  return typeof value === "string" ? value : value.join(", ")
}

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** Answers one request. Never fails: every outcome, a defect included, is a response. */
export const handle = (
  request: CollectorRequest,
  options: Options = {}
): Effect.Effect<
  CollectorResponse,
  never,
  ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue
> => {
  const path = pathOf(request.url)
  const method = request.method.toUpperCase()
  if (path === healthPath) {
    return Effect.succeed(
      method === "GET" || method === "HEAD"
        ? { status: 200, headers: jsonHeaders, body: { ok: true } }
        : error(405, "MethodNotAllowed", `${healthPath} accepts GET`, { allow: "GET, HEAD" })
    )
  }
  if (path !== telemetryPath)
    return Effect.succeed(error(404, "NotFound", `no route for ${path.slice(0, 200)}`))
  if (method !== "POST") {
    return Effect.succeed(error(405, "MethodNotAllowed", `${telemetryPath} accepts POST`, { allow: "POST" }))
  }
  return collectRequest(request, options).pipe(
    Effect.catchCause((cause) =>
      // An interrupted request is one whose client went away: nobody reads this answer.
      Cause.hasInterruptsOnly(cause)
        ? Effect.succeed(error(400, "UnreadableBody", "request aborted"))
        : Effect.as(
            Effect.logError("collector defect", cause),
            error(500, "InternalError", "the collector failed; the records were not accepted")
          )
    )
  )
}

const collectRequest = Effect.fn("CollectorHttp.collect")(function* (
  request: CollectorRequest,
  options: Options
) {
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes
  const maxDecodedBytes = options.maxDecodedBytes ?? maxBodyBytes

  const tenant = yield* Effect.result(
    (yield* ApiKeys.ApiKeys).authorize(headerValue(request.headers, "x-api-key"))
  )
  if (Result.isFailure(tenant)) return unauthorized(tenant.failure)

  const contentType = headerValue(request.headers, "content-type")
  if (!isJsonMediaType(contentType)) {
    return error(
      415,
      "UnsupportedMediaType",
      `content-type must be application/json (UTF-8), got ${contentType === undefined ? "none" : JSON.stringify(contentType.slice(0, 100))}`
    )
  }
  const encoding = contentEncoding(headerValue(request.headers, "content-encoding"))
  if (encoding === undefined) {
    return error(415, "UnsupportedContentEncoding", "content-encoding must be gzip or absent", {
      "accept-encoding": "gzip"
    })
  }
  // Refuse a declared oversize body without reading a byte of it.
  const declaredLength = Number(headerValue(request.headers, "content-length"))
  if (Number.isFinite(declaredLength) && declaredLength > maxBodyBytes) return tooLarge(maxBodyBytes, "")

  const raw = yield* Effect.result(request.readBody(maxBodyBytes))
  if (Result.isFailure(raw)) {
    return raw.failure._tag === "BodyTooLarge"
      ? tooLarge(maxBodyBytes, "")
      : error(400, "UnreadableBody", `the body could not be read: ${raw.failure.message}`)
  }
  if (raw.success.byteLength > maxBodyBytes) return tooLarge(maxBodyBytes, "")

  let bytes = raw.success
  if (encoding === "gzip") {
    const inflated = yield* inflate(raw.success, maxDecodedBytes)
    if (inflated._tag === "TooLarge") return tooLarge(maxDecodedBytes, " once decompressed")
    if (inflated._tag === "Invalid")
      return error(400, "InvalidGzip", `the body is not valid gzip: ${inflated.message}`)
    bytes = inflated.bytes
  }

  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return error(400, "InvalidJson", "the body is not valid UTF-8")
  }
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (e) {
    return error(
      400,
      "InvalidJson",
      `the body is not JSON: ${truncate(e instanceof Error ? e.message : String(e))}`
    )
  }

  const outcome = yield* Effect.result(
    Collect.collect(headerValue(request.headers, "x-api-key"), body, options.collect)
  )
  if (Result.isFailure(outcome)) {
    const e = outcome.failure
    return e._tag === "Unauthorized" ? unauthorized(e) : error(400, "InvalidBody", e.reason)
  }
  const result = outcome.success
  const rejected = result.rejected.map((r) => ({ index: r.index, reason: truncate(r.reason) }))
  const unavailable = result.unavailable.map((r) => ({ index: r.index, reason: truncate(r.reason) }))
  const collected = { records: Array.isArray(body) ? body : [], result }
  if (result.accepted > 0) {
    return {
      status: 202,
      headers: jsonHeaders,
      body: { accepted: result.accepted, rejected, unavailable },
      collected
    }
  }
  if (unavailable.length > 0) {
    const retryAfter = options.retryAfterSeconds ?? 5
    return {
      status: 503,
      headers: { ...jsonHeaders, "retry-after": String(retryAfter) },
      body: {
        error: {
          code: "Unavailable" as const,
          message: `neither the stream nor the fallback queue took the records; send them again in ${retryAfter} s`
        },
        accepted: 0,
        rejected,
        unavailable
      },
      collected
    }
  }
  return {
    status: 400,
    headers: jsonHeaders,
    body: {
      error: { code: "NoValidRecords" as const, message: `none of the ${rejected.length} records is valid` },
      accepted: 0,
      rejected
    },
    collected
  }
})

const unauthorized = (e: ApiKeys.Unauthorized): CollectorResponse =>
  error(401, e.reason === "MissingKey" ? "MissingApiKey" : "UnknownApiKey", e.message)

const tooLarge = (limit: number, what: string): CollectorResponse =>
  error(413, "PayloadTooLarge", `the body is over ${limit} bytes${what}`)

const truncate = (s: string): string => (s.length > maxReasonLength ? `${s.slice(0, maxReasonLength)}…` : s)

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** `application/json`, with no charset or a UTF-8 one (JSON is UTF-8 on the wire: RFC 8259 §8.1). */
const isJsonMediaType = (value: string | undefined): boolean => {
  if (value === undefined) return false
  const [type, ...parameters] = value.split(";")
  if (type?.trim().toLowerCase() !== "application/json") return false
  return parameters.every((p) => {
    const [name, raw] = p.split("=")
    if (name?.trim().toLowerCase() !== "charset") return true
    const charset = raw
      ?.trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase()
    return charset === "utf-8" || charset === "utf8"
  })
}

const contentEncoding = (value: string | undefined): "identity" | "gzip" | undefined => {
  const v = value?.trim().toLowerCase()
  if (v === undefined || v === "" || v === "identity") return "identity"
  if (v === "gzip" || v === "x-gzip") return "gzip"
  return undefined
}

type Inflated =
  | { readonly _tag: "Ok"; readonly bytes: Uint8Array }
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "Invalid"; readonly message: string }

/** Gunzips with the output capped: zlib stops at `limit` bytes instead of inflating a bomb. */
const inflate = (bytes: Uint8Array, limit: number): Effect.Effect<Inflated> =>
  Effect.callback<Inflated>((resume) => {
    gunzip(bytes, { maxOutputLength: limit }, (e, out) => {
      if (e === null) resume(Effect.succeed({ _tag: "Ok", bytes: out }))
      else if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
        resume(Effect.succeed({ _tag: "TooLarge" }))
      else resume(Effect.succeed({ _tag: "Invalid", message: truncate(e.message) }))
    })
  })

/** A `readBody` for transports that already hold the whole body (Lambda events, tests). */
export const bodyFromBytes =
  (bytes: Uint8Array) =>
  (limit: number): Effect.Effect<Uint8Array, BodyTooLarge> =>
    bytes.byteLength > limit ? Effect.fail(new BodyTooLarge({ limit })) : Effect.succeed(bytes)
