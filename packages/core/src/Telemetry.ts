/**
 * The telemetry domain: what clients send, what the collector writes to the stream, and how a
 * decode failure is told back to a person.
 *
 * Guarantees: every record in the stream is a `TelemetryEnvelope` that was decoded by these
 * schemas, so a consumer can only meet a malformed record if something other than the collector
 * wrote to the stream — and then it gets a typed `InvalidRecord` with the path of the bad field.
 * A stored record's `timestamp` is always ISO-8601 (epoch milliseconds are read into it), and a
 * field the client sent beyond the four of a record is kept under `attributes`, never dropped.
 * Every reason is plain words after the field's path ("payload: must be a JSON object").
 */
import { Result, Schema, SchemaIssue, SchemaParser, SchemaTransformation } from "effect"

/**
 * The record id is the Kinesis partition key (1–256 Unicode characters) and the OpenSearch
 * `_id` (at most 512 UTF-8 bytes): 256 characters of up to 2 bytes keeps both limits.
 */
export const RecordId = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(256, { message: "must be at most 256 characters (Kinesis partition key limit)" }),
  Schema.makeFilter(
    (s) => Buffer.byteLength(s, "utf8") <= 512 || "must be at most 512 UTF-8 bytes (OpenSearch _id)"
  )
).pipe(Schema.brand("RecordId"))
export type RecordId = typeof RecordId.Type

const isoPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

/** An ISO-8601 instant with an explicit zone (`Z` or `±hh:mm`), kept as the client wrote it. */
export const Timestamp = Schema.String.check(
  Schema.isPattern(isoPattern, {
    message: "must be an ISO-8601 timestamp with a zone, e.g. 2026-11-24T10:00:00.000Z"
  }).abort(),
  Schema.makeFilter((s) => !Number.isNaN(Date.parse(s)) || "is not a real date")
)

/**
 * Below this, a number is much likelier epoch seconds than milliseconds (it would be before
 * 3 March 1973): refused with a hint rather than stored as a date in 1970.
 */
export const minEpochMillis = 100_000_000_000
/**
 * The last instant of year 9999: the last one ISO-8601's four-digit years (and the stored
 * `Timestamp`) can write; a later one would become `+010000-…`, which no reader accepts.
 */
const maxEpochMillis = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/**
 * Epoch milliseconds, as most agents send `timestamp` (a JSON number), read into the ISO-8601
 * form (UTC, `Z`, millisecond precision) that every stored record carries.
 */
export const EpochMillisTimestamp = Schema.Number.check(
  Schema.isInt({ message: "must be whole epoch milliseconds" }).abort(),
  Schema.isGreaterThanOrEqualTo(minEpochMillis, {
    message: `must be epoch milliseconds (at least ${minEpochMillis}, March 1973): this looks like epoch seconds, multiply it by 1000`
  }).abort(),
  Schema.isLessThanOrEqualTo(maxEpochMillis, { message: "is after the year 9999" })
).pipe(
  Schema.decodeTo(
    Schema.String,
    SchemaTransformation.transform({
      decode: (millis) => new Date(millis).toISOString(),
      encode: (iso) => Date.parse(iso)
    })
  )
)

/** What a client may send as `timestamp`: an ISO-8601 string with a zone, or epoch milliseconds. */
export const TimestampInput = Schema.Union([Timestamp, EpochMillisTimestamp]).annotate({
  message: "must be an ISO-8601 timestamp with a zone (e.g. 2026-11-24T10:00:00.000Z) or epoch milliseconds"
})

/** A JSON object: the payload is indexed as an object, so scalars and arrays are refused here. */
export const Payload = Schema.Record(Schema.String, Schema.Unknown)

/**
 * The fields a client sent beyond `id`, `type`, `timestamp` and `payload` (`host`, `tags`, …),
 * each under its own name. They are kept, never dropped: in the stream, the backup and the
 * indexed document, under `attributes.<name>`, so they stay searchable without ever colliding
 * with the record's own fields.
 */
export const Attributes = Schema.Record(Schema.String, Schema.Unknown)

const RecordType = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(128, { message: "must be at most 128 characters" })
)

/** A telemetry record as the collector stores it: timestamp in ISO-8601, extra fields under `attributes`. */
export class TelemetryRecord extends Schema.Class<TelemetryRecord>("TelemetryRecord")({
  id: RecordId,
  type: RecordType,
  timestamp: Timestamp,
  payload: Payload,
  attributes: Schema.optionalKey(Attributes)
}) {}

/** A record as clients send it; `decodeRecord` turns it into a `TelemetryRecord`. */
const ClientRecord = Schema.Struct({
  id: RecordId,
  type: RecordType,
  timestamp: TimestampInput,
  payload: Payload
})

const recordFields: ReadonlySet<string> = new Set(["id", "type", "timestamp", "payload"])

