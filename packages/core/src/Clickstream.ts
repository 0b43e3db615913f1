/**
 * The clickstream domain: what a shop's browsers and apps send (`ClickEvent`), what the cleaner
 * puts into the clean stream (`CleanEvent`, packed per session into a `CleanRecord`), and the
 * normalization between the two.
 *
 * Guarantees:
 * - every clean event was decoded by these schemas: event type in `snake_case`, timestamp in
 *   whole epoch milliseconds, currency in upper case, price as an integer amount in the
 *   currency's minor unit (cents; yen have none), so revenue sums are exact; the page as host and
 *   path only (query strings and fragments carry e-mail addresses and tokens, so they never
 *   leave the cleaner); the platform one of `web`, `ios`, `android`, `other`;
 * - a field the client sent beyond the known ones is kept under `attributes`, so a configured
 *   PII field among them (`attributes.email`) can be removed by name, like a known one
 *   (`client.ip`);
 * - a clean record holds the events of one session in the order the cleaner read them, and is
 *   partitioned by session id, so a session's events stay ordered in the clean stream.
 */
import { Result, Schema, SchemaParser } from "effect"
import { formatIssue, nestsDeeperThan, TimestampInput } from "./Telemetry.js"

const Id = (what: string) =>
  Schema.String.check(
    Schema.isMinLength(1, { message: "must not be empty" }),
    Schema.isMaxLength(128, { message: `must be at most 128 characters (${what})` })
  )

const ShortText = Schema.String.check(
  Schema.isMaxLength(2048, { message: "must be at most 2048 characters" })
)

/** A price in the currency's major unit (19.99), as clients send it. */
const Price = Schema.Number.check(
  Schema.isFinite({ message: "must be a finite number" }),
  Schema.isGreaterThanOrEqualTo(0, { message: "must be 0 or more" })
)

const Quantity = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(1, { message: "must be a whole number, 1 or more" })
)

const CurrencyInput = Schema.String.check(
  Schema.isPattern(/^[A-Za-z]{3}$/, { message: "must be a three-letter ISO 4217 code such as EUR" })
)

/** A clickstream event as a browser or an app sends it; `decodeClickEvent` reads one. */
const ClientClickEvent = Schema.Struct({
  eventId: Id("event id"),
  type: Schema.String.check(
    Schema.isMinLength(1, { message: "must not be empty" }),
    Schema.isMaxLength(64, { message: "must be at most 64 characters" })
  ),
  sessionId: Id("session id"),
  userId: Schema.optionalKey(Schema.NullOr(Id("user id"))),
  timestamp: TimestampInput,
  page: Schema.optionalKey(
    Schema.Struct({
      url: ShortText,
      referrer: Schema.optionalKey(ShortText),
      title: Schema.optionalKey(ShortText)
    })
  ),
  product: Schema.optionalKey(
    Schema.Struct({
      id: Id("product id"),
      category: Schema.optionalKey(ShortText),
      name: Schema.optionalKey(ShortText)
    })
  ),
  price: Schema.optionalKey(Price),
  quantity: Schema.optionalKey(Quantity),
  currency: Schema.optionalKey(CurrencyInput),
  client: Schema.optionalKey(
    Schema.Struct({
      userAgent: Schema.optionalKey(ShortText),
      ip: Schema.optionalKey(ShortText),
      platform: Schema.optionalKey(ShortText),
      locale: Schema.optionalKey(ShortText)
    })
  )
})
export type ClientClickEvent = typeof ClientClickEvent.Type

const clientFields: ReadonlySet<string> = new Set(Object.keys(ClientClickEvent.fields))

export const Platform = Schema.Literals(["web", "ios", "android", "other"])
export type Platform = typeof Platform.Type

/** A clean event, as the clean stream carries it. */
export const CleanEvent = Schema.Struct({
  eventId: Schema.String,
  /** `snake_case`, one of the cleaner's configured types. */
  type: Schema.String,
  sessionId: Schema.String,
  userId: Schema.optionalKey(Schema.String),
  /** Whole epoch milliseconds (the client's time). */
  timestamp: Schema.Int,
  page: Schema.optionalKey(
    Schema.Struct({
      host: Schema.optionalKey(Schema.String),
      path: Schema.String,
      referrerHost: Schema.optionalKey(Schema.String),
      title: Schema.optionalKey(Schema.String)
    })
  ),
  product: Schema.optionalKey(
    Schema.Struct({
      id: Schema.String,
      category: Schema.optionalKey(Schema.String),
      name: Schema.optionalKey(Schema.String)
    })
  ),
  /** Unit price × quantity in the currency's minor unit (cents). */
  amountMinor: Schema.optionalKey(Schema.Int),
  quantity: Schema.optionalKey(Schema.Int),
  /** ISO 4217, upper case. */
  currency: Schema.optionalKey(Schema.String),
  client: Schema.Struct({
    platform: Platform,
    userAgent: Schema.optionalKey(Schema.String),
    ip: Schema.optionalKey(Schema.String),
    locale: Schema.optionalKey(Schema.String)
  }),
  /** Fields the client sent beyond the known ones, each under its own name. */
  attributes: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
})
export type CleanEvent = typeof CleanEvent.Type

