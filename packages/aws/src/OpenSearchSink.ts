/**
 * `DocumentSink` on OpenSearch `_bulk` (docs/aws-behaviour.md §6), through `OpenSearchClient`.
 *
 * Guarantees:
 * - one action per document, into the index its `IndexLayout` gives it (daily by the record's
 *   timestamp, by default) and keyed by the document id as `_id`, so a replay rewrites the same
 *   document instead of adding one; `write` answers once per document, in order.
 * - the layout's index template is put (`PUT _index_template`, which replaces it as it is: the
 *   same template put again changes nothing) before the sink's first write, once per sink; a write
 *   whose template could not be put fails whole, and the next write tries again. `manageTemplate:
 *   false` leaves templates to the user's own tooling.
 * - bodies are split so that no request carries more than `maxBulkBytes` of NDJSON (5 MiB by
 *   default, well under the 10 MiB payload limit of the smallest domains); a request the domain
 *   still refuses with 413 is split in halves and retried, down to a single document, which is then
 *   `Rejected` (it can never fit).
 * - per item: 2xx is `Written`, and so is 409 — a `create` refused because the id exists, or an
 *   older external version, means a replay already wrote it; 429 (`es_rejected_execution_exception`,
 *   `circuit_breaking_exception`), 5xx and 403 `cluster_block_exception` (read-only on a full disk)
 *   are `Retryable`; any other 4xx (mapping errors) is `Rejected`. A document whose body cannot be
 *   serialized is `Rejected` without being sent.
 * - whole-request failures are `DocumentSinkError`: 429 → `Throttled`; 5xx, network and timeouts
 *   → `Unavailable`; 401/403 and credential failures → `AccessDenied`; other 4xx → `InvalidRequest`.
 *   A write split over several requests fails whole when any request does; writes are idempotent,
 *   so the caller re-writing the documents of requests that did land is harmless.
 */
import { DocumentSink } from "@spillway/core"
import { Config, Effect, Layer, Schema } from "effect"
import * as IndexLayout from "./IndexLayout.js"
import { OpenSearchClient, type OpenSearchRequestError } from "./OpenSearchClient.js"

export interface Options {
  /** Where documents go: a layout, or the options of one. @default `IndexLayout.make()`: daily indices behind `telemetry` */
  readonly layout?: IndexLayout.Layout | IndexLayout.Options
  /** Put the layout's index template before the first write. @default true */
  readonly manageTemplate?: boolean
  /** Names the sink in metrics, logs and errors. @default "opensearch" */
  readonly name?: string
  /** `index` creates or replaces; `create` refuses an existing id with 409 (counted as written). @default "index" */
  readonly action?: "index" | "create"
  /** NDJSON bytes per `_bulk` request. @default 5242880 (5 MiB) */
  readonly maxBulkBytes?: number
}

export const defaultMaxBulkBytes = 5 * 1024 * 1024

interface BulkItemResult {
  readonly _id?: string
  readonly status?: number
  readonly error?: { readonly type?: string; readonly reason?: string }
}

/** How one `_bulk` item result reads as a write outcome. */
export const itemOutcome = (result: BulkItemResult): DocumentSink.WriteOutcome => {
  const status = result.status ?? 0
  if ((status >= 200 && status < 300) || status === 409) return DocumentSink.written
  const type = result.error?.type ?? "error"
  const reason = `${status} ${type}: ${result.error?.reason ?? "no reason given"}`
  if (status === 429 || status >= 500 || (status === 403 && type === "cluster_block_exception")) {
    return { _tag: "Retryable", reason }
  }
  return { _tag: "Rejected", reason }
}

interface Line {
  /** Position of the document in the write. */
  readonly position: number
  readonly id: string
  readonly text: string
  readonly bytes: number
}

