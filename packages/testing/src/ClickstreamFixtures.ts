/**
 * Seeded clickstream traffic for tests and benchmarks: sessions browsing, searching, adding to
 * their carts and buying, in three currencies on three platforms, mixed with what a cleaner must
 * drop — bots, invalid events, unwanted event types, events too old — and PII (an e-mail address
 * and the client's IP on every event). Every event is labelled with what it is, and `expected`
 * computes the dashboard's totals from the labels with rules of its own (not the cleaner's or the
 * metrics stage's code), so an end-to-end test compares the pipeline with an independent count.
 */

export type Label = "valid" | "bot" | "invalid" | "unwanted" | "tooOld"

export interface GeneratedEvent {
  readonly label: Label
  /** What the client sends. */
  readonly body: Record<string, unknown>
  /** Epoch milliseconds at which the client sends it. */
  readonly sentAt: number
  readonly sessionId: string
}

export interface Options {
  readonly seed: number
  readonly events: number
  /** Epoch milliseconds of the first event. */
  readonly start: number
  /** Events per second. @default 500 */
  readonly eventsPerSecond?: number
  /** @default 0.04 */
  readonly botShare?: number
  /** @default 0.02 */
  readonly invalidShare?: number
  /** @default 0.03 */
  readonly unwantedShare?: number
  /** @default 0.01 */
  readonly tooOldShare?: number
  /** Sessions active at once. @default 400 */
  readonly concurrentSessions?: number
}

/** A small, fast, seeded generator (mulberry32), so fixtures do not depend on Effect's `Random`. */
export const prng = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const platforms = [
  {
    platform: "web",
    userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
  },
  { platform: "iPhone", userAgent: "ShopApp/4.2 (iPhone; iOS 18.1)" },
  { platform: "android", userAgent: "ShopApp/4.2 (Linux; Android 15)" }
] as const
const bots = [
  "Googlebot/2.1 (+http://www.google.com/bot.html)",
  "python-requests/2.32.3",
  "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0"
]
const currencies = ["EUR", "USD", "JPY"] as const
const journey = [
  "page_view",
  "search",
  "product_view",
  "product_view",
  "add_to_cart",
  "checkout",
  "purchase"
] as const

/** Minor-unit exponents of the fixture's currencies (the test's own table). */
export const exponents: Readonly<Record<string, number>> = { EUR: 2, USD: 2, JPY: 0 }

interface SessionState {
  readonly id: string
  readonly platform: (typeof platforms)[number]
  readonly currency: (typeof currencies)[number]
  step: number
  left: number
}