/** One record of the clean stream: a session's clean events from one cleaner batch, in order. */
export const CleanRecord = Schema.Struct({
  v: Schema.Literal(1),
  sessionId: Schema.String,
  events: Schema.Array(CleanEvent)
})
export type CleanRecord = typeof CleanRecord.Type

/** The fields of a clean event that can never be removed (the metrics are keyed on them). */
export const requiredFields: ReadonlySet<string> = new Set([
  "eventId",
  "type",
  "sessionId",
  "timestamp",
  "client",
  "client.platform"
])

/** A clickstream event that could not be read, with a reason a person can act on. */
export class InvalidClickEvent extends Schema.TaggedError<InvalidClickEvent>()("InvalidClickEvent", {
  reason: Schema.String
}) {
  get isRetryable(): boolean {
    return false
  }
}

/** `Page View`, `page-view`, `pageView` → `page_view`. */
export const normalizeEventType = (type: string): string =>
  type
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[\s-]+/g, "_")

const platformSynonyms: Readonly<Record<string, Platform>> = {
  web: "web",
  browser: "web",
  desktop: "web",
  "mobile-web": "web",
  mobile_web: "web",
  ios: "ios",
  iphone: "ios",
  ipad: "ios",
  ipados: "ios",
  android: "android"
}

/** The platform a client names (`iPhone` → `ios`); a user agent alone means a browser. */
export const normalizePlatform = (platform: string | undefined, userAgent: string | undefined): Platform => {
  if (platform !== undefined) return platformSynonyms[platform.trim().toLowerCase()] ?? "other"
  return userAgent === undefined ? "other" : "web"
}

/**
 * ISO 4217 currencies whose minor unit is not the cent (exponent 2). The list is the standard's
 * own for codes a shop is likely to meet; any other code counts in hundredths.
 */
const currencyExponents: Readonly<Record<string, number>> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3
}

export const minorUnitExponent = (currency: string): number => currencyExponents[currency] ?? 2

/** A major-unit price (19.99) in minor units (1999), rounded half away from zero at the minor unit. */
export const toMinorUnits = (price: number, currency: string): number =>
  Math.round(price * 10 ** minorUnitExponent(currency))

