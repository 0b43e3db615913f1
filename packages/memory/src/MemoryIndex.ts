/**
 * An in-memory OpenSearch index with a `_bulk` API, and the `DocumentSink` that writes to it, for
 * tests and local runs (docs/aws-behaviour.md §6).
 *
 * What it guarantees, as OpenSearch 2.19 does (MemoryIndex.differential.opensearch.test.ts sends
 * the same requests to both and compares): documents are keyed by `_id`, so writing an id again
 * replaces it (one document, version + 1) and replays never duplicate; `create` on an existing id
 * answers 409, once its source has been parsed (a source that cannot be indexed answers 400);
 * dynamic mapping fixes a field's type on first sight (`long`, `float`, `text`, `boolean`, ISO
 * dates as `date`, `object`), and a later value that cannot be indexed as that type is refused
 * with 400 naming the field, with OpenSearch's coercions (a number into a text field, `"12"` or
 * `"1e3"` into a long, `""` into a number field pass; `" 12"` into a long, a number beyond a long's
 * range do not); values of different types for one new field in one document, an array's included,
 * refuse it; dotted names are paths into objects; metadata fields, empty names and nesting deeper
 * than `index.mapping.depth.limit` (20) are refused; so is a document that would take the mapping
 * over the total fields limit; an empty id fails its item, one over 512 bytes the whole request; a
 * request whose NDJSON body is over the size limit is refused whole with 413 and indexes nothing.
 * Items are processed in request order and answered in request order.
 *
 * Not modelled (the differential test lists the same, and shows each still differs):
 * - the second dynamic date format, `yyyy/MM/dd[ HH:mm:ss]`: such strings map as `text` here, as a
 *   date of that format there (the mapping would need a format per date field);
 * - zone names in ISO dates (`...T10:00:00UTC`, `Europe/Paris`): only `Z` and offsets are dates here;
 * - numeric strings in non-ASCII digits (`"١٢"`) and hexadecimal floats (`"0x1p3"`), which Java's
 *   number parsers read;
 * - `_primary_term` in a source, refused here as a metadata field; OpenSearch maps it as a field,
 *   then Lucene refuses the document with `illegal_argument_exception`;
 * - unpaired UTF-16 surrogates, which OpenSearch stores as U+FFFD;
 * - which object a "Limit of mapping depth" error names when several are too deep (OpenSearch takes
 *   the first in a hash map's order, this the shallowest);
 * - reason texts word for word, `took`, `_seq_no`, and `_shards` (this answers as a domain with one
 *   replica would).
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

// Fields OpenSearch keeps for itself: a source that sets one at its top level is refused, even to
// null (an empty array sets nothing). `_primary_term` is not one of them in OpenSearch, which maps
// it and then fails in Lucene (see "Not modelled"). `_doc_count` is one, and takes a positive integer.
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
  "_data_stream_timestamp",
  "_nested_path"
])
const docCountField = "_doc_count"

/** `index.mapping.depth.limit`: objects (the source is the first) and arrays nest at most this deep. */
const depthLimit = 20

const longMax = 2n ** 63n - 1n
const inLong = (n: bigint): boolean => n >= -longMax - 1n && n <= longMax

// JSON writes a number without fraction or exponent as an integer (Jackson's INT, LONG or
// BIG_INTEGER, dynamically a `long`); `JSON.stringify` writes 1e21 and up with an exponent.
const isIntegerToken = (n: number): boolean => Number.isInteger(n) && Math.abs(n) < 1e21
// Jackson reads an integer exactly as written (so -2^63, written -9223372036854776000, is out of
// range), and coerces any other number from a double.
const outOfLong = (n: number): boolean =>
  isIntegerToken(n) ? !inLong(BigInt(String(n))) : Math.abs(n) >= 2 ** 63

// A string into a `long`: `Long.parseLong`, then `BigDecimal` truncated (so "1e3" and "12.5" pass),
// no surrounding whitespace, no hexadecimal.
const decimal = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const longRefusal = (s: string): string | undefined => {
  if (!decimal.test(s)) return `For input string: "${s}"`
  const inRange = /^[+-]?\d+$/.test(s) ? inLong(BigInt(s)) : Math.abs(Math.trunc(Number(s))) < 2 ** 63
  return inRange ? undefined : `Value [${s}] is out of range for a long`
}