export const generate = (options: Options): ReadonlyArray<GeneratedEvent> => {
  const random = prng(options.seed)
  const rate = options.eventsPerSecond ?? 500
  const shares = {
    bot: options.botShare ?? 0.04,
    invalid: options.invalidShare ?? 0.02,
    unwanted: options.unwantedShare ?? 0.03,
    tooOld: options.tooOldShare ?? 0.01
  }
  const pick = <A>(list: ReadonlyArray<A>): A => list[Math.floor(random() * list.length)]!
  let sessionCounter = 0
  const newSession = (): SessionState => ({
    id: `s-${options.seed}-${++sessionCounter}`,
    platform: pick(platforms),
    currency: pick(currencies),
    step: 0,
    left: 3 + Math.floor(random() * 25)
  })
  const sessions = Array.from({ length: options.concurrentSessions ?? 400 }, newSession)
  const out: Array<GeneratedEvent> = []
  for (let i = 0; i < options.events; i++) {
    const sentAt = options.start + Math.floor((i * 1000) / rate)
    const slot = Math.floor(random() * sessions.length)
    const session = sessions[slot]!
    const roll = random()
    const eventId = `e-${options.seed}-${i}`
    const base = {
      eventId,
      sessionId: session.id,
      // Clients' clocks run a little behind or ahead of the pipeline's.
      timestamp: sentAt - Math.floor(random() * 3000),
      client: {
        userAgent: session.platform.userAgent,
        ip: `203.0.113.${i % 250}`,
        platform: session.platform.platform
      },
      email: `shopper${session.id}@example.com`
    }
    let label: Label = "valid"
    let body: Record<string, unknown>
    if (roll < shares.bot) {
      label = "bot"
      body = {
        ...base,
        type: "page_view",
        page: { url: "https://shop.example/" },
        client: { userAgent: pick(bots), ip: "198.51.100.7" }
      }
    } else if (roll < shares.bot + shares.invalid) {
      label = "invalid"
      const kind = Math.floor(random() * 3)
      body =
        kind === 0
          ? { ...base, sessionId: "" }
          : kind === 1
            ? { ...base, type: "purchase", price: 10 }
            : { ...base, type: "page_view", timestamp: "yesterday" }
      if (kind !== 1 && !("type" in body)) body = { ...body, type: "page_view" }
    } else if (roll < shares.bot + shares.invalid + shares.unwanted) {
      label = "unwanted"
      body = { ...base, type: pick(["scroll", "heartbeat", "mouse_move"]) }
    } else if (roll < shares.bot + shares.invalid + shares.unwanted + shares.tooOld) {
      label = "tooOld"
      body = {
        ...base,
        type: "page_view",
        timestamp: sentAt - 2 * 3_600_000,
        page: { url: "https://shop.example/old" }
      }
    } else {
      const type = journey[Math.min(session.step, journey.length - 1)]!
      // Most sessions browse and leave; a few go all the way to a purchase.
      session.step = random() < 0.6 ? session.step + 1 : Math.max(0, session.step - 1)
      body = {
        ...base,
        type: type === "add_to_cart" ? "Add To Cart" : type,
        page: {
          url: `https://Shop.Example/p/${i % 97}?utm_source=mail&email=${encodeURIComponent(base.email)}`
        },
        ...(type === "product_view" || type === "add_to_cart" || type === "purchase"
          ? { product: { id: `sku-${i % 53}`, category: pick(["shoes", "bags", "hats"]) } }
          : {}),
        ...(type === "purchase"
          ? {
              price:
                session.currency === "JPY"
                  ? 1000 + Math.floor(random() * 9000)
                  : Math.round(random() * 20000) / 100,
              quantity: 1 + Math.floor(random() * 3),
              currency: session.currency.toLowerCase()
            }
          : {})
      }
      if (type === "purchase") session.step = 0
    }
    out.push({ label, body, sentAt, sessionId: session.id })
    session.left--
    if (session.left <= 0) sessions[slot] = newSession()
  }
  return out
}

/** Counts by label. */
export const labels = (events: ReadonlyArray<GeneratedEvent>): Readonly<Record<Label, number>> => {
  const counts: Record<Label, number> = { valid: 0, bot: 0, invalid: 0, unwanted: 0, tooOld: 0 }
  for (const e of events) counts[e.label]++
  return counts
}

const platformName = (platform: string): string => (platform === "iPhone" ? "ios" : platform)
const snake = (type: string): string => type.toLowerCase().replace(/ /g, "_")

/**
 * The dashboard's totals from the valid events, as `metric|tag,tag|minute` → value (tags sorted),
 * computed here from the fixture's own labels and rules: per minute of the event's time, events
 * by type and platform, distinct sessions, checkouts, distinct buying sessions, revenue in minor
 * units by currency.
 */
export const expected = (
  events: ReadonlyArray<GeneratedEvent>,
  prefix = "clickstream",
  staticTags: ReadonlyArray<string> = []
): ReadonlyMap<string, number> => {
  const totals = new Map<string, number>()
  const add = (metric: string, tags: ReadonlyArray<string>, minute: number, value: number) => {
    const key = `${prefix}.${metric}|${[...staticTags, ...tags].sort().join(",")}|${minute}`
    totals.set(key, (totals.get(key) ?? 0) + value)
  }
  const active = new Set<string>()
  const buyers = new Set<string>()
  for (const e of events) {
    if (e.label !== "valid") continue
    const body = e.body as {
      type: string
      timestamp: number
      sessionId: string
      client: { platform: string }
      price?: number
      quantity?: number
      currency?: string
    }
    const minute = Math.floor(body.timestamp / 60_000) * 60
    const platform = `platform:${platformName(body.client.platform)}`
    const type = snake(body.type)
    add("events", [`event_type:${type}`, platform], minute, 1)
    const sessionMinute = `${body.sessionId}|${minute}`
    if (!active.has(sessionMinute)) {
      active.add(sessionMinute)
      add("sessions.active", [platform], minute, 1)
    }
    if (type === "checkout") add("checkouts", [platform], minute, 1)
    if (type === "purchase") {
      if (!buyers.has(sessionMinute)) {
        buyers.add(sessionMinute)
        add("buyers", [platform], minute, 1)
      }
      const currency = body.currency!.toUpperCase()
      const unit = Math.round(body.price! * 10 ** exponents[currency]!)
      add("revenue", [`currency:${currency}`, platform], minute, unit * (body.quantity ?? 1))
    }
  }
  return totals
}
