/**
 * The collector bundle under fire: the bundle `npm run build` makes (built here by the same
 * `buildBundles`, into a folder of its own so a parallel build cannot swap it mid-run), run by
 * AWS's runtime client in one warm process and fed 10,000 hostile HTTP API and function URL events
 * back to back: bodies that are not JSON or not UTF-8, JSON of the wrong shape, records of the
 * wrong types, no API key or an unknown one, no or a wrong content type or coding, junk base64,
 * junk, corrupt or truncated gzip, bodies over the raw (4 MiB), decoded (10 MiB) and record-count
 * (1,000) limits, wrong methods and paths. Among them, every 50th event is a batch of valid
 * records, and valid records are mixed into batches of bad ones. Behind the function, as deployed:
 * kinesalite (the stream), fauxqs (the fallback queue) and moto's Secrets Manager (the API keys).
 * A fault proxy in front of kinesalite refuses a few PutRecords calls whole and throttles a few
 * entries of the others, as Kinesis does under load, so some records take the fallback queue.
 *
 * What must hold (`CollectorHttp`'s contract, through the real bundle and runtime client):
 * - every answer is the one its defect calls for — the 4xx and error code, with a JSON
 *   `{ error: { code, message } }` body — or 202 for records and 200 for a health check; never a
 *   5xx (nothing is down here, so not even a 503), an invocation error, a timeout or a new process;
 *   and nothing is logged at ERROR;
 * - the stream and the fallback queue together hold every valid record sent, exactly once and as
 *   sent (as the collector stores it: ISO timestamp, extra fields under `attributes`), and nothing
 *   else: no record of a refused request, no rejected record.
 *
 * The events are built before the first invocation from a fixed fast-check seed, printed with
 * the counts; `SPILLWAY_FUZZ_SEED=<n>` builds another set. A failure names the event's position
 * and category, so the same seed replays it. Bodies over a limit are a handful of fixed boundary
 * events (each limit, exactly at it and just over it), placed at seeded positions.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager"
import { KinesisClient, KinesisShardSource } from "@spillway/aws"
import {
  ApiKeys,
  Collect,
  CollectorHttp,
  FallbackMessages,
  type LambdaEvents,
  Telemetry
} from "@spillway/core"
import { Emulators, FaultProxy, Moto } from "@spillway/emulators"
import { Effect, Exit, Result, Scope } from "effect"
import * as fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildBundles, repositoryRoot } from "../scripts/bundles.js"
import { functionUrlEvent, httpApiEvent } from "./fixtures/Events.js"
import * as Deployment from "./support/Deployment.js"
import * as LambdaProcess from "./support/LambdaProcess.js"

const seed = Number(process.env.SPILLWAY_FUZZ_SEED ?? 20_261_124)
const hostileEvents = 10_000
/** Every `validEvery`-th event is a batch of valid records. */
const validEvery = 50

const apiKey = "spillway-fuzz-key-7c1e5a9b3d"
const tenant = "t"
const streamName = "spillway-fuzz"
const queueName = "spillway-fuzz-fallback"
const secretId = "spillway/fuzz/api-keys"

const mib = 1024 * 1024
const maxBodyBytes = CollectorHttp.defaultMaxBodyBytes
const maxDecodedBytes = CollectorHttp.defaultMaxDecodedBytes
const maxRecords = Collect.defaultMaxRecordsPerRequest

/**
 * The last epoch millisecond whose ISO form has a four-digit year. Later ones (up to 8.64e15, the
 * largest the schema takes) are accepted by `EpochMillisTimestamp` but cannot be encoded into the
 * stream: the request fails with a 500 (the `it.fails` test at the end). Valid records stay before.
 */
const lastFourDigitYearMillis = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

// ---- what is sent -------------------------------------------------------------------------------

type Shape = "httpApi" | "stagedHttpApi" | "functionUrl"
type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
type Encoding = "text" | "base64" | "gzip"

/** A record the collector must take, but its id (which its position in the run gives). */
interface ValidRecord {
  readonly idSuffix: string
  readonly type: string
  readonly timestamp: string | number
  readonly payloadJson: string
  /** Members beyond the four (`"host":"h-1"`), which the collector keeps under `attributes`. */
  readonly extras: ReadonlyArray<string>
}

/** An item of a JSON array of records: a valid record, or the JSON text of one that is not. */
type Item = { readonly valid: ValidRecord } | { readonly invalid: string }

type Body =
  | { readonly kind: "none" }
  /** Sent as the event's body, as it is. */
  | { readonly kind: "text"; readonly text: string }
  /** Sent base64-encoded (`isBase64Encoded`). */
  | { readonly kind: "bytes"; readonly bytes: Uint8Array }
  /** Sent as the body with `isBase64Encoded: true`, whatever it is. */
  | { readonly kind: "junkBase64"; readonly base64: string }
  /** JSON (or not) text, sent as text, base64 or gzip (base64); padded with spaces to `padTo` bytes before gzip. */
  | { readonly kind: "json"; readonly text: string; readonly encoding: Encoding; readonly padTo?: number }
  /** A JSON array of `items`, sent as `json` is; after a byte order mark (which UTF-8 decoding drops) if `bom`. */
  | {
      readonly kind: "records"
      readonly items: ReadonlyArray<Item>
      readonly encoding: Encoding
      readonly padTo?: number
      readonly bom?: boolean
    }

type Expected =
  | { readonly status: 200 | 202 }
  | {
      readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 415
      readonly codes: ReadonlyArray<CollectorHttp.ErrorCode>
    }

interface Spec {
  readonly category: string
  readonly shape: Shape
  readonly method: Method
  /** The route, before any stage prefix. */
  readonly path: string
  readonly query: string
  /** The request's own headers; `undefined` leaves one out. */
  readonly headers: Readonly<Record<string, string | undefined>>
  /** Add `content-length` with the body's real size. */
  readonly declareLength: boolean
  readonly body: Body
  readonly expected: Expected
}

/** An event ready to send, and what its answer must be. */
interface Case {
  readonly position: number
  readonly category: string
  readonly event: LambdaEvents.HttpApiEvent
  readonly expected: Expected
  /** For a body of records the stage judges (202, 400 NoValidRecords): the indexes it must reject. */
  readonly invalidIndexes?: ReadonlyArray<number>
  /** The records a 202 puts in the stream: id → the record as stored (`canonical`). */
  readonly delivered: ReadonlyArray<readonly [string, string]>
  readonly sentRecords: { readonly valid: number; readonly invalid: number }
}

// ---- arbitraries --------------------------------------------------------------------------------

/**
 * Any code point: ASCII mostly, then the rest of the BMP and the astral planes, with a bias for
 * the ones that break things: NUL and other controls, BOM, non-characters, lone surrogates, quotes.
 */
const hostileChar = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }) },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: 0x80, max: 0xffff })
      .filter((c) => c < 0xd800 || c > 0xdfff)
      .map((c) => String.fromCharCode(c))
  },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "\u0000",
      "\u0007",
      "\u007f",
      "\ufeff",
      "\ufffe",
      "\uffff",
      "\u2028",
      '"',
      "\\",
      "\n"
    )
  }
)
const anyText = (maxLength: number, minLength = 0) => fc.string({ unit: hostileChar, minLength, maxLength })

