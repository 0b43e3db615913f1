import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref, type Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as Schedules from "../src/Schedules.js"

/**
 * Runs an always-failing effect on `schedule` and returns how many attempts it made and how long it
 * took, moving the clock in `step`s (a sleep ends at its own instant whatever the step).
 */
const exhaust = <Out>(schedule: Schedule.Schedule<Out, unknown>, step: Duration.Input = "100 millis") =>
  Effect.gen(function* () {
    const attempts = yield* Ref.make(0)
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Ref.update(attempts, (n) => n + 1).pipe(
      Effect.andThen(Effect.fail("boom")),
      Effect.retry(schedule),
      Effect.ignore,
      Effect.andThen(Clock.currentTimeMillis),
      Effect.forkChild
    )
    for (let i = 0; i < 2000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(step)
    const end = yield* Fiber.join(fiber)
    return { attempts: yield* Ref.get(attempts), elapsed: Duration.millis(end - start) }
  })

describe("Schedules", () => {
  it.effect("sinkWrite retries many times but returns inside its budget, well under a Lambda timeout", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.sinkWrite)
      expect(attempts).toBeGreaterThan(5)
      // upTo lets the last delay start until 20 s have passed; that delay is at most 5 s × 1.2.
      expect(Duration.isGreaterThanOrEqualTo(elapsed, Duration.seconds(20))).toBe(true)
      expect(Duration.isLessThanOrEqualTo(elapsed, Schedules.sinkWriteBudget)).toBe(true)
    })
  )

  it.effect("fallbackSend gives up within a second so the collector can answer 503", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.fallbackSend)
      expect(attempts).toBe(4)
      expect(Duration.isLessThan(elapsed, Duration.seconds(1))).toBe(true)
    })
  )

  it.effect("archiveRead keeps trying for about two minutes, then stops", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.archiveRead, "1 second")
      // 200 ms doubling up to the 10 s spacing (jittered ±20%), then every 8–12 s.
      expect(attempts).toBeGreaterThan(10)
      expect(attempts).toBeLessThan(30)
      expect(Duration.isGreaterThanOrEqualTo(elapsed, Duration.minutes(2))).toBe(true)
      // upTo lets the last delay start just before two minutes; that delay is at most 12 s.
      expect(Duration.isLessThanOrEqualTo(elapsed, Duration.seconds(132))).toBe(true)
    })
  )

  it.effect("replayPut backs off for about a minute, then lets the replay stop at its checkpoint", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.replayPut, "1 second")
      // 200 ms doubling up to the 5 s spacing (jittered ±20%), then every 4–6 s.
      expect(attempts).toBeGreaterThan(10)
      expect(attempts).toBeLessThan(25)
      expect(Duration.isGreaterThanOrEqualTo(elapsed, Duration.minutes(1))).toBe(true)
      // upTo lets the last delay start just before a minute; that delay is at most 6 s.
      expect(Duration.isLessThanOrEqualTo(elapsed, Duration.seconds(66))).toBe(true)
    })
  )

  it("isRetryable reads the flag errors carry", () => {
    expect(Schedules.isRetryable({ isRetryable: true })).toBe(true)
    expect(Schedules.isRetryable({ isRetryable: false })).toBe(false)
    expect(Schedules.isRetryable(new Error("x"))).toBe(false)
    expect(Schedules.isRetryable(null)).toBe(false)
  })
})

describe("Schedules.redriveVisibilitySeconds", () => {
  it("holds a message the stream refused back a fiftieth of how long it has been parked, 1 to 30 s", () => {
    expect(
      [0, 1, 49, 50, 50.5, 100, 101, 600, 1450, 1500, 1501, 86_400].map(Schedules.redriveVisibilitySeconds)
    ).toEqual([1, 1, 1, 1, 2, 2, 3, 12, 29, 30, 30, 30])
    expect(Schedules.redriveVisibilityCapSeconds).toBe(30)
    // A time SQS and the clock never give (negative, not a number) still gets a whole, positive visibility.
    expect(Schedules.redriveVisibilitySeconds(-5)).toBe(1)
    expect(Schedules.redriveVisibilitySeconds(Number.NaN)).toBe(1)
  })

  it("tries a parked message again within 2% of the outage (at least 1 s) after it ends, and rides out hours within SQS's largest maxReceiveCount", () => {
    /** The instants (seconds after parking) at which a message refused on every receive is received. */
    const receivesUntil = (seconds: number) => {
      const at: Array<number> = [0]
      while (at.at(-1)! < seconds) at.push(at.at(-1)! + Schedules.redriveVisibilitySeconds(at.at(-1)!))
      return at
    }
    for (const outage of [5, 23.3, 58.3, 300, 1200]) {
      const at = receivesUntil(outage)
      const wait = at.at(-1)! - outage
      expect(wait, `outage ${outage} s`).toBeLessThanOrEqual(Math.max(1, 0.02 * outage + 1))
    }
    // Every second for the first 50 s, then every 2 s: 77 receives in the first 100 s.
    expect(receivesUntil(100)).toHaveLength(77)
    // 1,000 receives (SQS's largest maxReceiveCount) last more than 6 hours.
    expect(receivesUntil(6 * 3600).length).toBeLessThan(1000)
  })
})

describe("Schedules.reparkSlots", () => {
  it("spreads what is still refused over the attempt's delay, the oldest first and the least held back", () => {
    expect(Schedules.reparkSlots(0, 1)).toEqual([])
    expect(Schedules.reparkSlots(1, 3)).toEqual([{ from: 0, to: 1, delaySeconds: 4 }])
    expect(Schedules.reparkSlots(10, 1)).toEqual([{ from: 0, to: 10, delaySeconds: 1 }])
    expect(Schedules.reparkSlots(8, 3)).toEqual([
      { from: 0, to: 2, delaySeconds: 1 },
      { from: 2, to: 4, delaySeconds: 2 },
      { from: 4, to: 6, delaySeconds: 3 },
      { from: 6, to: 8, delaySeconds: 4 }
    ])
    expect(Schedules.reparkSlots(3, 4)).toEqual([
      { from: 0, to: 1, delaySeconds: 3 },
      { from: 1, to: 2, delaySeconds: 6 },
      { from: 2, to: 3, delaySeconds: 8 }
    ])
    // Every record is in exactly one slot, whatever the counts.
    for (const refused of [1, 7, 100, 1001]) {
      for (const attempt of [1, 2, 3, 4, 9]) {
        const slots = Schedules.reparkSlots(refused, attempt)
        expect(slots[0]!.from).toBe(0)
        expect(slots.at(-1)!.to).toBe(refused)
        slots.forEach((slot, k) => {
          if (k > 0) expect(slot.from).toBe(slots[k - 1]!.to)
          expect(slot.to).toBeGreaterThan(slot.from)
        })
        expect(slots.at(-1)!.delaySeconds).toBe(Schedules.reparkDelaySeconds(attempt))
      }
    }
  })
})
