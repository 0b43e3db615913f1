/**
 * The body of a fallback-queue message: a JSON object holding the envelopes of one or more
 * records, packed up to the queue's message and batch size limits so that an outage costs few
 * SQS requests.
 */
import { Effect, Result, Schema, SchemaParser } from "effect"
import { chunkBySize } from "../Batching.js"
import type * as FallbackQueue from "../FallbackQueue.js"
import { envelopeOfChecked, formatIssue, TelemetryEnvelope } from "../Telemetry.js"

export const FallbackMessage = Schema.Struct({
  version: Schema.Literal(1),
  /** How many times the redriver has parked these records again (0 when the collector parked them). */
  attempt: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(
    Schema.withDecodingDefault(Effect.succeed(0))
  ),
  records: Schema.Array(TelemetryEnvelope)
})
const FallbackMessageJson = Schema.fromJsonString(FallbackMessage)
const decodeResult = SchemaParser.decodeUnknownResult(FallbackMessageJson, { errors: "all" })

const decoder = new TextDecoder()

export interface Packable {
  readonly index: number
  /** The envelope already encoded as UTF-8 JSON. */
  readonly data: Uint8Array
}

export interface PackedMessage {
  readonly message: FallbackQueue.OutgoingMessage
  /** Which records (by `index`) the message carries. */
  readonly indexes: ReadonlyArray<number>
}

const footer = "]}"
const headerOf = (attempt: number) => `{"version":1,"attempt":${attempt},"records":[`

/**
 * Packs records into messages of at most `maxMessageBytes`, and messages into `send` batches of at
 * most `maxEntriesPerCall` entries and `maxBatchBytes`. A record is never split across messages.
 */
const nonCharacters = /[\ufffe\uffff]/
const nonCharactersAll = /[\ufffe\uffff]/g

export const encodeFallbackMessages = (
  records: ReadonlyArray<Packable>,
  limits: FallbackQueue.Limits,
  options: { readonly attempt?: number; readonly delaySeconds?: number } = {}
): { readonly batches: ReadonlyArray<ReadonlyArray<PackedMessage>> } => {
  const header = headerOf(options.attempt ?? 0)
  const overhead = header.length + footer.length
  const messages: Array<{ parts: Array<string>; indexes: Array<number>; bytes: number }> = []
  let current: (typeof messages)[number] | undefined
  for (const record of records) {
    let text = decoder.decode(record.data)
    let bytes = record.data.byteLength + 1
    // SQS refuses U+FFFE and U+FFFF in a body; they can only stand inside JSON strings, where
    // the \u escape reads back as the same character.
    if (nonCharacters.test(text)) {
      text = text.replace(nonCharactersAll, (c) => `\\u${c.charCodeAt(0).toString(16)}`)
      bytes = Buffer.byteLength(text, "utf8") + 1
    }
    if (current === undefined || current.bytes + bytes > limits.maxMessageBytes) {
      current = { parts: [], indexes: [], bytes: overhead }
      messages.push(current)
    }
    current.parts.push(text)
    current.indexes.push(record.index)
    current.bytes += bytes
  }
  const packed = messages.map((m, i): PackedMessage & { readonly bytes: number } => {
    const body = header + m.parts.join(",") + footer
    const message: FallbackQueue.OutgoingMessage =
      options.delaySeconds === undefined || options.delaySeconds === 0
        ? { id: `m${i}`, body }
        : { id: `m${i}`, body, delaySeconds: options.delaySeconds }
    return { message, indexes: m.indexes, bytes: m.bytes }
  })
  const batches = chunkBySize(packed, (m) => m.bytes, {
    maxCount: limits.maxEntriesPerCall,
    maxBytes: limits.maxBatchBytes
  }).map((batch) =>
    // Entry ids need only be unique within one call.
    batch.map(({ message, indexes }, i): PackedMessage => ({ message: { ...message, id: `m${i}` }, indexes }))
  )
  return { batches }
}

export interface DecodedFallbackMessage {
  readonly records: ReadonlyArray<TelemetryEnvelope>
  readonly attempt: number
}

/**
 * The message schema's checks, written out: JSON.parse, then the envelope checks of
 * `Telemetry.readEnvelope` for each record. The redriver decodes every message it receives, and
 * after an outage or in a spike the same records many times (in the simulator's black-friday run
 * the schema's decoding was a third of the CPU). `undefined` for anything they do not pass, which
 * the schema then decodes, so the reasons are the schema's, word for word.
 */
const decodeChecked = (body: string): DecodedFallbackMessage | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const { version, attempt, records } = parsed as Record<string, unknown>
  if (version !== 1 || !Array.isArray(records)) return undefined
  if (
    attempt !== undefined &&
    !(typeof attempt === "number" && Number.isSafeInteger(attempt) && attempt >= 0)
  )
    return undefined
  const envelopes: Array<TelemetryEnvelope> = []
  for (const record of records) {
    const envelope = envelopeOfChecked(record)
    if (envelope === undefined) return undefined
    envelopes.push(envelope)
  }
  return { records: envelopes, attempt: attempt ?? 0 }
}

/** Reads a fallback message body; a body that is not one fails with the reason. */
export const decodeFallbackMessage = (body: string): Result.Result<DecodedFallbackMessage, string> => {
  const checked = decodeChecked(body)
  return checked === undefined ? decodeFallbackMessageWithSchema(body) : Result.succeed(checked)
}

/** `decodeFallbackMessage` through the schema alone: the reference for the checks above. */
export const decodeFallbackMessageWithSchema = (
  body: string
): Result.Result<DecodedFallbackMessage, string> =>
  Result.match(decodeResult(body), {
    onFailure: (issue) => Result.fail(`fallback message is malformed: ${formatIssue(issue)}`),
    onSuccess: (m) => Result.succeed({ records: m.records, attempt: m.attempt })
  })