const shapeArb = fc.constantFrom<Shape>("httpApi", "stagedHttpApi", "functionUrl")
const queryArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: fc.constantFrom("source=agent", "a=1&a=2", "%E2%82%AC=%FF", "x", "?=&") }
)

const recordDates = fc.date({
  min: new Date(Telemetry.minEpochMillis),
  max: new Date(lastFourDigitYearMillis),
  noInvalidDate: true
})
const timestampArb: fc.Arbitrary<string | number> = fc.oneof(
  recordDates.map((d) => d.toISOString()),
  recordDates.map((d) => d.getTime()),
  fc
    .tuple(recordDates, fc.constantFrom("+00:00", "-00:00", "+05:30", "-08:00", "+14:00", "-12:00"))
    .map(([d, zone]) => `${d.toISOString().slice(0, 19)}${zone}`),
  fc
    .tuple(recordDates, fc.stringMatching(/^\d{1,9}$/))
    .map(([d, fraction]) => `${d.toISOString().slice(0, 19)}.${fraction}Z`)
)

/** `depth` objects nested in each other (`{"a":{"a":{}}}` is 3). */
const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${"}".repeat(depth - 1)}`

const recordFields = new Set(["id", "type", "timestamp", "payload"])
const payloadJsonArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .dictionary(anyText(12), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 })
      .map((payload) => JSON.stringify(payload))
  },
  // The deepest a payload may nest: the record is one level, its payload up to 20 more.
  { weight: 1, arbitrary: fc.constant(nestedObjects(Telemetry.maxNestingDepth)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"__proto__":{"polluted":true},"n":1}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      '{"toJSON":"x","valueOf":1,"hasOwnProperty":false}'
    )
  }
)
const extrasArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<ReadonlyArray<string>>([]) },
  {
    weight: 3,
    arbitrary: fc
      .dictionary(
        anyText(10, 1).filter((name) => !recordFields.has(name) && name !== "__proto__"),
        fc.jsonValue({ maxDepth: 2 }),
        { minKeys: 1, maxKeys: 3 }
      )
      .map((extras) => Object.entries(extras).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`))
  },
  { weight: 1, arbitrary: fc.constant(['"__proto__":{"polluted":true}', '"host":"h-1"']) }
)

const validRecordArb: fc.Arbitrary<ValidRecord> = fc.record({
  // Ids are unique by their prefix (position and index); the suffix is there to be hostile.
  idSuffix: fc.oneof({ weight: 3, arbitrary: fc.constant("") }, { weight: 1, arbitrary: anyText(60) }),
  type: anyText(40, 1),
  timestamp: timestampArb,
  payloadJson: payloadJsonArb,
  extras: extrasArb
})

/** Members of a record as JSON text, in order. */
const members = (id: string, r: ValidRecord): Array<readonly [string, string]> => [
  ["id", JSON.stringify(id)],
  ["type", JSON.stringify(r.type)],
  ["timestamp", JSON.stringify(r.timestamp)],
  ["payload", r.payloadJson]
]
const objectText = (fields: ReadonlyArray<readonly [string, string]>, extras: ReadonlyArray<string> = []) =>
  `{${[...fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`), ...extras].join(",")}}`

/** Values each field must never be taken with (`undefined`: the field left out). */
const wrongValues: Readonly<Record<string, ReadonlyArray<string | undefined>>> = {
  id: [
    undefined,
    "null",
    "0",
    "true",
    "[]",
    "{}",
    '""',
    JSON.stringify("b".repeat(257)),
    // 171 characters, 513 UTF-8 bytes: over OpenSearch's _id limit though under Kinesis' 256.
    JSON.stringify("€".repeat(171))
  ],
  type: [undefined, "null", "1", '""', "[]", JSON.stringify("t".repeat(129))],
  timestamp: [
    undefined,
    "null",
    "true",
    "[]",
    "{}",
    '"yesterday"',
    '"2026-11-24T10:00:00"',
    '"2026-11-24 10:00:00Z"',
    '"2026-13-01T00:00:00Z"',
    '"2026-11-24T25:00:00Z"',
    '"2026-11-24T10:00:00+99:99"',
    '"2026-11-24T10:00:00.1234567891Z"',
    '"1764000000000"',
    "1764000000",
    "99999999999",
    "1764000000000.5",
    "8640000000000001",
    "-1"
  ],
  payload: [
    undefined,
    "null",
    "[]",
    '"x"',
    "1",
    "true",
    '[{"a":1}]',
    nestedObjects(Telemetry.maxNestingDepth + 1)
  ]
}

const corruptionArb = fc
  .constantFrom(...Object.keys(wrongValues))
  .chain((field) => fc.constantFrom(...wrongValues[field]!).map((value) => ({ field, value })))

const invalidItemArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        validRecordArb,
        fc.uniqueArray(corruptionArb, { minLength: 1, maxLength: 3, selector: (c) => c.field })
      )
      .map(([record, corruptions]) => {
        const fields = members("bad-record", record).flatMap(
          ([name, value]): Array<readonly [string, string]> => {
            const corruption = corruptions.find((c) => c.field === name)
            if (corruption === undefined) return [[name, value]]
            return corruption.value === undefined ? [] : [[name, corruption.value]]
          }
        )
        return objectText(fields, record.extras)
      })
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== "object" || v === null || Array.isArray(v)),
        fc.constantFrom<unknown>(null, [], [{ id: "bad-record" }], "record", 0)
      )
      .map((value) => JSON.stringify(value))
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: Telemetry.maxNestingDepth + 2, max: 3000 })
      .chain((depth) =>
        fc.constantFrom(
          `${"[".repeat(depth)}${"]".repeat(depth)}`,
          `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
        )
      )
  }
)

/** `valid` and `invalid` items in an order `placement` decides (true: a valid one next). */
const interleave = (
  valid: ReadonlyArray<ValidRecord>,
  invalid: ReadonlyArray<string>,
  placement: ReadonlyArray<boolean>
): Array<Item> => {
  const items: Array<Item> = []
  let v = 0
  let i = 0
  for (let at = 0; v < valid.length || i < invalid.length; at++) {
    const takeValid = i >= invalid.length || (v < valid.length && (placement[at] ?? true))
    items.push(takeValid ? { valid: valid[v++]! } : { invalid: invalid[i++]! })
  }
  return items
}

/** How a well-formed request carries its body: shape, content type and coding, noise headers. */
interface Transport {
  readonly shape: Shape
  readonly query: string
  readonly encoding: Encoding
  readonly headers: Readonly<Record<string, string>>
  readonly declareLength: boolean
}

const noiseHeadersArb = fc.dictionary(
  fc
    .string({
      unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-"),
      minLength: 1,
      maxLength: 16
    })
    .map((name) => `x-${name}`)
    .filter((name) => name !== "x-api-key"),
  anyText(40),
  { maxKeys: 4 }
)
const transportOf = (encoding: fc.Arbitrary<Encoding>): fc.Arbitrary<Transport> =>
  fc
    .record({
      shape: shapeArb,
      query: queryArb,
      encoding,
      contentType: fc.constantFrom(
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON;charset="UTF-8"',
        "application/json; charset=utf8; profile=telemetry"
      ),
      gzipCoding: fc.constantFrom("gzip", "x-gzip", "GZIP", " gzip "),
      plainCoding: fc.constantFrom<string | undefined>(undefined, undefined, "", "identity"),
      origin: fc.constantFrom<string | undefined>(undefined, undefined, undefined, "https://evil.example"),
      noise: noiseHeadersArb,
      declareLength: fc.boolean()
    })
    .map((t) => {
      const coding = t.encoding === "gzip" ? t.gzipCoding : t.plainCoding
      return {
        shape: t.shape,
        query: t.query,
        encoding: t.encoding,
        declareLength: t.declareLength,
        headers: {
          ...t.noise,
          "content-type": t.contentType,
          ...(coding === undefined ? {} : { "content-encoding": coding }),
          ...(t.origin === undefined ? {} : { origin: t.origin })
        }
      }
    })
