/**
 * What `spillway dev` reads back from the index, whichever backend holds it: how many documents
 * this run wrote (the drain's sign of progress), and which accepted ids are really there (the
 * summary's "indexed" and "lost"). The summary's claim "0 lost" rests on `holding`: every id is
 * looked up, not only counted.
 *
 * - memory: `MemoryIndex`, fresh per run, read directly.
 * - OpenSearch: searches on the layout's alias, which every daily index joins. A node may hold
 *   documents of earlier runs under the same ids (`--opensearch-url` with the same alias; demo ids
 *   restart at `demo-0`), so both reads keep to documents received since the run started
 *   (`receivedAt`, which every write of this run sets; a rewrite of an older id in the same daily
 *   index replaces it). Documents become searchable at a refresh: `holding` refreshes the alias
 *   before it looks, `count` at most once a second (a refresh per 100 ms poll would make the
 *   node write tiny segments while it indexes) and answers its last figure in between.
 */
import type { OpenSearchClient } from "@spillway/aws"
import type { MemoryIndex } from "@spillway/memory"
import { Clock, Data, Effect } from "effect"

export interface IndexReader {
  /** Documents this run wrote that a search sees now. */
  readonly count: Effect.Effect<number, IndexReadError>
  /** The ids among `ids` that the index holds as this run wrote them. */
  readonly holding: (ids: Iterable<string>) => Effect.Effect<ReadonlySet<string>, IndexReadError>
}

/** The index did not answer a read (the node is down, or refused the query). */
export class IndexReadError extends Data.TaggedError("IndexReadError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export const fromMemory = (index: MemoryIndex.Handle): IndexReader => ({
  count: index.count,
  holding: (ids) =>
    Effect.map(index.documents, (documents) => {
      const stored = new Set(documents.map((d) => d.id))
      return new Set([...ids].filter((id) => stored.has(id)))
    })
})

export interface OpenSearchOptions {
  readonly alias: string
  /** Epoch milliseconds the run started at: documents received earlier belong to another run. */
  readonly since: number
  /** Ids looked up per search. @default 1000 */
  readonly pageSize?: number
  /** Least time between two refreshes by `count`. @default 1000 ms */
  readonly refreshEveryMillis?: number
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

export const fromOpenSearch = (
  client: OpenSearchClient.OpenSearchClient["Service"],
  options: OpenSearchOptions
): IndexReader => {
  const { alias, since } = options
  const pageSize = options.pageSize ?? 1000
  const refreshEvery = options.refreshEveryMillis ?? 1000
  // Before the first write, the alias does not exist yet: that reads as an empty index.
  const lenient = { ignore_unavailable: true, allow_no_indices: true } as const
  const thisRun = { range: { receivedAt: { gte: since, format: "epoch_millis" } } }

  const call = (what: string, request: OpenSearchClient.Request) =>
    client.request(request).pipe(
      Effect.map((response) => response.body),
      Effect.mapError(
        (cause) =>
          new IndexReadError({
            message: `OpenSearch ${what} on ${alias} failed: ${cause.message.slice(0, 300)}`,
            cause
          })
      )
    )
  const path = (endpoint: string) => `/${encodeURIComponent(alias)}/${endpoint}`

  const refresh = call("refresh", { method: "POST", path: path("_refresh"), querystring: lenient })

  let last: { readonly at: number; readonly count: number } | undefined
  const count = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (last !== undefined && now - last.at < refreshEvery) return last.count
    yield* refresh
    const answer = yield* call("_count", {
      method: "POST",
      path: path("_count"),
      querystring: lenient,
      body: { query: { bool: { filter: [thisRun] } } }
    })
    const counted = Number(field(answer, "count") ?? 0)
    last = { at: now, count: counted }
    return counted
  })

  const holdingPage = (page: ReadonlyArray<string>) =>
    call("_search by id", {
      method: "POST",
      path: path("_search"),
      querystring: lenient,
      body: {
        // One document per id is expected; room for more keeps a page from pushing any out.
        size: Math.min(2 * page.length, 10_000),
        _source: false,
        query: { bool: { filter: [{ ids: { values: [...page] } }, thisRun] } }
      }
    }).pipe(
      Effect.map((answer) => {
        const hits = field(field(answer, "hits"), "hits")
        return Array.isArray(hits)
          ? hits.flatMap((hit) => {
              const id = field(hit, "_id")
              return typeof id === "string" ? [id] : []
            })
          : []
      })
    )

  return {
    count,
    holding: (ids) =>
      Effect.gen(function* () {
        const all = [...ids]
        const pages: Array<ReadonlyArray<string>> = []
        for (let i = 0; i < all.length; i += pageSize) pages.push(all.slice(i, i + pageSize))
        yield* refresh
        const found = yield* Effect.forEach(pages, holdingPage, { concurrency: 4 })
        return new Set(found.flat())
      })
  }
}
