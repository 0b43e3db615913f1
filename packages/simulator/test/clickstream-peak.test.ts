/**
 * `clickstream-peak`: the same peak-day traffic through the inline Datadog call and through logs +
 * forwarder, on virtual time. The inline variant falls behind during the peak (its iterator age
 * grows), the decoupled one does not, and both count every kept event exactly once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as ClickstreamPeak from "../src/ClickstreamPeak.js"

describe("clickstream-peak", () => {
  it.live(
    "the inline variant falls behind at the peak, logs + forwarder does not; both count every event once",
    () =>
      Effect.gen(function* () {
        const report = yield* ClickstreamPeak.runClickstreamPeak({ seed: 1, events: 20_000 })
        expect(Schema.is(ClickstreamPeak.Report)(report)).toBe(true)
        const [inline, decoupled] = report.variants
        expect(inline!.variant).toBe("inline")
        expect(decoupled!.variant).toBe("logs+forwarder")
        expect(inline!.fallingBehind).toBe(true)
        expect(decoupled!.fallingBehind).toBe(false)
        expect(decoupled!.iteratorAgeMs.p99).toBeLessThan(inline!.iteratorAgeMs.p99)
        expect(inline!.iteratorAgeAtPeakEndMs).toBeGreaterThan(inline!.iteratorAgeAtPeakStartMs + 1000)
        for (const variant of report.variants) {
          expect(variant.keptEvents).toBe(20_000)
          expect(variant.eventsCounted).toBe(variant.keptEvents)
        }
        expect(decoupled!.intakeRequests).toBeLessThan(inline!.intakeRequests)
        const table = ClickstreamPeak.renderTable(report)
        expect(table).toMatch(/falling behind\s+yes\s+no/)
        expect(table).toMatch(/iterator age p99/)
        expect(table).toMatch(/metric delay p99/)
      }),
    60_000
  )

  it.effect("refuses options it cannot run", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(ClickstreamPeak.runClickstreamPeak({ seed: 1, events: 10 }))
      expect(error.reason).toBe("InvalidOptions")
    })
  )
})