// A string into a `float`: `Float.parseFloat`, which trims control characters and spaces and takes
// an `f` or `d` suffix; the value must be finite as a 32-bit float.
const javaFloat = /^[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)$/
const javaTrim = (s: string): string => {
  let start = 0
  let end = s.length
  while (start < end && s.charCodeAt(start) <= 0x20) start++
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--
  return s.slice(start, end)
}
const floatRefusal = (s: string): string | undefined => {
  const trimmed = javaTrim(s)
  if (!javaFloat.test(trimmed)) return trimmed === "" ? "empty String" : `For input string: "${s}"`
  const value = Math.fround(Number(trimmed.replace(/[fFdD]$/, "")))
  return Number.isFinite(value) ? undefined : `[float] supports only finite values, but got [${value}]`
}

// `strict_date_optional_time`, the first dynamic date format and a date field's default: a year of
// four digits, optionally month and day, then optionally `T` and a time down to nanoseconds with a
// zone (`Z` or an offset up to ±18:00), each part range-checked.
const isoShape =
  /^(-?\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T(?:(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?)?(?:Z|[+-](\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?)?)?$/
const monthDays = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
/**
 * "date" for a date; "bad month" for the shape of one whose month is out of range and that has no
 * day, which the format parses (so detection maps a date) but no date field can index; else undefined.
 */
const isoDate = (s: string): "date" | "bad month" | undefined => {
  const match = isoShape.exec(s)
  if (match === null) return undefined
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes, offsetSeconds] = match
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part)))
  const over = (value: number | undefined, max: number) => value !== undefined && value > max
  if (over(hour, 23) || over(minute, 59) || over(second, 59)) return undefined
  if (over(offsetMinutes, 59) || over(offsetSeconds, 59)) return undefined
  const offset = ((offsetHours ?? 0) * 60 + (offsetMinutes ?? 0)) * 60 + (offsetSeconds ?? 0)
  if (offset > 18 * 3600) return undefined
  if (month === undefined) return "date"
  if (day === undefined) return month >= 1 && month <= 12 ? "date" : "bad month"
  const y = year ?? 0
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
  const days = month === 2 && !leap ? 28 : monthDays[month - 1]
  return days !== undefined && day >= 1 && day <= days ? "date" : undefined
}

// `epoch_millis`: up to Long.MAX_VALUE milliseconds either side of 1970, with up to six decimals.
const epochMillis = /^-?(\d{1,19})(\.\d{0,6})?$/
const isEpochMillis = (s: string): boolean => {
  const digits = epochMillis.exec(s)?.[1]
  return digits !== undefined && BigInt(digits) <= longMax
}

/** Why a concrete value cannot be indexed into a field of `type` (with OpenSearch's coercions), if it cannot. */
const refusal = (type: Exclude<FieldType, "object">, v: string | number | boolean): string | undefined => {
  const token = typeof v === "boolean" ? `VALUE_${String(v).toUpperCase()}` : "VALUE_NUMBER"
  switch (type) {
    case "text":
      return undefined
    case "long":
    case "float":
      if (typeof v === "boolean") return `Current token (${token}) not numeric`
      if (typeof v === "number") {
        if (type === "long") return outOfLong(v) ? `Numeric value (${v}) out of range of long` : undefined
        return Number.isFinite(Math.fround(v))
          ? undefined
          : "[float] supports only finite values, but got [Infinity]"
      }
      // To a number field an empty string is null.
      if (v === "") return undefined
      return type === "long" ? longRefusal(v) : floatRefusal(v)
    case "boolean":
      if (typeof v === "boolean" || v === "true" || v === "false" || v === "") return undefined
      return typeof v === "number"
        ? `Current token (${token}) not of boolean type`
        : `Failed to parse value [${v}] as only [true] or [false] are allowed.`
    case "date": {
      // A number is read as its JSON text, as Jackson gives it to the date parser.
      const text = String(v)
      if (text === "") return "cannot parse empty date"
      if (typeof v !== "boolean" && (isoDate(text) === "date" || isEpochMillis(text))) return undefined
      return isoDate(text) === "bad month"
        ? "Invalid value for MonthOfYear (valid values 1 - 12)"
        : `failed to parse date field [${text}] with format [strict_date_optional_time||epoch_millis]`
    }
  }
}