/** What the collector puts in the stream: the record plus who sent it and when it arrived. */
export class TelemetryEnvelope extends Schema.Class<TelemetryEnvelope>("TelemetryEnvelope")({
  tenant: Schema.String.check(Schema.isMinLength(1)),
  /**
   * Epoch milliseconds at which the collector accepted the record; the start of end-to-end delay.
   * At most the year 9999's last instant, so it is always a date (`receivedAt` is indexed as one).
   */
  receivedAt: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(maxEpochMillis)),
  record: TelemetryRecord
}) {}

/** A record that failed validation, with a reason a person can act on. */
export class InvalidRecord extends Schema.TaggedError<InvalidRecord>()("InvalidRecord", {
  reason: Schema.String
}) {
  get isRetryable(): boolean {
    return false
  }
}

/**
 * Plain words for a value of the wrong kind, by what was expected: schemas without a `message`
 * annotation of their own (the envelope's, read back from the stream) still say "must be a
 * number", never an echo of the schema's type.
 */
const wrongKind = (issue: SchemaIssue.Leaf): string | undefined => {
  if (issue._tag !== "InvalidType") return undefined
  switch (issue.ast._tag) {
    case "String":
      return "must be a string"
    case "Number":
      return "must be a number"
    case "Boolean":
      return "must be true or false"
    case "Arrays":
      return "must be a JSON array"
    case "Objects":
    case "Declaration":
      return "must be a JSON object"
    default:
      return undefined
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    if (issue._tag === "MissingKey") return "is missing"
    // A schema's own `message` first (the default hook reads it), then plain words by kind.
    const annotated = issue._tag === "InvalidType" ? issue.ast.annotations?.message : undefined
    if (typeof annotated === "string") return annotated
    return wrongKind(issue) ?? SchemaIssue.defaultLeafHook(issue)
  }
})

/**
 * Turns a schema issue into one line per problem, each prefixed by the path of the bad field,
 * e.g. `type: must be a string` or `id: must not be empty`; a problem with the value as a whole
 * is said of `subject` ("record must be a JSON object").
 */
export const formatIssue = (issue: SchemaIssue.Issue, subject?: string): string =>
  formatter(issue)
    .issues.map((problem) => {
      const path = (problem.path ?? []).map(String).join(".")
      if (path.length > 0) return `${path}: ${problem.message}`
      return subject === undefined ? problem.message : `${subject} ${problem.message}`
    })
    .join("; ")

const decodeClientRecord = SchemaParser.decodeUnknownResult(ClientRecord, {
  errors: "all",
  onExcessProperty: "ignore"
})

/**
 * How deeply a record may nest objects and arrays. OpenSearch refuses documents deeper than its
 * `index.mapping.depth.limit` (20 by default) anyway, and a bound here keeps encoding and error
 * formatting — both recursive — from overflowing the stack on hostile input.
 */
export const maxNestingDepth = 20

/** Whether `value` nests objects/arrays deeper than `max` levels; iterative, so safe on any depth. */
export const nestsDeeperThan = (value: unknown, max: number): boolean => {
  // Two parallel stacks rather than one of pairs: this runs over every value of every record.
  const values: Array<unknown> = [value]
  const depths: Array<number> = [0]
  while (values.length > 0) {
    const current = values.pop()
    const depth = depths.pop()!
    if (typeof current !== "object" || current === null) continue
    if (depth >= max) return true
    if (Array.isArray(current)) {
      for (const child of current) {
        values.push(child)
        depths.push(depth + 1)
      }
    } else {
      for (const key in current) {
        if (!Object.hasOwn(current, key)) continue
        values.push((current as Record<string, unknown>)[key])
        depths.push(depth + 1)
      }
    }
  }
  return false
}

const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isBoundedString = (value: unknown, max: number): value is string =>
  typeof value === "string" && value.length >= 1 && value.length <= max

type ClassOf<A, Fields> = new (fields: Fields, options?: { readonly disableChecks?: boolean }) => A

/**
 * Builds a class instance from fields already checked. Effect's schema decoder does it through
 * `Schema.makeClassTrusted` (internal, so not in its types): used when this Effect has it, else
 * the public constructor, which checks the structure again (0.85 µs instead of 0.2 per envelope,
 * measured on Node 24). Either way the instance is the one the schema's decoder makes.
 */
const trusted = (Schema as unknown as { makeClassTrusted?: (self: unknown, fields: unknown) => unknown })
  .makeClassTrusted
const construct = <A, Fields>(self: ClassOf<A, Fields>, fields: Fields): A =>
  trusted === undefined ? new self(fields, { disableChecks: true }) : (trusted(self, fields) as A)

