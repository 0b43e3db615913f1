/**
 * The collector's HTTP contract, transport-neutral: a request (method, path, headers, body bytes)
 * in, a response (status, headers, JSON body) out, over the `collect` stage. Transports only adapt
 * to it — the Node server of `spillway dev`, the Lambda collector behind API Gateway's HTTP API
 * or a function URL — so every deployment answers alike. `Request` is shaped so that an API
 * Gateway payload-format-2.0 event maps to it field by field: any header case, a header sent twice
 * as one comma-joined value, the body a string that may be base64 (`isBase64Encoded`).
 *
 *   POST /v1/telemetry   x-api-key: <key>   content-type: application/json   [content-encoding: gzip]
 *   body: a JSON array of records
 *
 *   202 { accepted, rejected: [{ index, reason }], unavailable: [{ index, reason }] }
 *   204 a CORS preflight from an allowed origin (the only answer without a body)
 *   400 not UTF-8 JSON, not an array, invalid gzip, or no valid record (still listing the reasons)
 *   401 missing or unknown key   403 preflight from an origin not allowed
 *   404 unknown path             405 wrong method (with `Allow`)
 *   413 body over the limit, raw or decompressed (zip bombs)
 *   415 content type other than JSON, or a content coding other than gzip
 *   503 + Retry-After: neither the stream nor the fallback queue took any record, or the API
 *       keys could not be read (`KeyStoreUnavailable`: the key was not judged, so never a 401)
 *   GET /healthz → 200 { ok: true }
 *
 * Guarantees:
 * - every answer but a preflight's 204 has a JSON body; every error body is `{ error: { code, message } }`;
 * - bad input of any kind answers 4xx: the only 5xx for a request is 503 (try again later), and
 *   500 only if the collector itself is broken (a defect), never because of what was sent;
 * - the key is checked exactly once per request, before the body is read, so an unknown client
 *   makes the collector neither read nor parse anything;
 * - the body is never read past `maxBodyBytes`, and gzip never inflates past `maxDecodedBytes`;
 * - records nested deeper than `Telemetry.maxNestingDepth` are rejected one by one by the stage
 *   itself (with a reason), so a `[[[[…]]]]` cannot take valid records down with it.
 */
import { gunzip } from "node:zlib"
import { Cause, Data, Effect, Result } from "effect"
import * as ApiKeys from "./ApiKeys.js"
import type * as FallbackQueue from "./FallbackQueue.js"
import type * as RecordStream from "./RecordStream.js"
import * as Collect from "./stages/collect.js"

// ---- limits -----------------------------------------------------------------------------------

/**
 * Lambda's synchronous invocation payload (`Invoke`, and so API Gateway and function URLs):
 * 6 MB, counted here as 6,000,000 bytes to stay clear of the MB/MiB question. It is the binding
 * limit: API Gateway's HTTP API takes payloads up to 10 MB.
 */
export const lambdaSyncPayloadBytes = 6_000_000
/** API Gateway HTTP API's largest payload: 10 MB. */
export const httpApiPayloadBytes = 10 * 1024 * 1024
/** Room in the invocation event for everything but the body: headers (10,240 bytes at most) and the request context. */
export const eventOverheadBytes = 64 * 1024

/**
 * 4 MiB raw: the event carries a binary body (gzip) base64-encoded, 4/3 its size, so
 * 4 MiB → 5,592,408 bytes, plus `eventOverheadBytes`, stays under `lambdaSyncPayloadBytes`.
 */
export const defaultMaxBodyBytes = 4 * 1024 * 1024
/**
 * 10 MiB once decompressed: a gzip body may carry what the HTTP API would carry uncompressed
 * (`httpApiPayloadBytes`) and no more, which also bounds a zip bomb's cost in memory.
 */
export const defaultMaxDecodedBytes = httpApiPayloadBytes

// ---- request and response -----------------------------------------------------------------------

export type HeaderValue = string | ReadonlyArray<string> | undefined

/** The body is longer than the limit the caller asked for. */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

/** The body could not be read (the client went away, the connection broke). */
export class BodyUnreadable extends Data.TaggedError("BodyUnreadable")<{ readonly message: string }> {}

/** Reads a streamed body, failing with `BodyTooLarge` as soon as more than `limit` bytes arrived. */
export type BodyReader = (limit: number) => Effect.Effect<Uint8Array, BodyTooLarge | BodyUnreadable>