/** Groups lines into requests of at most `maxBytes`, in order; a line over the limit goes alone. */
export const groupByBytes = <A extends { readonly bytes: number }>(
  lines: ReadonlyArray<A>,
  maxBytes: number
): Array<Array<A>> => {
  const groups: Array<Array<A>> = []
  let current: Array<A> = []
  let bytes = 0
  for (const line of lines) {
    if (current.length > 0 && bytes + line.bytes > maxBytes) {
      groups.push(current)
      current = []
      bytes = 0
    }
    current.push(line)
    bytes += line.bytes
  }
  if (current.length > 0) groups.push(current)
  return groups
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

/** The domain refused the request's size (413): nothing in it was indexed. */
interface TooLarge {
  readonly _tag: "TooLarge"
  readonly message: string
}

type Answer = { readonly _tag: "Items"; readonly items: ReadonlyArray<BulkItemResult> } | TooLarge

export const make = (options: Options): Effect.Effect<DocumentSink.Service, never, OpenSearchClient> =>
  Effect.gen(function* () {
    const client = yield* OpenSearchClient
    const name = options.name ?? "opensearch"
    const action = options.action ?? "index"
    const maxBulkBytes = options.maxBulkBytes ?? defaultMaxBulkBytes
    const layout =
      options.layout !== undefined && "indexFor" in options.layout
        ? options.layout
        : IndexLayout.make(options.layout)
    const manageTemplate = options.manageTemplate ?? true

    const failure = (reason: DocumentSink.ErrorReason, message: string, cause?: unknown) =>
      new DocumentSink.DocumentSinkError({
        sink: name,
        reason,
        message,
        ...(cause === undefined ? {} : { cause })
      })

    const fromClient = (error: OpenSearchRequestError): DocumentSink.DocumentSinkError | TooLarge => {
      const status = error.statusCode
      if (error.reason === "Status" && status !== undefined) {
        const detail = error.message.slice(0, 400)
        if (status === 413) return { _tag: "TooLarge", message: detail }
        if (status === 429) return failure("Throttled", detail, error)
        // A read-only block (a full disk's flood stage, an operator's block) lifts by itself or by hand.
        if (status === 403 && error.errorType === "cluster_block_exception") {
          return failure("Unavailable", detail, error)
        }
        if (status === 401 || status === 403) return failure("AccessDenied", detail, error)
        if (status >= 500) return failure("Unavailable", detail, error)
        return failure("InvalidRequest", detail, error)
      }
      if (error.reason === "Credentials") return failure("AccessDenied", error.message, error)
      return failure("Unavailable", error.message, error)
    }

    const request = (group: ReadonlyArray<Line>): Effect.Effect<Answer, DocumentSink.DocumentSinkError> =>
      client
        .request({ method: "POST", path: "/_bulk", ndjson: group.map((line) => line.text).join("") })
        .pipe(
          Effect.mapError(fromClient),
          Effect.flatMap((response) => {
            const items = field(response.body, "items")
            if (!Array.isArray(items) || items.length !== group.length) {
              return Effect.fail(
                failure(
                  "Unavailable",
                  `_bulk answered ${Array.isArray(items) ? items.length : "no"} items for ${group.length} actions`
                )
              )
            }
            return Effect.succeed<Answer>({
              _tag: "Items",
              items: items.map((item): BulkItemResult => {
                const result = field(item, action) ?? Object.values((item ?? {}) as object)[0]
                return (typeof result === "object" && result !== null ? result : {}) as BulkItemResult
              })
            })
          }),
          Effect.catch((error) => (error._tag === "TooLarge" ? Effect.succeed(error) : Effect.fail(error)))
        )

    const bulk = (
      group: ReadonlyArray<Line>,
      outcomes: Array<DocumentSink.WriteOutcome | undefined>
    ): Effect.Effect<void, DocumentSink.DocumentSinkError> =>
      Effect.flatMap(request(group), (answer) => {
        if (answer._tag === "TooLarge") {
          if (group.length === 1) {
            outcomes[group[0]!.position] = {
              _tag: "Rejected",
              reason: `document of ${group[0]!.bytes} bytes is over the domain's request size limit (${answer.message})`
            }
            return Effect.void
          }
          // The domain's limit is below `maxBulkBytes` (10 MiB instance types, a proxy): halve until it fits.
          const half = Math.ceil(group.length / 2)
          return Effect.andThen(bulk(group.slice(0, half), outcomes), bulk(group.slice(half), outcomes))
        }
        for (const [i, line] of group.entries()) {
          const item = answer.items[i]!
          if (item._id !== undefined && item._id !== line.id) {
            return Effect.fail(
              failure("Unavailable", `_bulk answered id ${item._id} where ${line.id} was sent`)
            )
          }
          outcomes[line.position] = itemOutcome(item)
        }
        return Effect.void
      })

    let templatePut = !manageTemplate
    const templateReady: Effect.Effect<void, DocumentSink.DocumentSinkError> = Effect.suspend(() =>
      templatePut
        ? Effect.void
        : client
            .request({
              method: "PUT",
              path: `/_index_template/${encodeURIComponent(layout.templateName)}`,
              body: layout.template
            })
            .pipe(
              Effect.mapError((error) => {
                const answer = fromClient(error)
                return answer._tag === "TooLarge" ? failure("InvalidRequest", answer.message, error) : answer
              }),
              Effect.mapError(
                (error) =>
                  new DocumentSink.DocumentSinkError({
                    ...error,
                    message: `cannot put the index template ${layout.templateName}: ${error.message}`
                  })
              ),
              Effect.tap(() =>
                Effect.sync(() => {
                  templatePut = true
                })
              )
            )
    )

    const write = Effect.fn("OpenSearchSink.write")(function* (
      documents: ReadonlyArray<DocumentSink.Document>
    ) {
      const outcomes: Array<DocumentSink.WriteOutcome | undefined> = documents.map(() => undefined)
      const lines: Array<Line> = []
      for (const [position, document] of documents.entries()) {
        let source: string | undefined
        try {
          source = JSON.stringify(document.body)
        } catch (error) {
          outcomes[position] = { _tag: "Rejected", reason: `document cannot be serialized: ${String(error)}` }
          continue
        }
        if (source === undefined) {
          outcomes[position] = { _tag: "Rejected", reason: "document cannot be serialized" }
          continue
        }
        const target = layout.indexFor(document)
        if (!("index" in target)) {
          outcomes[position] = { _tag: "Rejected", reason: target.reason }
          continue
        }
        const text = `${JSON.stringify({ [action]: { _index: target.index, _id: document.id } })}\n${source}\n`
        lines.push({ position, id: document.id, text, bytes: Buffer.byteLength(text, "utf8") })
      }
      if (lines.length > 0) yield* templateReady
      for (const group of groupByBytes(lines, maxBulkBytes)) yield* bulk(group, outcomes)
      return outcomes.map(
        (outcome): DocumentSink.WriteOutcome =>
          outcome ?? { _tag: "Retryable", reason: "no answer for this document" }
      )
    })

    return DocumentSink.DocumentSink.of({ name, write })
  })

export const layer = (options: Options): Layer.Layer<DocumentSink.DocumentSink, never, OpenSearchClient> =>
  Layer.effect(DocumentSink.DocumentSink, make(options))

const positiveInt = (message: string) => Schema.Int.check(Schema.isGreaterThan(0, { message }))

/**
 * From `Config`: `OPENSEARCH_INDEX` (the layout's alias, default `telemetry`),
 * `OPENSEARCH_INDEX_PERIOD` (`day`, `month` or `none`, default `day`),
 * `OPENSEARCH_TOTAL_FIELDS_LIMIT` (default 1000), `OPENSEARCH_PAYLOAD_MAPPING` (`dynamic` or
 * `flat_object`, default `dynamic`), `OPENSEARCH_MANAGE_TEMPLATE` (default true),
 * `OPENSEARCH_MAX_BULK_BYTES` (default 5 MiB).
 */
export const layerConfig = (
  options: Omit<Options, "layout" | "maxBulkBytes" | "manageTemplate"> = {}
): Layer.Layer<DocumentSink.DocumentSink, Config.ConfigError, OpenSearchClient> =>
  Layer.effect(
    DocumentSink.DocumentSink,
    Effect.flatMap(
      Config.all({
        alias: Config.schema(
          Schema.NonEmptyString.check(
            Schema.isPattern(/^[a-z0-9][a-z0-9._-]{0,199}$/, {
              message: "must be a valid index name: lower-case letters, digits, '.', '_' and '-'"
            })
          ),
          "OPENSEARCH_INDEX"
        ).pipe(Config.withDefault("telemetry")),
        period: Config.Literals(["day", "month", "none"], "OPENSEARCH_INDEX_PERIOD").pipe(
          Config.withDefault("day" as const)
        ),
        totalFieldsLimit: Config.schema(
          positiveInt("must be a positive whole number of fields").check(
            Schema.isGreaterThanOrEqualTo(10, { message: "must be at least 10" })
          ),
          "OPENSEARCH_TOTAL_FIELDS_LIMIT"
        ).pipe(Config.withDefault(1000)),
        payloadMapping: Config.Literals(["dynamic", "flat_object"], "OPENSEARCH_PAYLOAD_MAPPING").pipe(
          Config.withDefault("dynamic" as const)
        ),
        manageTemplate: Config.Boolean("OPENSEARCH_MANAGE_TEMPLATE").pipe(Config.withDefault(true)),
        maxBulkBytes: Config.schema(
          positiveInt("must be a positive number of bytes"),
          "OPENSEARCH_MAX_BULK_BYTES"
        ).pipe(Config.withDefault(defaultMaxBulkBytes))
      }),
      ({ alias, period, totalFieldsLimit, payloadMapping, manageTemplate, maxBulkBytes }) =>
        make({
          ...options,
          layout: IndexLayout.make({ alias, period, totalFieldsLimit, payloadMapping }),
          manageTemplate,
          maxBulkBytes
        })
    )
  )
