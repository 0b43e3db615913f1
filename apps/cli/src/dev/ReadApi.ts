/**
 * `spillway dev`'s read API: what the records posted to the local collector became in the
 * in-memory index, over HTTP, so a user can see a document without a debugger. Transport-neutral
 * like `CollectorHttp` (method and path in, status and JSON out); the collector's Node server
 * routes every path under `prefix` to it when it is given one.
 *
 *   GET /local/documents/{id}    200 { id, version, source }     404 no document with that id
 *   GET /local/search?type=&tenant=&from=&to=&limit=
 *                                200 { total, documents: [{ id, version, source }] }, newest first
 *   400 a bad parameter, named   404 any other path under /local   405 any method but GET (with `Allow`)
 *
 * Guarantees:
 * - local only: it has no authentication and no CORS headers, so it is served only by
 *   `spillway dev` on memory backends (never deployed, absent with `--backend emulators`, whose
 *   users query a real OpenSearch), and a web page cannot read it from a visitor's browser;
 * - `{id}` is one path segment or more, percent-decoded (`%2F` is a `/` inside the id, unicode
 *   ids arrive UTF-8 percent-encoded);
 * - search parameters are decoded with `SearchQuery`: bad input of any kind answers 400 naming
 *   the parameter, never 500; every error body is `{ error: { code, message } }`, as the
 *   collector's are, with `parameter` on a 400;
 * - `total` counts every match, `documents` holds the newest `limit` of them by `timestamp` (an
 *   instant, so `+02:00` and `Z` times order correctly), ties by id.
 */
import { Telemetry } from "@spillway/core"
import type { MemoryIndex } from "@spillway/memory"
import { Effect, Result, Schema, SchemaIssue, SchemaParser, SchemaTransformation } from "effect"

export const prefix = "/local"
export const documentsPath = `${prefix}/documents`
export const searchPath = `${prefix}/search`

export const defaultLimit = 20
export const maxLimit = 1000

// ---- request and response -----------------------------------------------------------------------

export interface Request {
  readonly method: string
  /** Path with its query string, still percent-encoded (Node's `url`). */
  readonly path: string
}

export type ErrorCode = "NotFound" | "DocumentNotFound" | "MethodNotAllowed" | "InvalidParameter"

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly parameter?: string }
}

export interface SearchBody {
  /** Every document that matched, `limit` aside. */
  readonly total: number
  readonly documents: ReadonlyArray<MemoryIndex.StoredDocument>
}

export interface Response {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: MemoryIndex.StoredDocument | SearchBody | ErrorBody
}

/** A query parameter the read API cannot use, and why, in plain words that start with its name. */
export class InvalidParameter extends Schema.TaggedError<InvalidParameter>()("InvalidParameter", {
  parameter: Schema.String,
  message: Schema.String
}) {}

// ---- search parameters ------------------------------------------------------------------------

const parameters = ["type", "tenant", "from", "to", "limit"] as const

/** The largest instant a JavaScript `Date` holds (ECMA-262 §21.4.1.22). */
const maxEpochMillis = 8.64e15

// Not a type guard: a string that fails it is still a string.
const isTimestamp: (value: string) => boolean = Schema.is(Telemetry.Timestamp)

const quoted = (value: string): string => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)

/** Epoch milliseconds of an ISO-8601 instant with a zone or of whole epoch milliseconds; else why not. */
const instantMillis = (value: string): number | string => {
  if (/^\d+$/.test(value)) {
    const millis = Number(value)
    if (millis < Telemetry.minEpochMillis)
      return `must be epoch milliseconds (at least ${Telemetry.minEpochMillis}, March 1973), got ${value}: this looks like epoch seconds, multiply it by 1000`
    return millis <= maxEpochMillis ? millis : `is past the largest date there is, got ${value}`
  }
  if (isTimestamp(value)) return Date.parse(value)
  // URLSearchParams reads a raw `+` as a space, so `+02:00` arrives as ` 02:00`.
  const hint = value.includes(" ") ? " (send a + in the zone as %2B)" : ""
  return `must be an ISO-8601 timestamp with a zone (e.g. 2026-11-24T10:00:00Z) or epoch milliseconds, got ${quoted(value)}${hint}`
}