/** Host (lower case) and path of a URL; query string and fragment dropped. Relative URLs keep their path. */
export const pageLocation = (url: string): { readonly host?: string; readonly path: string } => {
  const absolute = URL.canParse(url) ? new URL(url) : undefined
  if (absolute !== undefined && (absolute.protocol === "http:" || absolute.protocol === "https:")) {
    return { host: absolute.hostname.toLowerCase(), path: absolute.pathname }
  }
  const path = url.split(/[?#]/, 1)[0] ?? ""
  return { path: path.length === 0 ? "/" : path }
}

const hostOf = (url: string): string | undefined =>
  URL.canParse(url) ? new URL(url).hostname.toLowerCase() || undefined : undefined

const decodeClient = SchemaParser.decodeUnknownResult(ClientClickEvent, {
  errors: "all",
  onExcessProperty: "ignore"
})

/** How deeply an event may nest (its `attributes` are kept as sent). */
export const maxNestingDepth = 10

/** Reads one event as a client sent it; the failure names every bad field. */
export const decodeClickEvent = (
  input: unknown
): Result.Result<
  { readonly event: ClientClickEvent; readonly attributes?: Record<string, unknown> },
  InvalidClickEvent
> => {
  if (nestsDeeperThan(input, maxNestingDepth))
    return Result.fail(new InvalidClickEvent({ reason: `event nests deeper than ${maxNestingDepth} levels` }))
  const decoded = decodeClient(input)
  if (Result.isFailure(decoded))
    return Result.fail(new InvalidClickEvent({ reason: formatIssue(decoded.failure, "event") }))
  const extras = Object.entries(input as object).filter(([name]) => !clientFields.has(name))
  return Result.succeed(
    extras.length === 0
      ? { event: decoded.success }
      : { event: decoded.success, attributes: Object.fromEntries(extras) }
  )
}

/**
 * The clean event of a decoded one (before PII removal): normalized type, epoch-millisecond
 * time, minor-unit amount, page location, platform. A purchase without a price and a currency is
 * invalid: it would count as revenue of nothing in no currency.
 */
export const normalize = (
  event: ClientClickEvent,
  attributes: Record<string, unknown> | undefined
): Result.Result<CleanEvent, InvalidClickEvent> => {
  const type = normalizeEventType(event.type)
  const currency = event.currency?.toUpperCase()
  if (type === "purchase" && (event.price === undefined || currency === undefined)) {
    return Result.fail(new InvalidClickEvent({ reason: "a purchase needs price and currency" }))
  }
  if (event.price !== undefined && currency === undefined) {
    return Result.fail(new InvalidClickEvent({ reason: "currency: is missing (the event has a price)" }))
  }
  const quantity = event.quantity ?? (event.price === undefined ? undefined : 1)
  const amountMinor =
    event.price === undefined || currency === undefined
      ? undefined
      : toMinorUnits(event.price, currency) * (quantity ?? 1)
  if (amountMinor !== undefined && !Number.isSafeInteger(amountMinor)) {
    return Result.fail(new InvalidClickEvent({ reason: "price × quantity is too large to count exactly" }))
  }
  const client = event.client
  const page = event.page
  const referrerHost = page?.referrer === undefined ? undefined : hostOf(page.referrer)
  const clean: CleanEvent = {
    eventId: event.eventId,
    type,
    sessionId: event.sessionId,
    ...(event.userId === undefined || event.userId === null ? {} : { userId: event.userId }),
    timestamp: Date.parse(event.timestamp),
    ...(page === undefined
      ? {}
      : {
          page: {
            ...pageLocation(page.url),
            ...(referrerHost === undefined ? {} : { referrerHost }),
            ...(page.title === undefined ? {} : { title: page.title })
          }
        }),
    ...(event.product === undefined ? {} : { product: event.product }),
    ...(amountMinor === undefined ? {} : { amountMinor }),
    ...(quantity === undefined ? {} : { quantity }),
    ...(currency === undefined ? {} : { currency }),
    client: {
      platform: normalizePlatform(client?.platform, client?.userAgent),
      ...(client?.userAgent === undefined ? {} : { userAgent: client.userAgent }),
      ...(client?.ip === undefined ? {} : { ip: client.ip }),
      ...(client?.locale === undefined ? {} : { locale: client.locale })
    },
    ...(attributes === undefined ? {} : { attributes })
  }
  return Result.succeed(clean)
}

/** A dot path into a clean event (`client.ip`, `attributes.email`). */
export type FieldPath = ReadonlyArray<string>

/**
 * Parses `client.ip,attributes.email` into paths; a required field (the metrics are keyed on
 * them) or an empty segment is refused with the reason.
 */
export const parseFieldPaths = (text: string): Result.Result<ReadonlyArray<FieldPath>, string> => {
  const paths: Array<FieldPath> = []
  for (const raw of text.split(",")) {
    const name = raw.trim()
    if (name.length === 0) continue
    const segments = name.split(".")
    if (segments.some((s) => s.length === 0))
      return Result.fail(`${JSON.stringify(name)} has an empty segment`)
    if (requiredFields.has(name))
      return Result.fail(`${JSON.stringify(name)} cannot be removed: the metrics are keyed on it`)
    paths.push(segments)
  }
  return Result.succeed(paths)
}

/** A copy of `event` without the fields at `paths` (absent ones are ignored); the event itself is not changed. */
export const removeFields = (event: CleanEvent, paths: ReadonlyArray<FieldPath>): CleanEvent => {
  if (paths.length === 0) return event
  const copy = structuredClone(event) as Record<string, unknown>
  for (const path of paths) {
    let at: unknown = copy
    for (const segment of path.slice(0, -1)) {
      at = typeof at === "object" && at !== null ? (at as Record<string, unknown>)[segment] : undefined
    }
    if (typeof at === "object" && at !== null) delete (at as Record<string, unknown>)[path.at(-1)!]
  }
  const attributes = copy.attributes as Record<string, unknown> | undefined
  if (attributes !== undefined && Object.keys(attributes).length === 0) delete copy.attributes
  return copy as CleanEvent
}

const encoder = new TextEncoder()
const utf8 = new TextDecoder("utf-8", { fatal: true })

export const encodeCleanRecord = (record: CleanRecord): Uint8Array => encoder.encode(JSON.stringify(record))

const decodeCleanRecordResult = SchemaParser.decodeUnknownResult(Schema.fromJsonString(CleanRecord), {
  errors: "first"
})

/** Reads a clean-stream record; anything else fails with a reason. */
export const decodeCleanRecord = (data: Uint8Array): Result.Result<CleanRecord, InvalidClickEvent> => {
  let text: string
  try {
    text = utf8.decode(data)
  } catch {
    return Result.fail(new InvalidClickEvent({ reason: "record data is not valid UTF-8" }))
  }
  return Result.mapError(
    decodeCleanRecordResult(text),
    (issue) => new InvalidClickEvent({ reason: formatIssue(issue, "clean record") })
  )
}