/** The fields of `input` beyond the record's own, or `undefined` when there are none. */
const extraFields = (input: object): Record<string, unknown> | undefined => {
  let extras: Array<[string, unknown]> | undefined
  for (const name in input) {
    if (!Object.hasOwn(input, name) || recordFields.has(name)) continue
    extras ??= []
    extras.push([name, (input as Record<string, unknown>)[name]])
  }
  // `fromEntries` defines own properties, so a `__proto__` field is kept as data, not as a prototype.
  return extras === undefined ? undefined : Object.fromEntries(extras)
}

/**
 * The client record schema's checks, written out for the collector's hot path, as
 * `passesEnvelopeChecks` is for the processor's: they accept only what `ClientRecord` accepts and
 * give the fields it would decode (an epoch-milliseconds `timestamp` read into ISO-8601); what
 * they do not accept goes through the schema, which gives the reason
 * (`Telemetry.fastDecode.test.ts` compares both).
 */
const clientRecordFields = (
  input: unknown
):
  | { id: RecordId; type: string; timestamp: string; payload: { readonly [key: string]: unknown } }
  | undefined => {
  if (!isJsonObject(input)) return undefined
  const { id, type, timestamp, payload } = input
  if (!isBoundedString(id, 256) || (id.length > 170 && Buffer.byteLength(id, "utf8") > 512)) return undefined
  if (!isBoundedString(type, 128)) return undefined
  if (!isJsonObject(payload)) return undefined
  if (typeof timestamp === "string") {
    if (!isoPattern.test(timestamp) || Number.isNaN(Date.parse(timestamp))) return undefined
    return { id: id as RecordId, type, timestamp, payload }
  }
  if (
    typeof timestamp !== "number" ||
    !Number.isSafeInteger(timestamp) ||
    timestamp < minEpochMillis ||
    timestamp > maxEpochMillis
  )
    return undefined
  return { id: id as RecordId, type, timestamp: new Date(timestamp).toISOString(), payload }
}

/**
 * Validates one client record: `timestamp` as sent when ISO-8601, or epoch milliseconds read into
 * ISO-8601; every field beyond the four is kept in `attributes`.
 */
export const decodeRecord = (input: unknown): Result.Result<TelemetryRecord, InvalidRecord> => {
  // The record itself is one level; its payload may nest `maxNestingDepth` more.
  if (nestsDeeperThan(input, maxNestingDepth + 1))
    return Result.fail(new InvalidRecord({ reason: `record nests deeper than ${maxNestingDepth} levels` }))
  const checked = clientRecordFields(input)
  const decoded =
    checked === undefined
      ? Result.mapError(
          decodeClientRecord(input),
          (issue) => new InvalidRecord({ reason: formatIssue(issue, "record") })
        )
      : Result.succeed(checked)
  return Result.map(decoded, (fields) => {
    const attributes = extraFields(input as object)
    return construct(TelemetryRecord, attributes === undefined ? fields : { ...fields, attributes })
  })
}

/** `decodeRecord` through the schema alone: the reference for its fast path. */
export const decodeRecordWithSchema = (input: unknown): Result.Result<TelemetryRecord, InvalidRecord> =>
  nestsDeeperThan(input, maxNestingDepth + 1)
    ? Result.fail(new InvalidRecord({ reason: `record nests deeper than ${maxNestingDepth} levels` }))
    : Result.mapBoth(decodeClientRecord(input), {
        onFailure: (issue) => new InvalidRecord({ reason: formatIssue(issue, "record") }),
        onSuccess: (fields) => {
          const attributes = extraFields(input as object)
          return new TelemetryRecord(attributes === undefined ? fields : { ...fields, attributes }, {
            disableChecks: true
          })
        }
      })

/** The envelope the collector writes for `record`, received from `tenant` at `receivedAt` (checked already). */
export const makeEnvelope = (
  tenant: string,
  receivedAt: number,
  record: TelemetryRecord
): TelemetryEnvelope => construct(TelemetryEnvelope, { tenant, receivedAt, record })

const EnvelopeJson = Schema.fromJsonString(TelemetryEnvelope)
const decodeEnvelopeResult = SchemaParser.decodeUnknownResult(EnvelopeJson, { errors: "all" })
const encodeEnvelopeSync = Schema.encodeSync(EnvelopeJson)

const utf8 = new TextDecoder("utf-8", { fatal: true })
const encoder = new TextEncoder()

/**
 * Serializes an envelope to the bytes written to the stream (UTF-8 JSON): the schema's encoding,
 * which for these fields is `JSON.stringify` of them in their declared order, so it is written
 * so (a fifth of the collector's time per record went to the schema's encoder);
 * `encodeEnvelopeWithSchema` is the reference, compared byte for byte in the tests.
 */
