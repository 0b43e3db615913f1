import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Clickstream from "../../src/Clickstream.js"

const decodeAndNormalize = (input: unknown) => {
  const decoded = Clickstream.decodeClickEvent(input)
  if (Result.isFailure(decoded)) return Result.fail(decoded.failure)
  return Clickstream.normalize(decoded.success.event, decoded.success.attributes)
}

const base = {
  eventId: "e-1",
  type: "page_view",
  sessionId: "s-1",
  timestamp: "2026-11-27T08:00:00.000Z"
}

describe("Clickstream", () => {
  it("normalizes type, time, currency and amount, page, platform; keeps extra fields as attributes", () => {
    const clean = decodeAndNormalize({
      ...base,
      type: "Add To Cart",
      timestamp: 1_795_766_400_123,
      price: 19.99,
      quantity: 3,
      currency: "eur",
      page: {
        url: "https://Shop.Example/p/1?email=a%40b.c#top",
        referrer: "https://www.Google.com/search?q=x"
      },
      client: { platform: "iPhone", ip: "203.0.113.9" },
      email: "a@b.c"
    })
    expect(clean).toEqual(
      Result.succeed({
        eventId: "e-1",
        type: "add_to_cart",
        sessionId: "s-1",
        timestamp: 1_795_766_400_123,
        page: { host: "shop.example", path: "/p/1", referrerHost: "www.google.com" },
        amountMinor: 5997,
        quantity: 3,
        currency: "EUR",
        client: { platform: "ios", ip: "203.0.113.9" },
        attributes: { email: "a@b.c" }
      })
    )
  })

  it("counts in each currency's own minor unit (yen have none, dinars have three)", () => {
    expect(Clickstream.toMinorUnits(1500, "JPY")).toBe(1500)
    expect(Clickstream.toMinorUnits(1.234, "KWD")).toBe(1234)
    expect(Clickstream.toMinorUnits(0.1 + 0.2, "USD")).toBe(30)
    expect(Clickstream.normalizeEventType("pageView")).toBe("page_view")
    expect(Clickstream.normalizeEventType(" product-view ")).toBe("product_view")
  })

  it("refuses what it cannot read, saying which field and why", () => {
    const reason = (input: unknown) => {
      const r = decodeAndNormalize(input)
      return Result.isFailure(r) ? r.failure.reason : "accepted"
    }
    expect(reason({ ...base, sessionId: "" })).toMatch(/^sessionId: must not be empty/)
    expect(reason({ ...base, timestamp: "yesterday" })).toMatch(/^timestamp: /)
    expect(reason({ ...base, type: "purchase", price: 10 })).toBe("a purchase needs price and currency")
    expect(reason({ ...base, price: -1, currency: "EUR" })).toMatch(/^price: must be 0 or more/)
    expect(reason("not an object")).toMatch(/event/)
  })

  it("removes configured fields, known or extra, and refuses to remove a field the metrics need", () => {
    const clean = decodeAndNormalize({
      ...base,
      client: { ip: "1.2.3.4", userAgent: "x" },
      email: "a@b.c",
      phone: "1"
    })
    if (Result.isFailure(clean)) throw new Error(clean.failure.reason)
    const paths = Clickstream.parseFieldPaths("client.ip, attributes.email,attributes.phone,not.there")
    if (Result.isFailure(paths)) throw new Error(paths.failure)
    const removed = Clickstream.removeFields(clean.success, paths.success)
    expect(removed.client).toEqual({ platform: "web", userAgent: "x" })
    expect(removed.attributes).toBeUndefined()
    expect(clean.success.attributes).toEqual({ email: "a@b.c", phone: "1" })
    expect(Clickstream.parseFieldPaths("sessionId")).toEqual(
      Result.fail('"sessionId" cannot be removed: the metrics are keyed on it')
    )
  })

  it("reads back a clean record and refuses anything else", () => {
    const record = { v: 1 as const, sessionId: "s-1", events: [] }
    expect(Clickstream.decodeCleanRecord(Clickstream.encodeCleanRecord(record))).toEqual(
      Result.succeed(record)
    )
    expect(Result.isFailure(Clickstream.decodeCleanRecord(new TextEncoder().encode('{"v":2}')))).toBe(true)
    expect(Result.isFailure(Clickstream.decodeCleanRecord(new Uint8Array([0xff])))).toBe(true)
  })
})