/** `from` / `to`: an ISO-8601 instant with a zone, or epoch milliseconds, decoded into epoch milliseconds. */
export const Instant = Schema.String.check(
  Schema.makeFilter((value: string) => {
    const millis = instantMillis(value)
    return typeof millis === "number" || millis
  })
).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({
      decode: (value) => instantMillis(value) as number,
      encode: (millis) => new Date(millis).toISOString()
    })
  )
)

export const Limit = Schema.String.check(
  Schema.makeFilter(
    (value: string) =>
      (/^\d{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= maxLimit) ||
      `must be a whole number from 1 to ${maxLimit}, got ${quoted(value)}`
  )
).pipe(
  Schema.decodeTo(Schema.Number, SchemaTransformation.transform({ decode: Number, encode: String })),
  Schema.withDecodingDefaultKey(Effect.succeed(String(defaultLimit)))
)

const Exact = Schema.String.check(Schema.isMinLength(1, { message: "must not be empty" }))

/** The query of `GET /local/search`, each parameter once, as strings; decoded: times in epoch ms, `limit` defaulted. */
export const SearchQuery = Schema.Struct({
  /** The record's `type`, exactly. */
  type: Schema.optionalKey(Exact),
  /** The tenant the API key belongs to, exactly. */
  tenant: Schema.optionalKey(Exact),
  /** Earliest `timestamp`, included. */
  from: Schema.optionalKey(Instant),
  /** Latest `timestamp`, excluded. */
  to: Schema.optionalKey(Instant),
  /** @default 20, at most 1000 */
  limit: Limit
}).check(
  Schema.makeFilter(
    (query) =>
      query.from === undefined ||
      query.to === undefined ||
      query.to > query.from || {
        path: ["to"],
        issue: "must be later than from: the window is from (included) to (excluded)"
      }
  )
)
export type SearchQuery = typeof SearchQuery.Type

const formatter = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) =>
    issue._tag === "UnexpectedKey"
      ? `is not a search parameter: the search takes ${parameters.join(", ")}`
      : SchemaIssue.defaultLeafHook(issue)
})

const decodeSearchQuery = SchemaParser.decodeUnknownResult(SearchQuery, {
  errors: "first",
  onExcessProperty: "error"
})

/** The search parameters of a query string, or the first one that cannot be used. */
export const parseSearchQuery = (query: string): Result.Result<SearchQuery, InvalidParameter> => {
  const params = new URLSearchParams(query)
  const fields: Record<string, string> = {}
  for (const [name, value] of params) {
    if (Object.hasOwn(fields, name))
      return Result.fail(
        new InvalidParameter({ parameter: name, message: `${name} is given more than once: give it once` })
      )
    fields[name] = value
  }
  return Result.mapError(decodeSearchQuery(fields), (issue) => {
    const problem = formatter(issue).issues[0]
    const parameter = String(problem?.path?.[0] ?? "query")
    return new InvalidParameter({
      parameter,
      message: `${parameter} ${problem?.message ?? "cannot be read"}`
    })
  })
}

// ---- answering ----------------------------------------------------------------------------------

/** What the read API needs of the index. */
export type Index = Pick<MemoryIndex.Handle, "get" | "documents">

export interface ReadApi {
  /** Every path equal to it or under it (`/local/…`) is the read API's. */
  readonly prefix: string
  /** Answers one request. Never fails: every outcome is a response. */
  readonly handle: (request: Request) => Effect.Effect<Response>
}

const jsonHeaders = { "content-type": "application/json; charset=utf-8" } as const

const ok = (body: Response["body"]): Response => ({ status: 200, headers: jsonHeaders, body })