const transportArb = transportOf(fc.constantFrom<Encoding>("text", "text", "base64", "gzip"))
const gzipTransportArb = transportOf(fc.constant<Encoding>("gzip"))

const post = (
  category: string,
  t: Transport,
  body: Body,
  expected: Expected,
  headers: Readonly<Record<string, string | undefined>> = {}
): Spec => ({
  category,
  shape: t.shape,
  method: "POST",
  path: CollectorHttp.telemetryPath,
  query: t.query,
  headers: { ...t.headers, "x-api-key": apiKey, ...headers },
  declareLength: t.declareLength,
  body,
  expected
})

const refused = (
  status: 400 | 401 | 403 | 404 | 405 | 413 | 415,
  ...codes: Array<CollectorHttp.ErrorCode>
) => ({
  status,
  codes
})

const someValid = fc.array(validRecordArb, { minLength: 1, maxLength: 3 })
const recordsBody = (
  items: ReadonlyArray<ValidRecord>,
  encoding: Encoding
): Extract<Body, { readonly kind: "records" }> => ({
  kind: "records",
  items: items.map((valid) => ({ valid })),
  encoding
})
const parses = (text: string) => {
  try {
    JSON.parse(Buffer.from(text, "utf8").toString("utf8"))
    return true
  } catch {
    return false
  }
}
const jsonOf = (records: ReadonlyArray<ValidRecord>) =>
  `[${records.map((r) => objectText(members("never", r), r.extras)).join(",")}]`

