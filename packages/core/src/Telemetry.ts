/**
 * The telemetry domain: what clients send, what the collector writes to the stream, and how a
 * decode failure is told back to a person.
 *
 * Guarantees: every record in the stream is a `TelemetryEnvelope` that was decoded by these
 * schemas, so a consumer can only meet a malformed record if something other than the collector
 * wrote to the stream — and then it gets a typed `InvalidRecord` with the path of the bad field.
 */
import { Result, Schema, SchemaIssue, SchemaParser } from "effect"

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

/** An ISO-8601 instant with an explicit zone (`Z` or `±hh:mm`), kept as the client wrote it. */
export const Timestamp = Schema.String.check(
  Schema.isPattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/, {
    message: "must be an ISO-8601 timestamp with a zone, e.g. 2026-11-24T10:00:00.000Z"
  }).abort(),
  Schema.makeFilter((s) => !Number.isNaN(Date.parse(s)) || "is not a real date")
)

/** A JSON object: the payload is indexed as an object, so scalars and arrays are refused here. */
export const Payload = Schema.Record(Schema.String, Schema.Unknown)

/** A telemetry record as clients send it. */
export class TelemetryRecord extends Schema.Class<TelemetryRecord>("TelemetryRecord")({
  id: RecordId,
  type: Schema.String.check(
    Schema.isMinLength(1, { message: "must not be empty" }),
    Schema.isMaxLength(128, { message: "must be at most 128 characters" })
  ),
  timestamp: Timestamp,
  payload: Payload
}) {}

/** What the collector puts in the stream: the record plus who sent it and when it arrived. */
export class TelemetryEnvelope extends Schema.Class<TelemetryEnvelope>("TelemetryEnvelope")({
  tenant: Schema.String.check(Schema.isMinLength(1)),
  /** Epoch milliseconds at which the collector accepted the record; the start of end-to-end delay. */
  receivedAt: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
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

const formatter = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => (issue._tag === "MissingKey" ? "is missing" : SchemaIssue.defaultLeafHook(issue))
})

/**
 * Turns a schema issue into one line per problem, each prefixed by the path of the bad field,
 * e.g. `type: Expected string` or `id: must not be empty`.
 */
export const formatIssue = (issue: SchemaIssue.Issue): string =>
  formatter(issue)
    .issues.map((problem) => {
      const path = (problem.path ?? []).map(String).join(".")
      return path.length > 0 ? `${path}: ${problem.message}` : problem.message
    })
    .join("; ")

const decodeRecordResult = SchemaParser.decodeUnknownResult(TelemetryRecord, {
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
  const stack: Array<readonly [unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!
    if (typeof current !== "object" || current === null) continue
    if (depth >= max) return true
    for (const child of Object.values(current)) stack.push([child, depth + 1])
  }
  return false
}

/** Validates one client record. */
export const decodeRecord = (input: unknown): Result.Result<TelemetryRecord, InvalidRecord> =>
  // The record itself is one level; its payload may nest `maxNestingDepth` more.
  nestsDeeperThan(input, maxNestingDepth + 1)
    ? Result.fail(new InvalidRecord({ reason: `record nests deeper than ${maxNestingDepth} levels` }))
    : Result.mapError(decodeRecordResult(input), (issue) => new InvalidRecord({ reason: formatIssue(issue) }))

const EnvelopeJson = Schema.fromJsonString(TelemetryEnvelope)
const decodeEnvelopeResult = SchemaParser.decodeUnknownResult(EnvelopeJson, { errors: "all" })
const encodeEnvelopeSync = Schema.encodeSync(EnvelopeJson)

const utf8 = new TextDecoder("utf-8", { fatal: true })
const encoder = new TextEncoder()

/** Serializes an envelope to the bytes written to the stream (UTF-8 JSON). */
export const encodeEnvelope = (envelope: TelemetryEnvelope): Uint8Array =>
  encoder.encode(encodeEnvelopeSync(envelope))

/** Reads an envelope from stream bytes; bytes that are not UTF-8 JSON of the right shape fail with a reason. */
export const decodeEnvelope = (data: Uint8Array): Result.Result<TelemetryEnvelope, InvalidRecord> => {
  let text: string
  try {
    text = utf8.decode(data)
  } catch {
    return Result.fail(new InvalidRecord({ reason: "record data is not valid UTF-8" }))
  }
  return Result.mapError(
    decodeEnvelopeResult(text),
    (issue) => new InvalidRecord({ reason: formatIssue(issue) })
  )
}