/** The type dynamic mapping gives a field on first sight of a concrete value. */
const dynamicType = (v: string | number | boolean, dateDetection: boolean): Exclude<FieldType, "object"> => {
  if (typeof v === "boolean") return "boolean"
  if (typeof v === "number") return isIntegerToken(v) ? "long" : "float"
  // A string that parses as a number (of date shapes, only a bare year) is never detected as a date.
  return dateDetection && isoDate(v) !== undefined && !/^-?\d{4}$/.test(v) ? "date" : "text"
}

/**
 * The parts of a field name as OpenSearch splits it on dots (trailing empty parts dropped, so
 * `"a."` is `a`), or why it refuses the name.
 */
const pathOf = (key: string): ReadonlyArray<string> | string => {
  if (key === "") return "field name cannot be an empty string"
  if (!key.includes(".")) return [key]
  const parts = key.split(".")
  while (parts.at(-1) === "") parts.pop()
  if (parts.length === 0) return "field name cannot contain only the character [.]"
  for (const part of parts) {
    if (part === "") {
      return `object field starting or ending with a [.] makes object resolution ambiguous: [${key}]`
    }
    if (isBlank(part)) return `object field cannot contain only whitespace: ['${key}']`
  }
  return parts
}

// Java's `Character.isWhitespace`: ASCII controls 9–13 and 28–31, and the Unicode space, line and
// paragraph separators except the no-break spaces.
const isJavaWhitespace = (c: number): boolean =>
  (c >= 0x09 && c <= 0x0d) ||
  (c >= 0x1c && c <= 0x20) ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a && c !== 0x2007) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x205f ||
  c === 0x3000