/** Each kind of hostile request, with its weight among the 10,000. */
const hostileArbs: ReadonlyArray<{ readonly weight: number; readonly arbitrary: fc.Arbitrary<Spec> }> = [
  {
    weight: 10,
    arbitrary: fc
      .record({
        t: transportArb,
        text: fc.oneof(
          anyText(200).filter((s) => !parses(s)),
          fc
            .tuple(someValid, fc.double({ min: 0, max: 1, noNaN: true }))
            .map(([records, cut]) => {
              const json = jsonOf(records)
              return json.slice(0, Math.floor(cut * (json.length - 1)))
            })
            .filter((s) => !parses(s)),
          someValid.map((records) => `${jsonOf(records)}${jsonOf(records)}`),
          fc.constantFrom("", " ", "[", "]", "[{]", "[{},]", "{'id':1}", "NaN", "[NaN]", "undefined", "[1,2")
        )
      })
      .map(({ t, text }) =>
        post("not JSON", t, { kind: "json", text, encoding: t.encoding }, refused(400, "InvalidJson"))
      )
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ t: transportArb, base64: fc.boolean() })
      .map(({ t, base64 }) =>
        post(
          "no body",
          t,
          base64 ? { kind: "junkBase64", base64: "" } : { kind: "none" },
          t.encoding === "gzip" ? refused(400, "InvalidGzip") : refused(400, "InvalidJson")
        )
      )
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        t: transportArb,
        bytes: fc.uint8Array({ maxLength: 100 }),
        at: fc.nat(),
        bad: fc.constantFrom(
          [0xff],
          [0xc0, 0xaf],
          [0xed, 0xa0, 0x80],
          [0x80],
          [0xe2, 0x82],
          [0xf4, 0x90, 0x80, 0x80]
        )
      })
      .map(({ t, bytes, at, bad }) => {
        const cut = bytes.length === 0 ? 0 : at % (bytes.length + 1)
        const body = Buffer.concat([
          Buffer.from('["'),
          bytes.subarray(0, cut),
          Buffer.from(bad),
          bytes.subarray(cut)
        ])
        return post(
          "not UTF-8",
          { ...t, headers: { ...t.headers, "content-encoding": "identity" } },
          { kind: "bytes", bytes: body },
          refused(400, "InvalidJson")
        )
      })
  },
  {
    weight: 8,
    arbitrary: fc
      .record({
        t: transportArb,
        value: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }).filter((v) => !Array.isArray(v)),
          fc.constant([]),
          someValid.map((records) => ({ records: JSON.parse(jsonOf(records)) as unknown }))
        )
      })
      .map(({ t, value }) =>
        post(
          "wrong JSON type",
          t,
          { kind: "json", text: JSON.stringify(value), encoding: t.encoding },
          refused(400, "InvalidBody")
        )
      )
  },
  {
    weight: 12,
    arbitrary: fc
      .record({ t: transportArb, items: fc.array(invalidItemArb, { minLength: 1, maxLength: 20 }) })
      .map(({ t, items }) =>
        post(
          "invalid records",
          t,
          { kind: "records", items: items.map((invalid) => ({ invalid })), encoding: t.encoding },
          refused(400, "NoValidRecords")
        )
      )
  },
  {
    weight: 10,
    arbitrary: fc
      .record({
        t: transportArb,
        valid: fc.array(validRecordArb, { minLength: 1, maxLength: 15 }),
        invalid: fc.array(invalidItemArb, { minLength: 1, maxLength: 15 }),
        placement: fc.array(fc.boolean(), { maxLength: 30 })
      })
      .map(({ t, valid, invalid, placement }) =>
        post(
          "valid and invalid records",
          t,
          { kind: "records", items: interleave(valid, invalid, placement), encoding: t.encoding },
          { status: 202 }
        )
      )
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        key: fc.constantFrom<Readonly<Record<string, string | undefined>>>(
          { "x-api-key": undefined },
          { "x-api-key": "" },
          { "x-api-key": undefined, "x-apikey": apiKey },
          { "x-api-key": undefined, "api-key": apiKey },
          { "x-api-key": undefined, authorization: `Bearer ${apiKey}` }
        ),
        // The key is judged first: a missing one is the answer, whatever else is wrong.
        alsoWrong: fc.constantFrom<Readonly<Record<string, string | undefined>>>(
          {},
          { "content-type": undefined },
          { "content-encoding": "br" },
          { "content-length": "99999999" }
        )
      })
      .map(({ t, records, key, alsoWrong }) =>
        post("no API key", t, recordsBody(records, t.encoding), refused(401, "MissingApiKey"), {
          ...alsoWrong,
          ...key
        })
      )
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        key: fc.oneof(
          anyText(300, 1).filter((k) => k !== apiKey),
          fc.constantFrom(
            `${apiKey} `,
            ` ${apiKey}`,
            apiKey.toUpperCase(),
            apiKey.slice(0, -1),
            `${apiKey}x`,
            `${apiKey}, ${apiKey}`,
            `${apiKey},${apiKey}`,
            `Bearer ${apiKey}`,
            ApiKeys.hashKey(apiKey),
            apiKey.replace("-", "\u2010"),
            " ",
            "x".repeat(8192)
          )
        ),
        junkBody: fc.boolean()
      })
      .map(({ t, records, key, junkBody }) =>
        post(
          "unknown API key",
          t,
          junkBody ? { kind: "text", text: "not json" } : recordsBody(records, t.encoding),
          refused(401, "UnknownApiKey"),
          { "x-api-key": key }
        )
      )
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        contentType: fc.oneof(
          fc.constantFrom(
            undefined,
            "",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
            "application/json; charset=utf-16",
            "application/json; charset=",
            "application/jsonl",
            "application/x-ndjson",
            "application/json-patch+json",
            "application/json, text/plain",
            "*/*"
          ),
          fc.stringMatching(/^[a-z]{1,12}\/[a-z0-9.+-]{1,20}$/).filter((type) => type !== "application/json")
        )
      })
      .map(({ t, records, contentType }) =>
        post(
          "unsupported content type",
          t,
          recordsBody(records, t.encoding),
          refused(415, "UnsupportedMediaType"),
          {
            "content-type": contentType
          }
        )
      )
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        coding: fc.constantFrom(
          "br",
          "deflate",
          "compress",
          "zstd",
          "gzip, br",
          "br, gzip",
          "gzip,gzip",
          "gzip;q=1",
          "identity, gzip",
          "x-compress",
          "chunked",
          "*"
        )
      })
      .map(({ t, records, coding }) =>
        post(
          "unsupported content coding",
          t,
          recordsBody(records, t.encoding === "gzip" ? "base64" : t.encoding),
          refused(415, "UnsupportedContentEncoding"),
          { "content-encoding": coding }
        )
      )
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        length: fc.oneof(
          fc.integer({ min: maxBodyBytes + 1, max: 2 ** 31 - 1 }).map(String),
          fc.constantFrom(String(maxBodyBytes + 1), "1e9", "0x7fffffff", "  99999999  ", `${maxBodyBytes}.5`)
        )
      })
      .map(({ t, records, length }) =>
        post(
          "declared length over 4 MiB",
          { ...t, declareLength: false },
          recordsBody(records, t.encoding),
          refused(413, "PayloadTooLarge"),
          { "content-length": length }
        )
      )
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        t: transportArb,
        base64: fc.oneof(
          anyText(300),
          fc.stringMatching(/^[A-Za-z0-9+/=_-]{1,200}$/),
          fc.constantFrom("====", "!!!!", "%%%", "\u0000\u0000", "e30", "W10=")
        )
      })
      .map(({ t, base64 }) =>
        post(
          "junk base64",
          t,
          { kind: "junkBase64", base64 },
          t.encoding === "gzip"
            ? refused(400, "InvalidGzip")
            : refused(400, "InvalidJson", "InvalidBody", "NoValidRecords")
        )
      )
  },
  {
    weight: 8,
    arbitrary: fc
      .record({
        t: gzipTransportArb,
        records: someValid,
        junk: fc.uint8Array({ maxLength: 200 }),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        flip: fc.integer({ min: 1, max: 255 }),
        tail: fc.uint8Array({ minLength: 1, maxLength: 20 }),
        kind: fc.constantFrom("junk", "truncated", "corrupt", "sent as text", "trailing garbage")
      })
      .map(({ t, records, junk, at, flip, tail, kind }): Spec => {
        const zipped = gzipSync(Buffer.from(jsonOf(records), "utf8"))
        const coding = { "content-encoding": t.headers["content-encoding"] ?? "gzip" }
        // A byte of the compressed data or of the trailer (CRC-32, length): not the header, whose
        // mtime, flags and OS bytes gunzip ignores, nor the first and last bytes of the data, which
        // may hold padding bits.
        const corruptible = [
          ...Array.from({ length: Math.max(0, zipped.length - 20) }, (_, i) => 11 + i),
          ...Array.from({ length: 8 }, (_, i) => zipped.length - 8 + i)
        ]
        const flipped = corruptible[Math.min(corruptible.length - 1, Math.floor(at * corruptible.length))]!
        const bodies: Record<typeof kind, Body> = {
          junk: { kind: "bytes", bytes: junk },
          truncated: {
            kind: "bytes",
            bytes: zipped.subarray(0, Math.min(zipped.length - 1, Math.floor(at * zipped.length)))
          },
          corrupt: { kind: "bytes", bytes: zipped.map((byte, i) => (i === flipped ? byte ^ flip : byte)) },
          // Binary sent as a text body: each byte over 0x7f becomes two UTF-8 bytes.
          "sent as text": { kind: "text", text: zipped.toString("latin1") },
          // gunzip ignores trailing zeros, nothing else.
          "trailing garbage": {
            kind: "bytes",
            bytes: Buffer.concat([zipped, Buffer.from([tail[0] === 0 ? 1 : tail[0]!]), tail.subarray(1)])
          }
        }
        return post(`bad gzip: ${kind}`, t, bodies[kind], refused(400, "InvalidGzip"), coding)
      })
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        t: gzipTransportArb,
        records: someValid,
        inner: fc.constantFrom("not JSON", "not UTF-8", "not an array", "gzip in gzip")
      })
      .map(({ t, records, inner }) => {
        const json = Buffer.from(jsonOf(records), "utf8")
        const payloads = {
          "not JSON": [Buffer.from("records: 1"), "InvalidJson"],
          "not UTF-8": [
            Buffer.concat([Buffer.from('["'), Buffer.from([0xff, 0xfe]), Buffer.from('"]')]),
            "InvalidJson"
          ],
          "not an array": [Buffer.from('{"records":[]}'), "InvalidBody"],
          "gzip in gzip": [gzipSync(json), "InvalidJson"]
        } as const
        const [inflated, code] = payloads[inner]
        return post(
          `gzip of junk: ${inner}`,
          t,
          { kind: "bytes", bytes: gzipSync(inflated) },
          refused(400, code),
          { "content-encoding": "gzip" }
        )
      })
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ t: transportArb, records: someValid })
      .map(({ t, records }) =>
        post(
          "gzip without content-encoding",
          t,
          { kind: "bytes", bytes: gzipSync(Buffer.from(jsonOf(records))) },
          refused(400, "InvalidJson"),
          { "content-encoding": undefined }
        )
      )
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        method: fc.constantFrom<Method>("GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
        preflightHalf: fc.constantFrom<Readonly<Record<string, string>>>(
          {},
          { origin: "https://app.example.com" },
          { "access-control-request-method": "POST" }
        )
      })
      .map(({ t, records, method, preflightHalf }) => ({
        ...post("wrong method", t, recordsBody(records, t.encoding), refused(405, "MethodNotAllowed"), {
          origin: undefined,
          ...preflightHalf
        }),
        method
      }))
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        t: transportArb,
        origin: fc.oneof(
          fc.webUrl().map((url) => new URL(url).origin),
          fc.constantFrom("null", "*", "file://")
        ),
        key: fc.constantFrom(apiKey, undefined)
      })
      .map(({ t, origin, key }) => ({
        ...post("CORS preflight", t, { kind: "none" }, refused(403, "OriginNotAllowed"), {
          origin,
          "access-control-request-method": "POST",
          "x-api-key": key
        }),
        method: "OPTIONS" as const
      }))
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        t: transportArb,
        method: fc.constantFrom<Method>("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
        junkBody: anyText(50)
      })
      .map(({ t, method, junkBody }) => ({
        ...post(
          method === "GET" || method === "HEAD"
            ? "health check, junk body, no key"
            : "wrong method on /healthz",
          t,
          { kind: "text", text: junkBody },
          method === "GET" || method === "HEAD" ? { status: 200 } : refused(405, "MethodNotAllowed"),
          { "x-api-key": undefined }
        ),
        method,
        path: CollectorHttp.healthPath
      }))
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        t: transportArb,
        records: someValid,
        method: fc.constantFrom<Method>("GET", "POST", "POST", "PUT", "OPTIONS"),
        path: fc.oneof(
          fc.webPath(),
          anyText(100).map((s) => `/${s}`),
          fc.constantFrom(
            "",
            "/",
            "/v1/telemetry/",
            "/v1/telemetry/x",
            "/V1/telemetry",
            "/v1//telemetry",
            "//v1/telemetry",
            "/v2/telemetry",
            "/v1/telemetry%00",
            "/v1/telemetry;x",
            "/v1/%74elemetry",
            "/prod/v1/telemetry",
            "/healthz/",
            "/HEALTHZ",
            `/${"a".repeat(5000)}`
          )
        )
      })
      .filter(({ path }) => {
        const route = path.split("?")[0]
        return route !== CollectorHttp.telemetryPath && route !== CollectorHttp.healthPath
      })
      .map(({ t, records, method, path }) => ({
        ...post("unknown path", t, recordsBody(records, t.encoding), refused(404, "NotFound")),
        method,
        path
      }))
  }
]