const error = (
  status: number,
  code: ErrorCode,
  message: string,
  extra: { readonly headers?: Readonly<Record<string, string>>; readonly parameter?: string } = {}
): Response => ({
  status,
  headers: { ...jsonHeaders, ...extra.headers },
  body: {
    error: { code, message, ...(extra.parameter === undefined ? {} : { parameter: extra.parameter }) }
  }
})

const invalid = (e: InvalidParameter): Response =>
  error(400, "InvalidParameter", e.message, { parameter: e.parameter })

const timeOf = (document: MemoryIndex.StoredDocument): number =>
  typeof document.source.timestamp === "string" ? Date.parse(document.source.timestamp) : Number.NaN

type Match = { readonly time: number; readonly document: MemoryIndex.StoredDocument }

const newestFirst = (a: Match, b: Match): number => {
  if (a.time !== b.time) return b.time - a.time
  return a.document.id < b.document.id ? -1 : a.document.id > b.document.id ? 1 : 0
}

/** The documents matching `query`, newest first (ties by id), and how many matched in all. */
export const search = (
  documents: ReadonlyArray<MemoryIndex.StoredDocument>,
  query: SearchQuery
): SearchBody => {
  const from = query.from ?? Number.NEGATIVE_INFINITY
  const to = query.to ?? Number.POSITIVE_INFINITY
  const matches: Array<Match> = []
  for (const document of documents) {
    if (query.type !== undefined && document.source.type !== query.type) continue
    if (query.tenant !== undefined && document.source.tenant !== query.tenant) continue
    const time = timeOf(document)
    // A document without a readable timestamp matches no window, and sorts last without one.
    if ((query.from !== undefined || query.to !== undefined) && !(time >= from && time < to)) continue
    matches.push({ time: Number.isNaN(time) ? Number.NEGATIVE_INFINITY : time, document })
  }
  matches.sort(newestFirst)
  return { total: matches.length, documents: matches.slice(0, query.limit).map((m) => m.document) }
}

const routes = `GET ${documentsPath}/{id} and GET ${searchPath}`

export const make = (index: Index): ReadApi => {
  const documentById = Effect.fn("ReadApi.document")(function* (encodedId: string) {
    let id: string
    try {
      id = decodeURIComponent(encodedId)
    } catch {
      return invalid(
        new InvalidParameter({
          parameter: "id",
          message: "id is not valid percent-encoding: encode it as encodeURIComponent does (a % as %25)"
        })
      )
    }
    const document = yield* index.get(id)
    return document === undefined
      ? error(
          404,
          "DocumentNotFound",
          `no document with id ${quoted(id)} in the index (a record is indexed a moment after the collector accepts it)`
        )
      : ok(document)
  })

  const searchDocuments = Effect.fn("ReadApi.search")(function* (query: string) {
    const parsed = parseSearchQuery(query)
    if (Result.isFailure(parsed)) return invalid(parsed.failure)
    return ok(search(yield* index.documents, parsed.success))
  })

  const handle = (request: Request): Effect.Effect<Response> => {
    const queryStart = request.path.indexOf("?")
    const path = queryStart === -1 ? request.path : request.path.slice(0, queryStart)
    const query = queryStart === -1 ? "" : request.path.slice(queryStart + 1)
    const encodedId = path.startsWith(`${documentsPath}/`) ? path.slice(documentsPath.length + 1) : ""
    const route = encodedId !== "" ? "document" : path === searchPath ? "search" : undefined
    if (route === undefined)
      return Effect.succeed(
        error(404, "NotFound", `no route for ${path.slice(0, 200)}: the read API has ${routes}`)
      )
    if (request.method.toUpperCase() !== "GET")
      return Effect.succeed(
        error(405, "MethodNotAllowed", `the read API only reads: ${path.slice(0, 200)} accepts GET`, {
          headers: { allow: "GET" }
        })
      )
    return route === "document" ? documentById(encodedId) : searchDocuments(query)
  }

  return { prefix, handle }
}
