/**
 * What the recovery commands ask of an index besides writing documents (the sink's job) and
 * snapshots (`OpenSearchSnapshots`' job): which ids it holds, how many documents it holds per hour
 * of receipt, and the mark `spillway restore` leaves on indices it restored. Two implementations
 * of one interface: OpenSearch here, the in-memory index in `Rehearsal.ts`.
 *
 * Every OpenSearch request goes through `send`, one function over `OpenSearchClient.request`:
 * `{ method, path, querystring, body }` in, `{ statusCode, body }` out, whatever the status. Reads go to
 * the alias (every index of the layout joins it) with `ignore_unavailable`, so an alias that does
 * not exist yet (every index lost) reads as empty, not as an error.
 */
import type { OpenSearchClient } from "@spillway/aws"
import { Data, Effect } from "effect"

/** OpenSearch did not answer, or answered with an error, naming the request. */
export class IndexError extends Data.TaggedError("IndexError")<{
  readonly message: string
  /** Whether trying again later can help (the node was unreachable, 429, 5xx). */
  readonly retryable: boolean
}> {}

export interface Response {
  readonly statusCode: number
  readonly body: unknown
}

export interface Request {
  readonly method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD"
  readonly path: string
  readonly querystring?: Readonly<Record<string, string | number | boolean>>
  readonly body?: unknown
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

/** The one place the CLI talks to OpenSearch itself: any status is an answer, only no answer fails. */
export const send = (
  client: OpenSearchClient.Service,
  request: Request
): Effect.Effect<Response, IndexError> =>
  client
    .request({
      method: request.method,
      path: request.path,
      ...(request.querystring === undefined ? {} : { querystring: request.querystring }),
      ...(request.body === undefined ? {} : { body: request.body }),
      timeoutMillis: 120_000
    })
    .pipe(
      Effect.map((response): Response => ({ statusCode: response.statusCode, body: response.body })),
      Effect.catchTag("OpenSearchRequestError", (error) =>
        error.reason === "Status" && error.statusCode !== undefined
          ? Effect.succeed({ statusCode: error.statusCode, body: error.body })
          : Effect.fail(
              new IndexError({
                message: `OpenSearch did not answer: ${error.message}`,
                retryable: error.reason !== "Credentials"
              })
            )
      )
    )

const describe = (response: Response): string => {
  const error = field(response.body, "error")
  const reason = typeof error === "string" ? error : (field(error, "reason") ?? field(error, "type") ?? "")
  return `${response.statusCode}${reason === "" ? "" : ` ${String(reason).slice(0, 300)}`}`
}

/** The body of a 2xx answer; any other status is an `IndexError`. */
const ok = (request: Request, response: Response): Effect.Effect<unknown, IndexError> =>
  response.statusCode >= 200 && response.statusCode < 300
    ? Effect.succeed(response.body)
    : Effect.fail(
        new IndexError({
          message: `${request.method} ${request.path}: ${describe(response)}`,
          retryable: response.statusCode === 429 || response.statusCode >= 500
        })
      )

const call = (client: OpenSearchClient.Service, request: Request) =>
  Effect.flatMap(send(client, request), (response) => ok(request, response))

const lenient = { ignore_unavailable: true, allow_no_indices: true } as const

/** The mark `spillway restore` leaves in the `_meta` of each index it restored from a snapshot. */
export interface RestoreMark {
  readonly repository: string
  readonly snapshot: string
  /** The index's own UUID when it was restored: a later restore (or a new index) has another one. */
  readonly indexUuid: string
  /** Epoch milliseconds. */
  readonly restoredAt: number
}

/** An index as the recovery commands read it. */
export interface Probe {
  /** The alias (or index name) read. */
  readonly alias: string
  /** Makes every acknowledged write searchable. */
  readonly refresh: Effect.Effect<void, IndexError>
  /** The ids among `ids` that the index holds. */
  readonly holding: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, IndexError>
  /** Documents per UTC hour (start, epoch ms) of `receivedAt`, from `from` on; hours with none are absent. */
  readonly countsPerHour: (from: number) => Effect.Effect<ReadonlyMap<number, number>, IndexError>
  /** The restore mark of each of `indices` that carries one, and is still the index it was put on. */
  readonly restoreMarks: (
    indices: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, RestoreMark>, IndexError>
  /** Marks `indices` as restored from `repository/snapshot` now. */
  readonly markRestored: (
    indices: ReadonlyArray<string>,
    mark: Omit<RestoreMark, "indexUuid">
  ) => Effect.Effect<void, IndexError>
}

const segment = encodeURIComponent

export const make = (client: OpenSearchClient.Service, alias: string): Probe => {
  const refresh = call(client, {
    method: "POST",
    path: `/${segment(alias)}/_refresh`,
    querystring: lenient
  }).pipe(Effect.asVoid)

  const holdingPage = (page: ReadonlyArray<string>) =>
    call(client, {
      method: "POST",
      path: `/${segment(alias)}/_search`,
      querystring: lenient,
      // One document per id is expected; room for more keeps a page from pushing any out.
      body: { size: Math.min(2 * page.length, 10_000), _source: false, query: { ids: { values: page } } }
    }).pipe(
      Effect.map((body) => {
        const hits = field(field(body, "hits"), "hits")
        return Array.isArray(hits) ? hits.map((hit) => String(field(hit, "_id"))) : []
      })
    )

  const uuids = (indices: ReadonlyArray<string>) =>
    call(client, {
      method: "GET",
      path: `/${indices.map(segment).join(",")}/_settings/index.uuid`,
      querystring: { ignore_unavailable: true }
    }).pipe(
      Effect.map((body) => {
        const result = new Map<string, string>()
        for (const name of indices) {
          const uuid = field(field(field(field(body, name), "settings"), "index"), "uuid")
          if (typeof uuid === "string") result.set(name, uuid)
        }
        return result
      })
    )

  const metas = (indices: ReadonlyArray<string>) =>
    call(client, {
      method: "GET",
      path: `/${indices.map(segment).join(",")}/_mapping`,
      querystring: { ignore_unavailable: true }
    }).pipe(
      Effect.map((body) => {
        const result = new Map<string, Record<string, unknown>>()
        for (const name of indices) {
          const meta = field(field(field(body, name), "mappings"), "_meta")
          result.set(name, typeof meta === "object" && meta !== null ? { ...(meta as object) } : {})
        }
        return result
      })
    )

  return {
    alias,
    refresh,
    holding: (ids) =>
      Effect.gen(function* () {
        yield* refresh
        const pages: Array<ReadonlyArray<string>> = []
        for (let i = 0; i < ids.length; i += 1000) pages.push(ids.slice(i, i + 1000))
        const found = yield* Effect.forEach(pages, holdingPage, { concurrency: 4 })
        return new Set(found.flat())
      }),
    countsPerHour: (from) =>
      Effect.gen(function* () {
        yield* refresh
        const body = yield* call(client, {
          method: "POST",
          path: `/${segment(alias)}/_search`,
          querystring: lenient,
          body: {
            size: 0,
            query: { range: { receivedAt: { gte: from, format: "epoch_millis" } } },
            aggs: {
              hours: { date_histogram: { field: "receivedAt", fixed_interval: "1h", min_doc_count: 1 } }
            }
          }
        })
        const buckets = field(field(field(body, "aggregations"), "hours"), "buckets")
        const counts = new Map<number, number>()
        if (Array.isArray(buckets)) {
          for (const bucket of buckets)
            counts.set(Number(field(bucket, "key")), Number(field(bucket, "doc_count")))
        }
        return counts
      }),
    restoreMarks: (indices) =>
      indices.length === 0
        ? Effect.succeed(new Map())
        : Effect.gen(function* () {
            const [ids, meta] = yield* Effect.all([uuids(indices), metas(indices)])
            const marks = new Map<string, RestoreMark>()
            for (const name of indices) {
              const mark = field(meta.get(name), "spillway_restore") as RestoreMark | undefined
              if (mark !== undefined && mark.indexUuid === ids.get(name)) marks.set(name, mark)
            }
            return marks
          }),
    markRestored: (indices, mark) =>
      indices.length === 0
        ? Effect.void
        : Effect.gen(function* () {
            const [ids, meta] = yield* Effect.all([uuids(indices), metas(indices)])
            for (const name of indices) {
              const indexUuid = ids.get(name)
              if (indexUuid === undefined) continue
              // `_meta` is replaced whole by a mapping update: keep what was there.
              yield* call(client, {
                method: "PUT",
                path: `/${segment(name)}/_mapping`,
                body: { _meta: { ...meta.get(name), spillway_restore: { ...mark, indexUuid } } }
              })
            }
          })
  }
}