const isBlank = (s: string): boolean => [...s].every((ch) => isJavaWhitespace(ch.codePointAt(0) ?? 0))

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

    // Parses a source as OpenSearch's `DocumentParser` does, against the mapping as it stood before
    // the document: a field the mapping lacks takes the type of each of its values on its own
    // (dynamic mapping), so two values of different types for one new field, even in one array,
    // refuse the document. Nothing changes unless the whole document can be indexed; then it
    // answers the fields the document adds. The first refusal wins, in this order: what parsing
    // meets first in the source, then the dynamic update (types that disagree), then the limits.
    const parse = (
      id: string,
      source: Readonly<Record<string, unknown>>
    ): ItemError | Map<string, FieldType> => {
      // Fields this document would add, in the order met: the same path may come more than once.
      const dynamic: Array<readonly [string, FieldType]> = []
      const parseError = (reason: string): ItemError => ({
        status: 400,
        type: "mapper_parsing_exception",
        reason
      })
      const illegal = (reason: string): ItemError => ({
        status: 400,
        type: "illegal_argument_exception",
        reason
      })
      const cannotParse = (path: string, type: string, value: unknown, why: string): ItemError =>
        parseError(
          `failed to parse field [${path}] of type [${type}] in document with id '${id}'. Preview of field's value: '${preview(value)}' ${why}`
        )

      type Target = FieldType | "metadata" | "docCount" | undefined
      // The value `v` of `key`, whose full path is `path`, inside `depth` objects and `arrays` arrays.
      const value = (
        path: string,
        key: string,
        target: Target,
        v: unknown,
        depth: number,
        arrays: number
      ): ItemError | undefined => {
        if (Array.isArray(v)) {
          if (arrays + 1 > depthLimit) {
            return parseError(
              `failed to parse: The depth of the nested array field has exceeded the allowed limit of [${depthLimit}]`
            )
          }
          for (const element of v) {
            const error = value(path, key, target, element, depth, arrays + 1)
            if (error !== undefined) return error
          }
          return undefined
        }
        if (target === "metadata") {
          return cannotParse(
            path,
            path,
            v,
            `Field [${path}] is a metadata field and cannot be added inside a document. Use the index API request parameters.`
          )
        }
        if (target === "docCount") {
          return typeof v === "number" && isIntegerToken(v) && v >= 1 && !outOfLong(v)
            ? undefined
            : cannotParse(path, path, v, `Field [${path}] must be a positive integer.`)
        }
        if (v === null) return undefined
        if (typeof v === "object") {
          if (target === undefined) dynamic.push([path, "object"])
          else if (target !== "object") {
            return cannotParse(path, target, v, "Can't get text on a START_OBJECT")
          }
          return fields(path, v as Readonly<Record<string, unknown>>, depth + 1, arrays)
        }
        if (target === "object") {
          return parseError(
            `object mapping for [${path}] tried to parse field [${key}] as object, but found a concrete value`
          )
        }
        const concrete = v as string | number | boolean
        const type = target ?? dynamicType(concrete, dateDetection)
        if (target === undefined) dynamic.push([path, type])
        const why = refusal(type, concrete)
        return why === undefined ? undefined : cannotParse(path, type, concrete, why)
      }

      const fields = (
        prefix: string,
        object: Readonly<Record<string, unknown>>,
        depth: number,
        arrays: number
      ): ItemError | undefined => {
        if (depth > depthLimit) {
          return parseError(
            `failed to parse: The depth of the field has exceeded the allowed limit of [${depthLimit}]`
          )
        }
        for (const [key, v] of Object.entries(object)) {
          const parts = pathOf(key)
          if (typeof parts === "string") return parseError(`failed to parse: ${parts}`)
          // `{"a.b": 1}` is `{"a": {"b": 1}}`: the names before the last are objects, added when missing.
          let path = prefix
          for (const part of parts.slice(0, -1)) {
            path = join(path, part)
            const existing =
              mapping.get(path) ?? (metadataFields.has(path) || path === docCountField ? path : undefined)
            if (existing === undefined) dynamic.push([path, "object"])
            else if (existing !== "object") {
              return parseError(
                `Could not dynamically add mapping for field [${parts.join(".")}]. Existing mapping for [${path}] must be of type object but found [${existing}].`
              )
            }
          }
          path = join(path, parts[parts.length - 1] ?? key)
          const target: Target =
            prefix === "" && metadataFields.has(key)
              ? "metadata"
              : prefix === "" && key === docCountField
                ? "docCount"
                : mapping.get(path)
          const error = value(path, key, target, v, depth, arrays)
          if (error !== undefined) return error
        }
        return undefined
      }

      const error = fields("", source, 1, 0)
      if (error !== undefined) return error
      // The dynamic update, merged by path as OpenSearch merges it (in path order).
      const added = new Map<string, FieldType>()
      for (const [path, type] of [...dynamic].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const first = added.get(path)
        if (first === undefined) {
          // A blank name is refused once it is part of a path (`{"o": {" ": 1}}`), not on its own.
          if (path.includes(".") && path.split(".").some(isBlank)) {
            return illegal(`object field cannot contain only whitespace: ['${path}']`)
          }
          added.set(path, type)
        } else if (first !== type) {
          return illegal(
            first === "object" || type === "object"
              ? `can't merge a non object mapping [${path}] with an object mapping`
              : `mapper [${path}] cannot be changed from type [${first}] to [${type}]`
          )
        }
      }
      let addedCount = 0
      for (const type of added.values()) addedCount += type === "text" ? 2 : 1
      if (addedCount > 0 && fieldCount + addedCount > totalFieldsLimit) {
        return illegal(`Limit of total fields [${totalFieldsLimit}] has been exceeded`)
      }
      for (const [path, type] of added) {
        // An object whose path has n names sits n + 1 levels down: the source is the first level.
        if (type === "object" && path.split(".").length + 1 > depthLimit) {
          return illegal(
            `Limit of mapping depth [${depthLimit}] has been exceeded due to object field [${path}]`
          )
        }
      }
      return added
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
        // Over 512 bytes fails the whole request; an empty id fails only its item (below).
        const idBytes = Buffer.byteLength(action.id, "utf8")
        if (idBytes > 512) {
          return yield* failure(
            "InvalidRequest",
            `400 action_request_validation_exception: Validation Failed: 1: id [${action.id.slice(0, 40)}...] is too long, must be no longer than 512 bytes but was: ${idBytes};`
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
        // Refused before the request reaches a shard, so never rejected there.
        if (action.id === "") {
          counts.parseErrors += 1
          answer(error(400, "illegal_argument_exception", "if _id is specified it must not be empty"))
          continue
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
        // The primary parses the source, and applies the mapping update it needs, before the
        // engine looks at versions: a `create` on an existing id is answered 400 when its source
        // cannot be indexed, and 409 otherwise, with its new fields mapped all the same.
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
