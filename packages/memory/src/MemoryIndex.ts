/**
 * An in-memory OpenSearch index with a `_bulk` API, and the `DocumentSink` that writes to it, for
 * tests and local runs (docs/aws-behaviour.md §6).
 *
 * What it guarantees, as OpenSearch does: documents are keyed by `_id`, so writing an id again
 * replaces it (one document, version + 1) and replays never duplicate; `create` on an existing id
 * answers 409; dynamic mapping fixes a field's type on first sight, and a later value that cannot
 * be indexed as that type is refused with 400 naming the field (with OpenSearch's coercions: a
 * number into a text field, `"12"` into a numeric field pass); a request whose NDJSON body is over
 * the size limit is refused whole with 413 and indexes nothing. Items are processed in request
 * order and answered in request order.
 *
 * Faults are injected through the control handle and are deterministic under `TestClock` and a
 * seeded `Random`: a 429 rate, scripted 429 bursts, outage windows (503), dropping the index, and
 * a per-request latency.
 */
import { DocumentSink } from "@spillway/core"
import { Clock, Context, Data, Duration, Effect, Layer, Random } from "effect"

/** Mapping types, named as OpenSearch's dynamic mapping names them (`text` has a `keyword` sub-field). */
export type FieldType = "long" | "float" | "text" | "boolean" | "date" | "object"

export interface Options {
  /** @default "telemetry" */
  readonly indexName?: string
  /** The sink's name in metrics, logs and errors. @default "opensearch" */
  readonly name?: string
  /** HTTP payload limit of the domain (10 MiB on small instance types, 100 MiB on larger). @default 10,485,760 */
  readonly maxRequestBytes?: number
  /** Fraction (0–1) of items answered 429, drawn from Effect's `Random`. @default 0 */
  readonly rejectionRate?: number
  /** Time each `_bulk` request takes, slept on Effect's `Clock`. @default 0 */
  readonly bulkLatency?: Duration.Input
  /** `index.mapping.total_fields.limit`. @default 1000 */
  readonly totalFieldsLimit?: number
  /** `date_detection`: strings that look like ISO dates map as `date`. @default true */
  readonly dateDetection?: boolean
}

export interface BulkAction {
  /** `index` creates or replaces; `create` fails with 409 when the id exists. */
  readonly action: "index" | "create"
  readonly id: string
  readonly document: Readonly<Record<string, unknown>>
}

export interface BulkItemError {
  readonly type: string
  readonly reason: string
  readonly index: string
  readonly shard: string
  readonly index_uuid: string
}

export interface BulkItemResult {
  readonly _index: string
  readonly _id: string
  readonly status: number
  readonly _version?: number
  readonly result?: "created" | "updated"
  readonly _shards?: { readonly total: number; readonly successful: number; readonly failed: number }
  readonly _seq_no?: number
  readonly _primary_term?: number
  readonly error?: BulkItemError
}

/** One per action, keyed by the action name, as in the `_bulk` response. */
export type BulkItem = { readonly index: BulkItemResult } | { readonly create: BulkItemResult }

export interface BulkResponse {
  /** Milliseconds the request took, latency included. */
  readonly took: number
  /** True when any item failed; the request itself still succeeded. */
  readonly errors: boolean
  readonly items: ReadonlyArray<BulkItem>
}

export interface StoredDocument {
  readonly id: string
  readonly version: number
  /** The source as the index parsed it from the request body. */
  readonly source: Readonly<Record<string, unknown>>
}

export interface Stats {
  readonly requests: number
  readonly documents: number
  /** Successful item writes (created or updated) since the index was made, across `deleteIndex`. */
  readonly writes: number
  /** Items answered 429. */
  readonly rejections: number
  /** Items answered 409. */
  readonly conflicts: number
  /** Items answered 400. */
  readonly parseErrors: number
}