export interface Request {
  /** Any case (`event.requestContext.http.method`). */
  readonly method: string
  /** Path, with or without a query string (`event.rawPath`, or Node's `url`). */
  readonly path: string
  /** Header names in any case; a repeated header as an array or one comma-joined string (`event.headers`). */
  readonly headers: Readonly<Record<string, HeaderValue>>
  /**
   * The body: whole, as a string (`event.body`; absent when none was sent) or bytes, or a reader
   * for a body still arriving (a socket), which the contract stops at its limit.
   */
  readonly body?: string | Uint8Array | BodyReader | undefined
  /** The string `body` is base64 (`event.isBase64Encoded`). */
  readonly isBase64Encoded?: boolean | undefined
}

export type ErrorCode =
  | "NotFound"
  | "MethodNotAllowed"
  | "OriginNotAllowed"
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
  | "KeyStoreUnavailable"
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

export interface Response {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>
  /** Serialize as JSON; absent only on a preflight's 204. */
  readonly body: ResponseBody | undefined
}

/** What the collect stage was given and what it answered, for callers that keep figures. */
export interface Collected {
  readonly tenant: ApiKeys.Tenant
  readonly records: ReadonlyArray<unknown>
  readonly result: Collect.CollectResult
}

export interface Options {
  /** Largest body read off the wire, in bytes. @default defaultMaxBodyBytes (4 MiB) */
  readonly maxBodyBytes?: number
  /** Largest body after gzip decompression, in bytes. @default defaultMaxDecodedBytes (10 MiB) */
  readonly maxDecodedBytes?: number
  /** `Retry-After` of a 503 (no taker for the records, or the key store unreadable), in seconds. @default 5 */
  readonly retryAfterSeconds?: number
  /**
   * Origins browsers may send telemetry from: exact origins (`https://app.example.com`), an
   * origin with any port (`http://localhost:*`), or `*` for any. @default [] (no cross-origin requests)
   */
  readonly allowedOrigins?: ReadonlyArray<string>
  readonly collect?: Collect.CollectOptions
  /** Called once for every request that reached the collect stage (the dev ledger counts ids with it). */
  readonly onCollected?: (collected: Collected) => Effect.Effect<void>
}

export const telemetryPath = "/v1/telemetry"
export const healthPath = "/healthz"

// Reasons echo parts of what was sent; a hostile 1 MiB string must not come back at full length.
const maxReasonLength = 500

const jsonHeaders = { "content-type": "application/json; charset=utf-8" } as const

const error = (
  status: number,
  code: ErrorCode,
  message: string,
  headers: Readonly<Record<string, string>> = {}
): Response => ({
  status,
  headers: { ...jsonHeaders, ...headers },
  body: { error: { code, message } }
})

/** Header names lower-cased, each value one string (a repeated header comma-joined, as API Gateway sends it). */
export const normalizeHeaders = (
  headers: Readonly<Record<string, HeaderValue>>
): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const key = name.toLowerCase()
    const joined = typeof value === "string" ? value : value.join(", ")
    out[key] = out[key] === undefined ? joined : `${out[key]}, ${joined}`
  }
  return out
}

const pathOf = (path: string): string => {
  const query = path.indexOf("?")
  return query === -1 ? path : path.slice(0, query)
}

// ---- CORS ---------------------------------------------------------------------------------------

const corsAllowHeaders = "content-type, content-encoding, x-api-key"

/** Whether `origin` matches one of `allowed` (exact, `scheme://host:*` for any port, or `*`). */
export const isOriginAllowed = (origin: string, allowed: ReadonlyArray<string>): boolean =>
  allowed.some((pattern) => {
    if (pattern === "*" || pattern === origin) return true
    if (!pattern.endsWith(":*")) return false
    const prefix = pattern.slice(0, -1)
    return origin.startsWith(prefix) && /^\d{1,5}$/.test(origin.slice(prefix.length))
  })

/** The CORS headers of an answer to a request carrying `origin`; none when the origin is not allowed. */
const corsHeaders = (origin: string | undefined, allowed: ReadonlyArray<string>): Record<string, string> =>
  origin !== undefined && isOriginAllowed(origin, allowed)
    ? {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": "retry-after",
        vary: "origin"
      }
    : allowed.length > 0
      ? { vary: "origin" }
      : {}

const preflight = (origin: string, allowed: ReadonlyArray<string>): Response =>
  isOriginAllowed(origin, allowed)
    ? {
        status: 204,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "POST",
          "access-control-allow-headers": corsAllowHeaders,
          "access-control-max-age": "600",
          vary: "origin"
        },
        body: undefined
      }
    : error(
        403,
        "OriginNotAllowed",
        `browsers may not send telemetry from ${truncate(origin)}: it is not one of the collector's allowed origins`,
        { vary: "origin" }
      )

// ---- handling -----------------------------------------------------------------------------------

type Services = ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue

/** Answers one request. Never fails: every outcome, a defect included, is a response. */
export const handle = (request: Request, options: Options = {}): Effect.Effect<Response, never, Services> => {
  const path = pathOf(request.path)
  const method = request.method.toUpperCase()
  const headers = normalizeHeaders(request.headers)
  if (path === healthPath) {
    return Effect.succeed(
      method === "GET" || method === "HEAD"
        ? { status: 200, headers: jsonHeaders, body: { ok: true } }
        : error(405, "MethodNotAllowed", `${healthPath} accepts GET`, { allow: "GET, HEAD" })
    )
  }
  if (path !== telemetryPath)
    return Effect.succeed(error(404, "NotFound", `no route for ${path.slice(0, 200)}`))
  const allowed = options.allowedOrigins ?? []
  const origin = headers.origin
  if (method === "OPTIONS" && origin !== undefined && headers["access-control-request-method"] !== undefined)
    return Effect.succeed(preflight(origin, allowed))
  const cors = corsHeaders(origin, allowed)
  const withCors = (response: Response): Response =>
    Object.keys(cors).length === 0 ? response : { ...response, headers: { ...response.headers, ...cors } }
  if (method !== "POST") {
    return Effect.succeed(
      withCors(
        error(
          405,
          "MethodNotAllowed",
          method === "OPTIONS"
            ? `${telemetryPath} answers OPTIONS only as a CORS preflight (with Origin and Access-Control-Request-Method); send records with POST`
            : `${telemetryPath} accepts POST`,
          { allow: "POST, OPTIONS" }
        )
      )
    )
  }
  return collectRequest(request, headers, options).pipe(
    Effect.catchCause((cause) =>
      // An interrupted request is one whose client went away: nobody reads this answer.
      Cause.hasInterruptsOnly(cause)
        ? Effect.succeed(error(400, "UnreadableBody", "request aborted"))
        : Effect.as(
            Effect.logError("collector defect", cause),
            error(500, "InternalError", "the collector failed; the records were not accepted")
          )
    ),
    Effect.map(withCors)
  )
}

/** A failed step of a request: the response that says why. */
class Refused extends Data.TaggedError("Refused")<{ readonly response: Response }> {}

const refuse = (
  status: number,
  code: ErrorCode,
  message: string,
  headers?: Readonly<Record<string, string>>
) => Effect.fail(new Refused({ response: error(status, code, message, headers) }))

const collectRequest = Effect.fn("CollectorHttp.collect")(
  function* (request: Request, headers: Readonly<Record<string, string>>, options: Options) {
    const authorized = yield* Effect.result((yield* ApiKeys.ApiKeys).authorize(headers["x-api-key"]))
    if (Result.isFailure(authorized)) return refusedKey(authorized.failure, options)
    const body = yield* readJson(request, headers, options)
    const outcome = yield* Effect.result(Collect.collectFor(authorized.success, body, options.collect))
    if (Result.isFailure(outcome)) return error(400, "InvalidBody", outcome.failure.reason)
    const result = outcome.success
    if (options.onCollected !== undefined)
      yield* options.onCollected({
        tenant: authorized.success,
        records: Array.isArray(body) ? body : [],
        result
      })
    return answer(result, options)
  },
  Effect.catchTag("Refused", (refused) => Effect.succeed(refused.response))
)

/** The body as JSON, checked step by step: media type, coding, size, gzip, UTF-8, syntax. */
const readJson = Effect.fnUntraced(function* (
  request: Request,
  headers: Readonly<Record<string, string>>,
  options: Options
) {
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes
  const maxDecodedBytes = options.maxDecodedBytes ?? defaultMaxDecodedBytes
  const contentType = headers["content-type"]
  if (!isJsonMediaType(contentType)) {
    return yield* refuse(
      415,
      "UnsupportedMediaType",
      `content-type must be application/json (UTF-8), got ${contentType === undefined ? "none" : JSON.stringify(contentType.slice(0, 100))}`
    )
  }
  const encoding = contentEncoding(headers["content-encoding"])
  if (encoding === undefined) {
    return yield* refuse(415, "UnsupportedContentEncoding", "content-encoding must be gzip or absent", {
      "accept-encoding": "gzip"
    })
  }
  // Refuse a declared oversize body without reading a byte of it.
  const declaredLength = Number(headers["content-length"])
  if (Number.isFinite(declaredLength) && declaredLength > maxBodyBytes)
    return yield* tooLarge(maxBodyBytes, "raw")

  const raw = yield* bodyBytes(request, maxBodyBytes).pipe(
    Effect.catchTags({
      BodyTooLarge: () => tooLarge(maxBodyBytes, "raw"),
      BodyUnreadable: (e) => refuse(400, "UnreadableBody", `the body could not be read: ${e.message}`)
    })
  )
  if (raw.byteLength > maxBodyBytes) return yield* tooLarge(maxBodyBytes, "raw")
  if (encoding === "identity" && raw[0] === 0x1f && raw[1] === 0x8b) {
    return yield* refuse(
      400,
      "InvalidJson",
      "the body is gzip-compressed but was sent without Content-Encoding: gzip; add that header"
    )
  }
  const bytes = encoding === "gzip" ? yield* inflate(raw, maxDecodedBytes) : raw
  return yield* parseJson(bytes)
})