const hostileArb = fc.oneof(...hostileArbs)

const validBatchArb: fc.Arbitrary<Spec> = fc
  .record({
    t: transportArb,
    records: fc.array(validRecordArb, { minLength: 1, maxLength: 50 }),
    bom: fc.constantFrom(false, false, false, true)
  })
  .map(({ t, records, bom }) =>
    post("valid batch", t, { ...recordsBody(records, t.encoding), bom }, { status: 202 })
  )

/** A record of about `bytes` bytes. */
const bulkyRecord = (i: number, bytes: number): ValidRecord => ({
  idSuffix: "",
  type: "bulk",
  timestamp: "2026-11-24T10:00:00.000Z",
  payloadJson: JSON.stringify({ i, fill: "x".repeat(bytes) }),
  extras: []
})
/** Records for bodies at a size limit (the rest is padding). */
const bulkyRecords = (count: number, bytes: number): Array<Item> =>
  Array.from({ length: count }, (_, i) => ({ valid: bulkyRecord(i, bytes) }))

const plain: Transport = {
  shape: "httpApi",
  query: "",
  encoding: "text",
  headers: { "content-type": "application/json" },
  declareLength: true
}
const gzipped: Transport = {
  ...plain,
  encoding: "gzip",
  headers: { ...plain.headers, "content-encoding": "gzip" }
}
const viaBase64: Transport = { ...plain, encoding: "base64" }