export interface Handle {
  readonly indexName: string
  readonly bulk: (
    actions: ReadonlyArray<BulkAction>
  ) => Effect.Effect<BulkResponse, DocumentSink.DocumentSinkError>
  /** `DocumentSink` over this index: one `index` action per document, keyed by its id. */
  readonly sink: DocumentSink.Service
  readonly get: (id: string) => Effect.Effect<StoredDocument | undefined>
  readonly count: Effect.Effect<number>
  /** How many times `id` was written successfully (survives `deleteIndex`). */
  readonly writes: (id: string) => Effect.Effect<number>
  readonly documents: Effect.Effect<ReadonlyArray<StoredDocument>>
  readonly mapping: Effect.Effect<ReadonlyMap<string, FieldType>>
  readonly stats: Effect.Effect<Stats>
  readonly setRejectionRate: (rate: number) => Effect.Effect<void>
  /** The next `items` items are answered 429, whatever the rate. */
  readonly rejectNext: (items: number) => Effect.Effect<void>
  /** Every item is answered 429 until the clock reaches `until` (epoch ms). */
  readonly rejectUntil: (until: number) => Effect.Effect<void>
  /** Whole requests fail 503 until `endOutage`, or until the clock reaches `until` (epoch ms). */
  readonly startOutage: (options?: { readonly until?: number }) => Effect.Effect<void>
  readonly endOutage: Effect.Effect<void>
  /** Drops every document and the mapping; the next write recreates the index (`auto_create_index`). */
  readonly deleteIndex: Effect.Effect<void>
  /**
   * Takes a snapshot of the index (documents and mapping) as the service's automated hourly
   * snapshots do (docs/aws-behaviour.md §6.7), named after the clock: the point a restore goes back to.
   */
  readonly takeSnapshot: Effect.Effect<Snapshot>
  readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
  /**
   * Restores a snapshot into the deleted index, as `_restore` does: documents and mapping as they
   * were when it was taken. Fails `IndexExists` while the index exists (OpenSearch refuses to
   * restore over an open index: `deleteIndex` first — a write after that recreates it), and
   * `SnapshotMissing` for a snapshot this index never took.
   */
  readonly restoreSnapshot: (name: string) => Effect.Effect<void, SnapshotMissing | IndexExists>
  readonly setBulkLatency: (latency: Duration.Input) => Effect.Effect<void>
}

export interface Snapshot {
  readonly name: string
  /** Epoch milliseconds at which it was taken: writes after it are not in it. */
  readonly takenAt: number
  readonly documents: number
}

/** `_restore` refuses while an open index of the same name exists (docs/aws-behaviour.md §6.7). */
export class IndexExists extends Data.TaggedError("IndexExists")<{ readonly index: string }> {
  override get message() {
    return `an open index named ${this.index} exists: delete or close it before restoring a snapshot into it`
  }
}

export class SnapshotMissing extends Data.TaggedError("SnapshotMissing")<{ readonly snapshot: string }> {
  override get message() {
    return `no snapshot named ${this.snapshot}`
  }
}

/** Control of an in-memory index: fault injection and observation, next to the `DocumentSink` it serves. */
export class MemoryIndex extends Context.Service<MemoryIndex, Handle>()("spillway/memory/MemoryIndex") {}

export const defaultMaxRequestBytes = 10 * 1024 * 1024

/** The `_bulk` body a client would send: an action line and a source line per action, each ending in `\n`. */
export const toNdjson = (indexName: string, actions: ReadonlyArray<BulkAction>): string =>
  actions
    .map(
      (action) =>
        `${JSON.stringify({ [action.action]: { _index: indexName, _id: action.id } })}\n${JSON.stringify(action.document)}\n`
    )
    .join("")

/** The result inside an item, whichever action it answers. */
export const resultOf = (item: BulkItem): BulkItemResult => ("index" in item ? item.index : item.create)

/**
 * How a writer reads an item: written (200, 201; 409 too, since a `create` refused because the id
 * exists means a replay already wrote it), retryable (429 rejections and circuit breakers, 5xx),
 * or rejected (any other 4xx: the document itself is wrong).
 */
