/**
 * The whole clickstream path on memory layers and virtual time: a seeded stream of 50,000 events
 * (bots, invalid and unwanted events, events too old, PII on every event) through the cleaner,
 * the clean stream, the metrics stage's log lines, the log group's subscription and the
 * forwarder, into the in-memory intake — which must hold exactly the totals the fixture computes
 * on its own, with the PII gone from the clean stream and every drop counted by reason.
 */
import { describe, expect, it } from "@effect/vitest"
import type { RecordStream } from "@spillway/core"
import { ClickstreamFixtures } from "@spillway/testing"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as ClickstreamPipeline from "../../src/ClickstreamPipeline.js"
import * as MemoryMetricsIntake from "../../src/MemoryMetricsIntake.js"

const start = Date.UTC(2026, 10, 27, 8, 0, 0)

/** Puts each second's events into the raw stream (partitioned by session), moving the clock a second at a time. */
const produce = (stream: RecordStream.Service, events: ReadonlyArray<ClickstreamFixtures.GeneratedEvent>) =>
  Effect.gen(function* () {
    let i = 0
    while (i < events.length) {
      const now = yield* Clock.currentTimeMillis
      const due: Array<ClickstreamFixtures.GeneratedEvent> = []
      while (i < events.length && events[i]!.sentAt <= now) due.push(events[i++]!)
      for (let j = 0; j < due.length; j += 500) {
        const outcomes = yield* stream.putRecords(
          due.slice(j, j + 500).map((e) => ({
            partitionKey: e.sessionId,
            data: new TextEncoder().encode(JSON.stringify(e.body))
          }))
        )
        expect(outcomes.every((o) => o._tag === "Stored")).toBe(true)
      }
      yield* TestClock.adjust("1 second")
    }
  })

describe("clickstream end to end (memory)", () => {
  it.effect(
    "50,000 events: exactly the totals computed independently, PII removed, bots dropped and counted",
    () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const pipeline = yield* ClickstreamPipeline.make()
        const events = ClickstreamFixtures.generate({ seed: 7, events: 50_000, start, eventsPerSecond: 500 })
        const labels = ClickstreamFixtures.labels(events)
        expect(labels.bot).toBeGreaterThan(1000)

        yield* produce(pipeline.raw, events)
        let ticks = 0
        while (!(yield* pipeline.isIdle) && ticks++ < 600) yield* TestClock.adjust("1 second")
        expect(yield* pipeline.isIdle).toBe(true)

        const totals = yield* pipeline.cleanerTotals
        expect(totals.events).toBe(50_000)
        expect(totals.dropped).toEqual({
          invalid: labels.invalid,
          unwantedType: labels.unwanted,
          bot: labels.bot,
          tooOld: labels.tooOld
        })
        expect(totals.kept).toBe(labels.valid)
        expect(totals.failed).toBe(0)

        const points = yield* pipeline.intake.points
        const got = MemoryMetricsIntake.totals(points)
        const want = ClickstreamFixtures.expected(events)
        expect(got.size).toBe(want.size)
        expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want))
        expect((yield* pipeline.intake.stats).droppedOutsideWindow).toBe(0)
        expect(yield* pipeline.spool.size("pending")).toBe(0)

        // The clean stream holds every valid event once, and no PII.
        const cleanRecords = yield* pipeline.clean.records
        const text = cleanRecords.map((r) => new TextDecoder().decode(r.data)).join("\n")
        expect(text).not.toMatch(/@example\.com/)
        expect(text).not.toMatch(/203\.0\.113\./)
        expect(text).not.toMatch(/utm_source/)
        const cleanEvents = cleanRecords.flatMap(
          (r) => (JSON.parse(new TextDecoder().decode(r.data)) as { events: Array<unknown> }).events
        )
        expect(cleanEvents).toHaveLength(labels.valid)
      }),
    120_000
  )
})