const bodyBytes = (
  request: Request,
  limit: number
): Effect.Effect<Uint8Array, BodyTooLarge | BodyUnreadable> => {
  const body = request.body
  if (typeof body === "function") return body(limit)
  if (body === undefined) return Effect.succeed(new Uint8Array(0))
  if (body instanceof Uint8Array) return Effect.succeed(body)
  return Effect.succeed(
    request.isBase64Encoded === true ? Buffer.from(body, "base64") : Buffer.from(body, "utf8")
  )
}

const parseJson = (bytes: Uint8Array): Effect.Effect<unknown, Refused> => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return refuse(400, "InvalidJson", "the body is not valid UTF-8")
  }
  try {
    return Effect.succeed(JSON.parse(text))
  } catch (e) {
    return refuse(
      400,
      "InvalidJson",
      `the body is not JSON: ${truncate(e instanceof Error ? e.message : String(e))}`
    )
  }
}

/** 202 when anything was accepted; else 503 when valid records found no taker, else 400. */
const answer = (result: Collect.CollectResult, options: Options): Response => {
  const rejected = result.rejected.map((r) => ({ index: r.index, reason: truncate(r.reason) }))
  const unavailable = result.unavailable.map((r) => ({ index: r.index, reason: truncate(r.reason) }))
  if (result.accepted > 0) {
    return { status: 202, headers: jsonHeaders, body: { accepted: result.accepted, rejected, unavailable } }
  }
  if (unavailable.length > 0) {
    const retryAfter = options.retryAfterSeconds ?? 5
    return {
      status: 503,
      headers: { ...jsonHeaders, "retry-after": String(retryAfter) },
      body: {
        error: {
          code: "Unavailable",
          message: `neither the stream nor the fallback queue took the records; send them again in ${retryAfter} s`
        },
        accepted: 0,
        rejected,
        unavailable
      }
    }
  }
  return {
    status: 400,
    headers: jsonHeaders,
    body: {
      error: { code: "NoValidRecords", message: `none of the ${rejected.length} records is valid` },
      accepted: 0,
      rejected
    }
  }
}

/**
 * 401 for a key judged and refused; 503 when it could not be judged. The store's reason (which may
 * name a secret and an entry) is the store's to log, never sent to the client.
 */
const refusedKey = (e: ApiKeys.AuthorizeError, options: Options): Response => {
  if (e._tag === "Unauthorized")
    return error(401, e.reason === "MissingKey" ? "MissingApiKey" : "UnknownApiKey", e.message)
  const retryAfter = options.retryAfterSeconds ?? 5
  return error(
    503,
    "KeyStoreUnavailable",
    `the collector cannot check API keys right now; nothing was read or accepted: send the request again in ${retryAfter} s`,
    { "retry-after": String(retryAfter) }
  )
}

const mib = (bytes: number) => (bytes % (1024 * 1024) === 0 ? ` (${bytes / (1024 * 1024)} MiB)` : "")

/** A 413 that says which limit and, for the deployment's own, why it is what it is. */
const tooLarge = (limit: number, what: "raw" | "decompressed") => {
  const why =
    what === "raw"
      ? limit === defaultMaxBodyBytes
        ? ": base64-encoded (4/3 its size), a body must fit Lambda's 6 MB synchronous invocation payload"
        : ""
      : limit === defaultMaxDecodedBytes
        ? ": a gzip body may carry what API Gateway's HTTP API carries uncompressed, 10 MB"
        : ""
  const subject = what === "raw" ? "the body is over" : "once decompressed, the body is over"
  return refuse(413, "PayloadTooLarge", `${subject} ${limit} bytes${mib(limit)}, the collector's limit${why}`)
}

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

/** Gunzips with the output capped: zlib stops at `limit` bytes instead of inflating a bomb. */
const inflate = (bytes: Uint8Array, limit: number): Effect.Effect<Uint8Array, Refused> =>
  Effect.callback<Uint8Array, Refused>((resume) => {
    gunzip(bytes, { maxOutputLength: limit }, (e, out) => {
      if (e === null) resume(Effect.succeed(out))
      else if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
        resume(tooLarge(limit, "decompressed"))
      else resume(refuse(400, "InvalidGzip", `the body is not valid gzip: ${truncate(e.message)}`))
    })
  })