/** Each limit exactly at it (accepted) and just over it (refused): a few, since they are big. */
const boundarySpecs = (): ReadonlyArray<Spec> => [
  post(
    "boundary: body of exactly 4 MiB",
    plain,
    { kind: "records", items: bulkyRecords(50, 40_000), encoding: "text", padTo: maxBodyBytes },
    { status: 202 }
  ),
  post(
    "boundary: body of exactly 4 MiB, base64",
    viaBase64,
    { kind: "records", items: bulkyRecords(50, 40_000), encoding: "base64", padTo: maxBodyBytes },
    { status: 202 }
  ),
  post(
    "boundary: body 1 byte over 4 MiB",
    plain,
    { kind: "records", items: bulkyRecords(50, 40_000), encoding: "text", padTo: maxBodyBytes + 1 },
    refused(413, "PayloadTooLarge")
  ),
  post(
    "boundary: body 1 byte over 4 MiB, base64",
    viaBase64,
    { kind: "records", items: bulkyRecords(50, 40_000), encoding: "base64", padTo: maxBodyBytes + 1 },
    refused(413, "PayloadTooLarge")
  ),
  post(
    "boundary: body of 5.5 MB",
    plain,
    { kind: "records", items: bulkyRecords(5, 1000), encoding: "text", padTo: 5_500_000 },
    refused(413, "PayloadTooLarge")
  ),
  post(
    "boundary: gzip of exactly 10 MiB",
    gzipped,
    { kind: "records", items: bulkyRecords(200, 2_000), encoding: "gzip", padTo: maxDecodedBytes },
    { status: 202 }
  ),
  post(
    "boundary: gzip of 10 MiB + 1 byte",
    gzipped,
    { kind: "records", items: bulkyRecords(200, 2_000), encoding: "gzip", padTo: maxDecodedBytes + 1 },
    refused(413, "PayloadTooLarge")
  ),
  post(
    "boundary: gzip bomb (64 MiB of zeros)",
    gzipped,
    { kind: "bytes", bytes: gzipSync(Buffer.alloc(64 * mib)) },
    refused(413, "PayloadTooLarge")
  ),
  post(
    "boundary: exactly 1,000 records",
    plain,
    { kind: "records", items: bulkyRecords(maxRecords, 10), encoding: "text" },
    { status: 202 }
  ),
  post(
    "boundary: 1,001 records",
    gzipped,
    { kind: "records", items: bulkyRecords(maxRecords + 1, 10), encoding: "gzip" },
    refused(400, "InvalidBody")
  ),
  post(
    "boundary: 20,000 empty records",
    plain,
    { kind: "json", text: `[${Array.from({ length: 20_000 }, () => "{}").join(",")}]`, encoding: "text" },
    refused(400, "InvalidBody")
  ),
  post(
    "boundary: one record over 1 MiB among valid ones",
    plain,
    {
      kind: "records",
      items: [
        ...bulkyRecords(1, 10),
        { invalid: objectText(members("bad-record", bulkyRecord(1, mib))) },
        ...bulkyRecords(1, 10)
      ],
      encoding: "text"
    },
    { status: 202 }
  ),
  post(
    "boundary: 1,000 invalid records with long reasons",
    gzipped,
    {
      kind: "records",
      items: Array.from({ length: maxRecords }, (_, i) => ({
        invalid: JSON.stringify({
          id: `bad-${"€".repeat(200)}`,
          type: "t".repeat(2000),
          timestamp: `${i}`.repeat(500)
        })
      })),
      encoding: "gzip"
    },
    refused(400, "NoValidRecords")
  ),
  post(
    "boundary: array nested 100,000 deep",
    plain,
    { kind: "json", text: `[${"[".repeat(100_000)}${"]".repeat(100_000)}]`, encoding: "text" },
    refused(400, "NoValidRecords")
  ),
  post(
    "boundary: object nested 100,000 deep",
    gzipped,
    { kind: "json", text: `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`, encoding: "gzip" },
    refused(400, "InvalidBody")
  ),
  post(
    "boundary: 1,000 noise headers",
    {
      ...plain,
      headers: {
        ...plain.headers,
        ...Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x-noise-${i}`, "n".repeat(100)]))
      }
    },
    { kind: "records", items: bulkyRecords(3, 10), encoding: "text" },
    { status: 202 }
  )
]

// ---- from spec to event ------------------------------------------------------------------------

/** JSON text with object keys sorted, so that two parses of the same record compare equal. */
const canonical = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (typeof value === "object" && value !== null) {
    const object = value as Record<string, unknown>
    return `{${Object.keys(object)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(object[key])}`)
      .join(",")}}`
  }
  return JSON.stringify(value)
}

/** A record as the collector stores it (`TelemetryRecord`): ISO timestamp, extra fields under `attributes`. */
const storedForm = (sent: Record<string, unknown>): string => {
  const rest = Object.entries(sent).filter(([name]) => !recordFields.has(name))
  const timestamp =
    typeof sent.timestamp === "number" ? new Date(sent.timestamp).toISOString() : sent.timestamp
  return canonical(
    Object.fromEntries([
      ["id", sent.id],
      ["type", sent.type],
      ["timestamp", timestamp],
      ["payload", sent.payload],
      ...(rest.length === 0 ? [] : [["attributes", Object.fromEntries(rest)]])
    ])
  )
}

const padded = (text: string, padTo: number | undefined) => {
  const bytes = Buffer.from(text, "utf8")
  if (padTo === undefined) return bytes
  if (bytes.length > padTo)
    throw new Error(`a boundary body is ${bytes.length} bytes before padding to ${padTo}`)
  return Buffer.concat([bytes, Buffer.alloc(padTo - bytes.length, 0x20)])
}

const build = (spec: Spec, position: number): Case => {
  const accepted = spec.expected.status === 202
  const delivered: Array<readonly [string, string]> = []
  const invalidIndexes: Array<number> = []
  let text: string | undefined
  let encoding: Encoding = "text"
  let padTo: number | undefined
  const { body } = spec
  if (body.kind === "records") {
    const rendered = body.items.map((item, index) => {
      if ("invalid" in item) {
        invalidIndexes.push(index)
        return item.invalid
      }
      // `v`: must reach the stream; `x`: sent in a request the collector must refuse.
      const id = `${accepted ? "v" : "x"}${position}.${index}-${item.valid.idSuffix}`
      const json = objectText(members(id, item.valid), item.valid.extras)
      if (accepted) delivered.push([id, storedForm(JSON.parse(json) as Record<string, unknown>)])
      return json
    })
    text = `${body.bom === true ? "\ufeff" : ""}[${rendered.join(",")}]`
    encoding = body.encoding
    padTo = body.padTo
  } else if (body.kind === "json") {
    text = body.text
    encoding = body.encoding
    padTo = body.padTo
  }
  const sent =
    text !== undefined
      ? encoding === "gzip"
        ? ({ kind: "bytes", bytes: gzipSync(padded(text, padTo)) } as const)
        : encoding === "base64"
          ? ({ kind: "bytes", bytes: padded(text, padTo) } as const)
          : ({ kind: "text", text: padded(text, padTo).toString("utf8") } as const)
      : body
  const rawBytes =
    sent.kind === "text"
      ? Buffer.byteLength(sent.text, "utf8")
      : sent.kind === "bytes"
        ? sent.bytes.byteLength
        : sent.kind === "junkBase64"
          ? Buffer.from(sent.base64, "base64").byteLength
          : 0
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(spec.headers)) if (value !== undefined) headers[name] = value
  if (spec.declareLength && sent.kind !== "none") headers["content-length"] = String(rawBytes)
  const options = {
    method: spec.method,
    path: spec.path,
    query: spec.query,
    headers,
    ...(sent.kind === "text" ? { body: sent.text } : sent.kind === "bytes" ? { body: sent.bytes } : {}),
    ...(spec.shape === "stagedHttpApi" ? { stage: "prod" } : {})
  }
  const shaped = spec.shape === "functionUrl" ? functionUrlEvent(options) : httpApiEvent(options)
  const event = sent.kind === "junkBase64" ? { ...shaped, body: sent.base64, isBase64Encoded: true } : shaped
  const judged =
    accepted ||
    ("codes" in spec.expected && spec.expected.codes.includes("NoValidRecords") && body.kind === "records")
  return {
    position,
    category: spec.category,
    event,
    expected: spec.expected,
    ...(judged ? { invalidIndexes } : {}),
    delivered,
    sentRecords: {
      valid: body.kind === "records" ? body.items.length - invalidIndexes.length : 0,
      invalid: invalidIndexes.length
    }
  }
}

/** The run: `hostileEvents` hostile events, a valid batch every `validEvery`-th, the boundary events at seeded places. */
const buildRun = (): ReadonlyArray<Case> => {
  const hostile = fc.sample(hostileArb, { seed, numRuns: hostileEvents })
  const valid = fc.sample(validBatchArb, {
    seed: seed + 1,
    numRuns: Math.ceil(hostileEvents / (validEvery - 1))
  })
  const specs: Array<Spec> = []
  for (const spec of hostile) {
    specs.push(spec)
    if (specs.length % validEvery === validEvery - 1) specs.push(valid.shift()!)
  }
  const boundary = boundarySpecs()
  const places = fc.sample(fc.nat({ max: specs.length }), { seed: seed + 2, numRuns: boundary.length })
  boundary.forEach((spec, i) => {
    specs.splice(places[i]!, 0, spec)
  })
  return specs.map(build)
}

// ---- the deployment -----------------------------------------------------------------------------

/** A PutRecords call refused whole, as Kinesis does when it is unavailable. */
const putRefused: FaultProxy.Action = {
  _tag: "Respond",
  status: 503,
  body: { __type: "ServiceUnavailable", message: "Service Unavailable (injected)" }
}

/**
 * What fauxqs 1.9 lets into a message body: SQS's characters, less U+10000–U+10FFFF (its pattern
 * has no `u` flag, so it refuses every surrogate pair, emoji included, which SQS takes).
 */
const fauxqsRefuses = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/

/**
 * Kinesis refusing a little, as it does under load (kinesalite never refuses): every 23rd
 * PutRecords call answers 503, and about every 37th entry of the others is throttled inside the 200.
 * The collector parks what was refused in the fallback queue and still answers 202. Only records
 * fauxqs can hold are refused (a call only when all of its records are): the others stay on the
 * stream path, so valid records keep every character. (Records SQS itself refuses: the second
 * `it.fails` test at the end.)
 */
const throttleSome = (): FaultProxy.Interceptor => {
  let calls = 0
  let entries = 0
  let owed = 0
  return ({ operation, body }) => {
    if (operation !== "PutRecords") return FaultProxy.forward
    const request = body as { readonly Records: ReadonlyArray<{ readonly Data: string }> }
    const parkable = request.Records.map(
      (entry) => !fauxqsRefuses.test(Buffer.from(entry.Data, "base64").toString("utf8"))
    )
    if (++calls % 23 === 0 && !parkable.includes(false)) return putRefused
    // From every 37th entry on, the next one fauxqs can hold.
    const throttled = parkable.map((ok) => {
      if (++entries % 37 === 0) owed++
      if (owed === 0 || !ok) return false
      owed--
      return true
    })
    if (!throttled.includes(true)) return FaultProxy.forward
    const merge = (answer: { readonly Records?: ReadonlyArray<unknown> }) => {
      let next = 0
      const records = throttled.map((refused) =>
        refused
          ? { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded (injected)" }
          : (answer.Records?.[next++] ?? {})
      )
      return { ...answer, FailedRecordCount: throttled.filter(Boolean).length, Records: records }
    }
    const kept = request.Records.filter((_, i) => !throttled[i])
    return kept.length === 0
      ? { _tag: "Respond", status: 200, body: merge({}) }
      : {
          _tag: "Rewrite",
          body: { ...request, Records: kept },
          response: (answer) => merge(answer as { readonly Records?: ReadonlyArray<unknown> })
        }
  }
}

const scope = Scope.makeUnsafe()
let fn: LambdaProcess.LambdaProcess
let kinesisProxy: FaultProxy.FaultProxy
let bundleDir = ""
let readBack: Effect.Effect<{
  readonly stream: ReadonlyArray<Uint8Array>
  readonly parked: ReadonlyArray<Telemetry.TelemetryEnvelope>
}>

beforeAll(async () => {
  bundleDir = mkdtempSync(join(tmpdir(), "spillway-collector-fuzz-"))
  const [{ bundles }, servers] = await Promise.all([
    buildBundles([{ name: "collector", entry: join(repositoryRoot, "apps/lambdas/src/collector.ts") }], {
      outdir: bundleDir
    }),
    Effect.runPromise(
      Effect.gen(function* () {
        const [kinesalite, fauxqs, moto] = yield* Effect.all(
          [Emulators.kinesalite, Emulators.fauxqs, Moto.startOnNode()],
          {
            concurrency: "unbounded"
          }
        )
        const proxy = yield* FaultProxy.scoped(kinesalite.endpoint)
        proxy.setInterceptor(throttleSome())
        const kinesis = yield* Emulators.kinesisClient(kinesalite.client)
        const streamArn = yield* Emulators.createStream(kinesis, streamName, 4)
        const queue = yield* fauxqs.createQueue(queueName)
        const secrets = yield* Effect.acquireRelease(
          Effect.sync(() => new SecretsManagerClient(moto.client)),
          (client) => Effect.sync(() => client.destroy())
        )
        yield* Effect.promise(() =>
          secrets.send(
            new CreateSecretCommand({
              Name: secretId,
              SecretString: JSON.stringify([{ tenant, sha256: ApiKeys.hashKey(apiKey) }])
            })
          )
        )
        return { kinesalite, fauxqs, moto, proxy, streamArn, queue }
      }).pipe(Scope.provide(scope))
    )
  ])
  const { kinesalite, fauxqs, moto, proxy, streamArn, queue } = servers
  kinesisProxy = proxy
  fn = await LambdaProcess.start({
    bundleDir: bundles[0]!.dir,
    region: Emulators.region,
    timeoutSeconds: 10,
    env: {
      // Anything not pointed at an emulator goes to a closed port.
      ...Deployment.unreachable,
      AWS_ENDPOINT_URL_KINESIS: proxy.endpoint,
      AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
      STREAM_ARN: streamArn,
      FALLBACK_QUEUE_URL: queue.queueUrl,
      API_KEYS_SOURCE: "secretsmanager",
      API_KEYS_SECRET_ID: secretId
    }
  })
  readBack = Effect.gen(function* () {
    const source = yield* KinesisShardSource.make({ streamName, streamArn })
    const stream: Array<Uint8Array> = []
    for (const shardId of source.shardIds) {
      let after: string | undefined
      while (true) {
        const { records } = yield* source.getRecords(shardId, { after, limit: 10_000 })
        if (records.length === 0) break
        for (const record of records) stream.push(record.data)
        after = records.at(-1)!.sequenceNumber
      }
    }
    const parked = (yield* fauxqs.messageBodies(queueName)).flatMap((body) => {
      const decoded = FallbackMessages.decodeFallbackMessage(body)
      if (Result.isFailure(decoded)) throw new Error(decoded.failure)
      return decoded.success.records
    })
    return { stream, parked }
  }).pipe(Effect.provide(KinesisClient.layer(kinesalite.client)), Effect.orDie)
}, 120_000)

afterAll(async () => {
  await fn?.close()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  if (bundleDir !== "") rmSync(bundleDir, { recursive: true, force: true })
})

// ---- judging an answer -------------------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true })
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** What is wrong with the answer to `c`, if anything. */
const judge = (c: Case, outcome: LambdaProcess.Invocation, pid: number): Array<string> => {
  const problems: Array<string> = []
  if (outcome.pid !== pid || outcome.coldStart) problems.push(`served by a new process (pid ${outcome.pid})`)
  if (outcome.exit !== undefined) problems.push(`the process ended: ${JSON.stringify(outcome.exit)}`)
  for (const line of outcome.logs) {
    const level = line.json?.level
    if (line.json === undefined || level === "ERROR" || level === "FATAL")
      problems.push(`logged ${line.stream}: ${line.text.slice(0, 300)}`)
  }
  if (outcome.kind !== "response") {
    problems.push(`${outcome.kind}: ${outcome.body.errorType}: ${outcome.body.errorMessage.slice(0, 300)}`)
    return problems
  }
  const response = outcome.body as Partial<LambdaEvents.HttpResponse>
  const status = response.statusCode
  if (typeof status !== "number")
    return [...problems, `not an HTTP answer: ${JSON.stringify(response).slice(0, 300)}`]
  if (status >= 500) problems.push(`answered ${status}`)
  if (response.isBase64Encoded !== false) problems.push("isBase64Encoded is not false")
  const contentType = response.headers?.["content-type"]
  if (contentType === undefined || !contentType.startsWith("application/json"))
    problems.push(`content-type ${contentType}`)
  let body: unknown
  try {
    body = JSON.parse(response.body ?? "")
  } catch {
    return [...problems, `a body that is not JSON: ${String(response.body).slice(0, 300)}`]
  }
  const summary = `${status} ${JSON.stringify(body).slice(0, 300)}`
  if (status !== c.expected.status) problems.push(`expected ${c.expected.status}, got ${summary}`)
  if (!isRecord(body)) return [...problems, `a body that is not an object: ${summary}`]
  if ("codes" in c.expected) {
    const error = body.error
    if (!isRecord(error) || typeof error.code !== "string" || typeof error.message !== "string")
      problems.push(`no { error: { code, message } }: ${summary}`)
    else if (!c.expected.codes.includes(error.code as CollectorHttp.ErrorCode))
      problems.push(`expected ${c.expected.codes.join(" or ")}, got ${summary}`)
    if (status === 405 && response.headers?.allow === undefined) problems.push("a 405 without Allow")
  }
  if (
    c.expected.status === 202 &&
    (body.accepted !== c.delivered.length || !Array.isArray(body.unavailable) || body.unavailable.length > 0)
  )
    problems.push(`expected ${c.delivered.length} accepted and none unavailable, got ${summary}`)
  if (c.expected.status === 200 && canonical(body) !== canonical({ ok: true }))
    problems.push(`got ${summary}`)
  if (c.invalidIndexes !== undefined) {
    const rejected = Array.isArray(body.rejected)
      ? body.rejected.map((r: { index?: unknown }) => r.index)
      : undefined
    if (canonical(rejected) !== canonical(c.invalidIndexes))
      problems.push(`expected indexes ${canonical(c.invalidIndexes)} rejected, got ${summary}`)
  }
  return problems
}

const describeCase = (c: Case) => {
  const { event } = c
  const body =
    event.body === undefined
      ? "no body"
      : `${event.isBase64Encoded ? "base64 " : ""}body of ${event.body.length} chars`
  return `#${c.position} ${c.category}: ${event.requestContext.http.method} ${event.rawPath} (${body}, headers ${JSON.stringify(event.headers).slice(0, 200)})`
}

// ---- the run -------------------------------------------------------------------------------------

describe("the collector bundle under hostile traffic", () => {
  it(`answers ${hostileEvents.toLocaleString("en")} hostile events as its contract says, and loses no valid record`, async () => {
    const started = performance.now()
    const cases = buildRun()
    const built = performance.now()

    const warmUp = await fn.invoke(httpApiEvent({ method: "GET", path: CollectorHttp.healthPath }))
    expect(warmUp).toMatchObject({ kind: "response", coldStart: true, body: { statusCode: 200 } })
    const pid = warmUp.pid

    const failures: Array<string> = []
    let failed = 0
    const byCategory = new Map<string, { events: number; ms: number; answers: Map<string, number> }>()
    const expectedStored = new Map<string, string>()
    let slowest = { ms: 0, what: "" }
    for (const c of cases) {
      const outcome = await fn.invoke(c.event)
      const problems = judge(c, outcome, pid)
      if (problems.length > 0) {
        failed++
        if (failures.length < 25) failures.push(`${describeCase(c)}\n    ${problems.join("\n    ")}`)
      }
      for (const [id, stored] of c.delivered) expectedStored.set(id, stored)
      const tally = byCategory.get(c.category) ?? { events: 0, ms: 0, answers: new Map<string, number>() }
      const answer =
        outcome.kind === "response"
          ? (() => {
              const response = outcome.body as LambdaEvents.HttpResponse
              const code = (JSON.parse(response.body ?? "{}") as { error?: { code?: string } }).error?.code
              return `${response.statusCode}${code === undefined ? "" : ` ${code}`}`
            })()
          : outcome.kind
      tally.events++
      tally.ms += outcome.durationMs
      tally.answers.set(answer, (tally.answers.get(answer) ?? 0) + 1)
      byCategory.set(c.category, tally)
      if (outcome.durationMs > slowest.ms) slowest = { ms: outcome.durationMs, what: c.category }
    }
    const invoked = performance.now()

    const { stream, parked } = await Effect.runPromise(readBack)
    const readDone = performance.now()

    // ---- the records: every valid one in the stream or the queue, once, as sent; nothing else ----
    const found = new Map<string, number>()
    const mismatched: Array<string> = []
    const note = (where: string, envelope: unknown) => {
      const e = envelope as { tenant?: unknown; record?: { id?: unknown } }
      const id = String(e.record?.id)
      found.set(id, (found.get(id) ?? 0) + 1)
      const expected = expectedStored.get(id)
      if (expected === undefined) mismatched.push(`${where}: ${id} was never sent to be accepted`)
      else if (e.tenant !== tenant || canonical(e.record) !== expected)
        mismatched.push(`${where}: ${id} is stored as ${canonical(e)}, sent as ${expected}`)
    }
    for (const data of stream) {
      if (Result.isFailure(Telemetry.decodeEnvelope(data)))
        mismatched.push(`stream: undecodable ${utf8.decode(data).slice(0, 200)}`)
      note("stream", JSON.parse(utf8.decode(data)))
    }
    for (const envelope of parked) note("queue", envelope)
    const missing = [...expectedStored.keys()].filter((id) => !found.has(id))
    const duplicated = [...found].filter(([, n]) => n > 1).map(([id]) => id)

    const sent = cases.reduce(
      (sum, c) => ({ valid: sum.valid + c.sentRecords.valid, invalid: sum.invalid + c.sentRecords.invalid }),
      { valid: 0, invalid: 0 }
    )
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
    const lines = [
      `collector fuzz, seed ${seed} (SPILLWAY_FUZZ_SEED): ${cases.length} events in one process (pid ${pid}), ${seconds(readDone - started)}`,
      `  building the events ${seconds(built - started)}, invoking ${seconds(invoked - built)} (${((invoked - built) / cases.length).toFixed(2)} ms each, slowest ${slowest.ms} ms: ${slowest.what}), reading back ${seconds(readDone - invoked)}`,
      `  records in the events: ${sent.valid} valid (${expectedStored.size} in accepted requests), ${sent.invalid} invalid; in the stream ${stream.length}, parked in the fallback queue ${parked.length}`,
      `  ${"category".padEnd(50)} ${"events".padStart(5)} ${"mean".padStart(9)}  answers`,
      ...[...byCategory]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(
          ([category, { events, ms, answers }]) =>
            `  ${category.padEnd(50)} ${String(events).padStart(5)} ${(ms / events).toFixed(1).padStart(6)} ms  ${[...answers].map(([a, n]) => `${a} ×${n}`).join(", ")}`
        )
    ]
    console.log(lines.join("\n"))

    expect(
      failures,
      `${failed} of ${cases.length} answers were wrong (seed ${seed}); the first ones:`
    ).toEqual([])
    expect(
      cases.filter((c) => c.category !== "valid batch" && !c.category.startsWith("boundary:")).length
    ).toBe(hostileEvents)
    expect(mismatched.slice(0, 20)).toEqual([])
    expect(missing.slice(0, 20)).toEqual([])
    expect(duplicated.slice(0, 20)).toEqual([])
    expect(stream.length + parked.length).toBe(expectedStored.size)
    // The fallback path ran: records were parked, and counted above with the stream's.
    expect(parked.length).toBeGreaterThan(0)
  }, 300_000)

  const answerTo = async (records: ReadonlyArray<unknown>) => {
    const outcome = await fn.invoke(
      httpApiEvent({
        headers: { "content-type": "application/json", "x-api-key": apiKey },
        body: JSON.stringify(records)
      })
    )
    expect(outcome).toMatchObject({ kind: "response" })
    const response = outcome.body as LambdaEvents.HttpResponse
    return { status: response.statusCode, body: JSON.parse(response.body ?? "{}") as unknown }
  }
  const record = (id: string, fields: Record<string, unknown> = {}) => ({
    id,
    type: "cpu",
    timestamp: "2026-11-24T10:00:00.000Z",
    payload: {},
    ...fields
  })

  // Found by this fuzz: an epoch-milliseconds timestamp after year 9999 used to pass validation
  // while its ISO form (`+010000-…`) failed the stored `Timestamp` pattern when the envelope was
  // encoded: a 500 for the whole request. It is now refused as a record of its own.
  it("rejects a record whose epoch timestamp is past year 9999, and takes the others", async () => {
    const answer = await answerTo([
      record("year-9999", { timestamp: lastFourDigitYearMillis }),
      record("year-10000", { timestamp: lastFourDigitYearMillis + 1 })
    ])
    expect(answer).toMatchObject({ status: 202, body: { accepted: 1, rejected: [{ index: 1 }] } })
  })

  // Found by this fuzz: SQS refuses a message body holding U+FFFE or U+FFFF (fauxqs says "Invalid
  // characters found"; `MemoryQueue` refuses them too), and a fallback message is its envelopes' JSON as `JSON.stringify` writes it, which
  // leaves those two unescaped. So when the stream refuses a record holding one (which the stream
  // itself takes fine), that record and every record packed into the same message come back
  // `unavailable` — a 503 when nothing else was taken — though the queue is up.
  // Fixed: fallback messages escape them (`\ufffe`, `\uffff`: the same strings once parsed).
  it("parks a record holding U+FFFF, and the records packed with it, when the stream refuses them", async () => {
    kinesisProxy.setInterceptor(({ operation }) =>
      operation === "PutRecords" ? putRefused : FaultProxy.forward
    )
    try {
      const answer = await answerTo([record("plain"), record("nonchar", { payload: { text: "\uffff" } })])
      expect(answer).toMatchObject({ status: 202, body: { accepted: 2, unavailable: [] } })
    } finally {
      kinesisProxy.setInterceptor(throttleSome())
    }
  })
})