export const toWriteOutcome = (result: BulkItemResult): DocumentSink.WriteOutcome => {
  if (result.status < 300 || result.status === 409) return DocumentSink.written
  const reason = `${result.status} ${result.error?.type ?? "error"}: ${result.error?.reason ?? "no reason given"}`
  return result.status === 429 || result.status >= 500
    ? { _tag: "Retryable", reason }
    : { _tag: "Rejected", reason }
}

// Fields OpenSearch keeps for itself; a document that sets one at its top level is refused.
const metadataFields = new Set([
  "_id",
  "_index",
  "_source",
  "_routing",
  "_version",
  "_seq_no",
  "_primary_term",
  "_field_names",
  "_ignored",
  "_doc_count"
])

// `strict_date_optional_time`, the first dynamic date format, as far as detection needs it; at
// least a full date is required (⚠ the `yyyy/MM/dd` default format is not detected).
const isoDate =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3])(:[0-5]\d(:[0-5]\d([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/
const epochMillis = /^-?\d+$/

const preview = (value: unknown): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value)
  return text.length > 20 ? `${text.slice(0, 20)}...` : text
}

const join = (prefix: string, key: string): string => (prefix === "" ? key : `${prefix}.${key}`)

interface Entry {
  readonly source: Readonly<Record<string, unknown>>
  readonly version: number
}

type ItemError = { readonly status: number; readonly type: string; readonly reason: string }

export const make = (options: Options = {}): Effect.Effect<Handle> =>
  Effect.gen(function* () {
    const indexName = options.indexName ?? "telemetry"
    const name = options.name ?? "opensearch"
    const maxRequestBytes = options.maxRequestBytes ?? defaultMaxRequestBytes
    const totalFieldsLimit = options.totalFieldsLimit ?? 1000
    const dateDetection = options.dateDetection ?? true
    let rejectionRate = options.rejectionRate ?? 0
    let latency = Duration.fromInputUnsafe(options.bulkLatency ?? Duration.zero)
    if (!(rejectionRate >= 0 && rejectionRate <= 1)) {
      return yield* Effect.die(new Error(`MemoryIndex: rejectionRate must be in 0–1, got ${rejectionRate}`))
    }

    let documents = new Map<string, Entry>()
    let mapping = new Map<string, FieldType>()
    // Fields count as OpenSearch counts them: a `text` field brings its `keyword` sub-field.
    let fieldCount = 0
    let generation = 1
    /** Whether the index exists (and is open): `deleteIndex` removes it, the next write recreates it. */
    let exists = true
    let seqNo = 0
    const writeCounts = new Map<string, number>()
    const stored: Array<{
      readonly name: string
      readonly takenAt: number
      readonly documents: ReadonlyMap<string, Entry>
      readonly mapping: ReadonlyMap<string, FieldType>
      readonly fieldCount: number
    }> = []
    let rejectBudget = 0
    let rejectUntil = Number.NEGATIVE_INFINITY
    let outage: { readonly until: number | undefined } | undefined
    const counts = { requests: 0, writes: 0, rejections: 0, conflicts: 0, parseErrors: 0 }

    const indexUuid = () => Buffer.from(`${indexName}#${generation}`).toString("base64url").slice(0, 22)

    const failure = (reason: DocumentSink.ErrorReason, message: string) =>
      new DocumentSink.DocumentSinkError({ sink: name, reason, message })

    // Checks a source against the mapping, collecting the fields it would add; nothing changes
    // unless the whole document can be indexed.
    const parse = (
      id: string,
      source: Readonly<Record<string, unknown>>
    ): ItemError | Map<string, FieldType> => {
      const added = new Map<string, FieldType>()
      let addedCount = 0
      const typeOf = (path: string) => added.get(path) ?? mapping.get(path)
      const parseError = (reason: string): ItemError => ({
        status: 400,
        type: "mapper_parsing_exception",
        reason
      })
      const cannotParse = (path: string, type: FieldType, value: unknown, why = ""): ItemError =>
        parseError(
          `failed to parse field [${path}] of type [${type}] in document with id '${id}'. Preview of field's value: '${preview(value)}'${why}`
        )
      const claim = (path: string, type: FieldType): ItemError | undefined => {
        added.set(path, type)
        addedCount += type === "text" ? 2 : 1
        return fieldCount + addedCount > totalFieldsLimit
          ? {
              status: 400,
              type: "illegal_argument_exception",
              reason: `Limit of total fields [${totalFieldsLimit}] has been exceeded while adding new fields [${path}]`
            }
          : undefined
      }
      const asObject = (path: string, value: unknown): ItemError | undefined => {
        const existing = typeOf(path)
        if (existing === undefined) return claim(path, "object")
        return existing === "object" ? undefined : cannotParse(path, existing, value)
      }
      const value = (path: string, v: unknown): ItemError | undefined => {
        if (v === null) return undefined
        if (Array.isArray(v)) {
          for (const element of v) {
            const error = value(path, element)
            if (error !== undefined) return error
          }
          return undefined
        }
        if (typeof v === "object") {
          return asObject(path, v) ?? fields(path, v as Record<string, unknown>)
        }
        const existing = typeOf(path)
        if (existing === "object") {
          return parseError(
            `object mapping for [${path}] tried to parse field [${path.slice(path.lastIndexOf(".") + 1)}] as object, but found a concrete value`
          )
        }
        if (typeof v === "number") {
          if (existing === undefined) return claim(path, Number.isInteger(v) ? "long" : "float")
          return existing === "boolean"
            ? cannotParse(path, existing, v, " Current token not of boolean type")
            : undefined
        }
        if (typeof v === "boolean") {
          if (existing === undefined) return claim(path, "boolean")
          return existing === "boolean" || existing === "text"
            ? undefined
            : cannotParse(
                path,
                existing,
                v,
                ` Current token (VALUE_${String(v).toUpperCase()}) not of ${existing} type`
              )
        }
        if (typeof v === "string") {
          switch (existing) {
            case undefined:
              return claim(path, dateDetection && isoDate.test(v) ? "date" : "text")
            case "text":
              return undefined
            case "long":
            case "float":
              return v.trim() !== "" && Number.isFinite(Number(v))
                ? undefined
                : cannotParse(path, existing, v, ` For input string: "${v}"`)
            case "boolean":
              return v === "true" || v === "false" || v === ""
                ? undefined
                : cannotParse(
                    path,
                    existing,
                    v,
                    ` Failed to parse value [${v}] as only [true] or [false] are allowed.`
                  )
            case "date":
              return isoDate.test(v) || epochMillis.test(v)
                ? undefined
                : cannotParse(
                    path,
                    existing,
                    v,
                    ` failed to parse date field [${v}] with format [strict_date_optional_time||epoch_millis]`
                  )
          }
        }
        return cannotParse(path, existing ?? "text", v)
      }
      const fields = (prefix: string, object: Readonly<Record<string, unknown>>): ItemError | undefined => {
        for (const [key, v] of Object.entries(object)) {
          const parts = key.split(".")
          if (parts.some((part) => part.trim() === "")) {
            return parseError(
              `field name cannot be an empty string or contain only whitespace: [${join(prefix, key)}]`
            )
          }
          if (prefix === "" && metadataFields.has(key)) {
            return parseError(
              `Field [${key}] is a metadata field and cannot be added inside a document. Use the index API request parameters.`
            )
          }
          // `{"a.b": 1}` is `{"a": {"b": 1}}`: the intermediate names are objects.
          let path = prefix
          for (const part of parts.slice(0, -1)) {
            path = join(path, part)
            const error = asObject(path, v)
            if (error !== undefined) return error
          }
          const error = value(join(path, parts[parts.length - 1] ?? key), v)
          if (error !== undefined) return error
        }
        return undefined
      }
      const error = fields("", source)
      return error ?? added
    }

    const rejected = (now: number): Effect.Effect<boolean> => {
      if (rejectBudget > 0) {
        rejectBudget -= 1
        return Effect.succeed(true)
      }
      if (now < rejectUntil) return Effect.succeed(true)
      return rejectionRate > 0 ? Effect.map(Random.next, (r) => r < rejectionRate) : Effect.succeed(false)
    }

    const bulk = Effect.fn("MemoryIndex.bulk")(function* (actions: ReadonlyArray<BulkAction>) {
      const started = yield* Clock.currentTimeMillis
      if (Duration.toMillis(latency) > 0) yield* Effect.sleep(latency)
      const now = yield* Clock.currentTimeMillis
      counts.requests += 1
      if (outage !== undefined && outage.until !== undefined && now >= outage.until) outage = undefined
      if (outage !== undefined) {
        return yield* failure("Unavailable", "503 Service Unavailable (injected outage)")
      }
      // A `_bulk` request with actions creates a deleted index again (`auto_create_index`).
      if (actions.length > 0) exists = true
      if (actions.length === 0) {
        return yield* failure(
          "InvalidRequest",
          "400 action_request_validation_exception: Validation Failed: 1: no requests added;"
        )
      }
      for (const action of actions) {
        const idBytes = Buffer.byteLength(action.id, "utf8")
        if (idBytes === 0 || idBytes > 512) {
          return yield* failure(
            "InvalidRequest",
            idBytes === 0
              ? "400 action_request_validation_exception: Validation Failed: 1: if _id is specified it must not be empty;"
              : `400 action_request_validation_exception: Validation Failed: 1: id [${action.id.slice(0, 40)}...] is too long, must be no longer than 512 bytes but was: ${idBytes};`
          )
        }
      }
      let body: string
      try {
        body = toNdjson(indexName, actions)
      } catch (cause) {
        return yield* failure("InvalidRequest", `request body cannot be serialized: ${String(cause)}`)
      }
      const bodyBytes = Buffer.byteLength(body, "utf8")
      if (bodyBytes > maxRequestBytes) {
        return yield* failure(
          "TooLarge",
          `413 Request size exceeded ${maxRequestBytes} bytes (body is ${bodyBytes} bytes)`
        )
      }
      // The index sees what the wire carries (no `undefined`, dates as strings), not the caller's objects.
      const sources = body
        .split("\n")
        .filter((_, line) => line % 2 === 1)
        .map((line) => JSON.parse(line) as Record<string, unknown>)

      const items: Array<BulkItem> = []
      for (const [i, action] of actions.entries()) {
        const source = sources[i] ?? {}
        const base = { _index: indexName, _id: action.id }
        const error = (status: number, type: string, reason: string): BulkItemResult => ({
          ...base,
          status,
          error: { type, reason, index: indexName, shard: "0", index_uuid: indexUuid() }
        })
        const answer = (result: BulkItemResult) => {
          items.push(action.action === "index" ? { index: result } : { create: result })
        }
        if (yield* rejected(now)) {
          counts.rejections += 1
          answer(
            error(
              429,
              "es_rejected_execution_exception",
              `rejected execution of primary operation on OpenSearchThreadPoolExecutor[name = node-1/write, queue capacity = 10000] (index ${indexName}, id ${action.id})`
            )
          )
          continue
        }
        const existing = documents.get(action.id)
        if (action.action === "create" && existing !== undefined) {
          counts.conflicts += 1
          answer(
            error(
              409,
              "version_conflict_engine_exception",
              `[${action.id}]: version conflict, document already exists (current version [${existing.version}])`
            )
          )
          continue
        }
        const parsed = parse(action.id, source)
        if (!(parsed instanceof Map)) {
          counts.parseErrors += 1
          answer(error(parsed.status, parsed.type, parsed.reason))
          continue
        }
        for (const [path, type] of parsed) {
          mapping.set(path, type)
          fieldCount += type === "text" ? 2 : 1
        }
        const version = (existing?.version ?? 0) + 1
        documents.set(action.id, { source, version })
        writeCounts.set(action.id, (writeCounts.get(action.id) ?? 0) + 1)
        counts.writes += 1
        answer({
          ...base,
          _version: version,
          result: existing === undefined ? "created" : "updated",
          _shards: { total: 2, successful: 1, failed: 0 },
          _seq_no: seqNo++,
          _primary_term: 1,
          status: existing === undefined ? 201 : 200
        })
      }
      const finished = yield* Clock.currentTimeMillis
      return {
        took: finished - started,
        errors: items.some((item) => resultOf(item).status >= 300),
        items
      } satisfies BulkResponse
    })

    const write = Effect.fn("MemoryIndex.write")(function* (batch: ReadonlyArray<DocumentSink.Document>) {
      if (batch.length === 0) return []
      const response = yield* bulk(
        batch.map((document) => ({ action: "index", id: document.id, document: document.body }))
      )
      return response.items.map((item) => toWriteOutcome(resultOf(item)))
    })

    const handle: Handle = {
      indexName,
      bulk,
      sink: DocumentSink.DocumentSink.of({ name, write }),
      get: (id) =>
        Effect.sync(() => {
          const entry = documents.get(id)
          return entry === undefined ? undefined : { id, version: entry.version, source: entry.source }
        }),
      count: Effect.sync(() => documents.size),
      writes: (id) => Effect.sync(() => writeCounts.get(id) ?? 0),
      documents: Effect.sync(() =>
        Array.from(documents, ([id, entry]) => ({ id, version: entry.version, source: entry.source }))
      ),
      mapping: Effect.sync(() => new Map(mapping)),
      stats: Effect.sync(() => ({ ...counts, documents: documents.size })),
      setRejectionRate: (rate) =>
        rate >= 0 && rate <= 1
          ? Effect.sync(() => {
              rejectionRate = rate
            })
          : Effect.die(new Error(`MemoryIndex: rejectionRate must be in 0–1, got ${rate}`)),
      rejectNext: (n) =>
        Effect.sync(() => {
          rejectBudget = Math.max(0, n)
        }),
      rejectUntil: (until) =>
        Effect.sync(() => {
          rejectUntil = until
        }),
      startOutage: (outageOptions = {}) =>
        Effect.sync(() => {
          outage = { until: outageOptions.until }
        }),
      endOutage: Effect.sync(() => {
        outage = undefined
      }),
      deleteIndex: Effect.sync(() => {
        exists = false
        documents = new Map()
        mapping = new Map()
        fieldCount = 0
        seqNo = 0
        generation += 1
      }),
      takeSnapshot: Effect.map(Clock.currentTimeMillis, (takenAt) => {
        const name = `snapshot-${new Date(takenAt).toISOString()}-${stored.length + 1}`
        // Entries are never changed in place, so copying the maps freezes the index as it is.
        stored.push({ name, takenAt, documents: new Map(documents), mapping: new Map(mapping), fieldCount })
        return { name, takenAt, documents: documents.size }
      }),
      snapshots: Effect.sync(() =>
        stored.map(({ name, takenAt, documents }) => ({ name, takenAt, documents: documents.size }))
      ),
      restoreSnapshot: (name) =>
        Effect.suspend((): Effect.Effect<void, SnapshotMissing | IndexExists> => {
          const snapshot = stored.find((s) => s.name === name)
          if (snapshot === undefined) return Effect.fail(new SnapshotMissing({ snapshot: name }))
          if (exists) return Effect.fail(new IndexExists({ index: indexName }))
          exists = true
          documents = new Map(snapshot.documents)
          mapping = new Map(snapshot.mapping)
          fieldCount = snapshot.fieldCount
          generation += 1
          return Effect.void
        }),
      setBulkLatency: (next) =>
        Effect.sync(() => {
          latency = Duration.fromInputUnsafe(next)
        })
    }
    return handle
  })

/** An index serving `DocumentSink`, with its control handle under `MemoryIndex`. */
export const layerMemory = (options: Options = {}): Layer.Layer<DocumentSink.DocumentSink | MemoryIndex> =>
  Layer.effectContext(
    Effect.map(make(options), (handle) =>
      Context.make(MemoryIndex, handle).pipe(Context.add(DocumentSink.DocumentSink, handle.sink))
    )
  )