export const encodeEnvelope = (envelope: TelemetryEnvelope): Uint8Array => {
  const { id, type, timestamp, payload, attributes } = envelope.record
  return encoder.encode(
    JSON.stringify({
      tenant: envelope.tenant,
      receivedAt: envelope.receivedAt,
      record:
        attributes === undefined
          ? { id, type, timestamp, payload }
          : { id, type, timestamp, payload, attributes }
    })
  )
}

/** `encodeEnvelope` through the schema's encoder. */
export const encodeEnvelopeWithSchema = (envelope: TelemetryEnvelope): Uint8Array =>
  encoder.encode(encodeEnvelopeSync(envelope))

/** An envelope's fields, as the processor reads them: what a `TelemetryEnvelope` holds, without the class. */
export interface EnvelopeFields {
  readonly tenant: string
  readonly receivedAt: number
  readonly record: {
    readonly id: RecordId
    readonly type: string
    readonly timestamp: string
    readonly payload: { readonly [key: string]: unknown }
    readonly attributes?: { readonly [key: string]: unknown }
  }
}

/**
 * The envelope schema's checks, written out, for the processor's hot path: a record the collector
 * wrote passes them in a fraction of the schema's time (the schema's decoding was half of the
 * processor's CPU per record). They accept only what `TelemetryEnvelope` accepts; anything they
 * do not accept goes through the schema, which gives the reason. So the errors are the schema's,
 * word for word (`Telemetry.fastDecode.test.ts` checks both on generated and mutated envelopes).
 */
const passesEnvelopeChecks = (value: unknown): value is EnvelopeFields => {
  if (!isJsonObject(value)) return false
  const { tenant, receivedAt, record } = value
  if (typeof tenant !== "string" || tenant.length < 1) return false
  if (
    typeof receivedAt !== "number" ||
    !Number.isSafeInteger(receivedAt) ||
    receivedAt < 0 ||
    receivedAt > maxEpochMillis
  )
    return false
  if (!isJsonObject(record)) return false
  const { id, type, timestamp, payload, attributes } = record
  if (!isBoundedString(id, 256) || (id.length > 170 && Buffer.byteLength(id, "utf8") > 512)) return false
  if (!isBoundedString(type, 128)) return false
  if (typeof timestamp !== "string" || !isoPattern.test(timestamp) || Number.isNaN(Date.parse(timestamp)))
    return false
  if (!isJsonObject(payload)) return false
  return attributes === undefined || isJsonObject(attributes)
}

/** The `TelemetryEnvelope` the schema would decode from fields that passed its checks. */
const envelopeOf = ({ tenant, receivedAt, record }: EnvelopeFields): TelemetryEnvelope => {
  const { id, type, timestamp, payload, attributes } = record
  const fields = { id, type, timestamp, payload }
  return construct(TelemetryEnvelope, {
    tenant,
    receivedAt,
    record: construct(TelemetryRecord, attributes === undefined ? fields : { ...fields, attributes })
  })
}

/** Reads an envelope from stream bytes; bytes that are not UTF-8 JSON of the right shape fail with a reason. */
export const decodeEnvelope = (data: Uint8Array): Result.Result<TelemetryEnvelope, InvalidRecord> => {
  const read = readEnvelope(data)
  return Result.isSuccess(read) && !(read.success instanceof TelemetryEnvelope)
    ? Result.succeed(envelopeOf(read.success))
    : (read as Result.Result<TelemetryEnvelope, InvalidRecord>)
}

/**
 * An envelope from a value already parsed from JSON (a record of a fallback message), when it
 * passes the envelope schema's checks: the instance the schema would decode. `undefined` means the
 * schema must decide, and give the reason.
 */
export const envelopeOfChecked = (value: unknown): TelemetryEnvelope | undefined =>
  passesEnvelopeChecks(value) ? envelopeOf(value) : undefined

/**
 * `decodeEnvelope` for the processor's hot path: the same checks and the same reasons, but what
 * the checks pass is answered as the parsed JSON itself, not copied into a `TelemetryEnvelope`
 * (fields it may carry beyond the envelope's are left in, and never read). A record the checks do
 * not pass is decoded by the schema.
 */
export const readEnvelope = (data: Uint8Array): Result.Result<EnvelopeFields, InvalidRecord> => {
  let text: string
  try {
    text = utf8.decode(data)
  } catch {
    return Result.fail(new InvalidRecord({ reason: "record data is not valid UTF-8" }))
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return decodeEnvelopeWithSchema(text)
  }
  return passesEnvelopeChecks(parsed) ? Result.succeed(parsed) : decodeEnvelopeWithSchema(text)
}

/** `decodeEnvelope` through the schema alone, for the record's text: the reference for the fast path. */
export const decodeEnvelopeWithSchema = (text: string): Result.Result<TelemetryEnvelope, InvalidRecord> =>
  Result.mapError(decodeEnvelopeResult(text), (issue) => new InvalidRecord({ reason: formatIssue(issue) }))
