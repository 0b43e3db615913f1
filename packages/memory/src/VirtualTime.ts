/**
 * Virtual time for simulations: every run on its own `TestClock`, starting at 0, that waits for
 * each woken fiber however long it runs.
 *
 * `provide` builds Effect's `TestClock.layer` afresh for each effect it is given, so two runs (or
 * a run inside a test that has its own clock) never share a clock, and sleeps, timeouts, retries
 * and schedules only move when the run calls `TestClock.adjust`. Randomness is not part of it: a
 * run that must repeat seeds its own `Random` (`Random.withSeed`).
 *
 * The order of wake-ups is `TestClock`'s: earliest instant first, equal instants in the order the
 * sleeps began, each woken fiber (and every fiber it resumes or forks) running until it suspends
 * before the next sleep wakes. `test/VirtualTime.test.ts` checks that order against a model of
 * the clock on a 20-fiber program.
 *
 * The one setting: `TestClock` stops waiting for a woken fiber that has not suspended after its
 * `warningDelay` of real time (1 s by default), logs a warning and moves on; from then on the run
 * depends on the speed of the machine. Here the clock waits up to `patience` (a minute) instead,
 * so a seeded simulation with large backlogs gives the same result on a slow machine as on a
 * fast one. A fiber that never suspends while the clock stands still (a loop polling the clock
 * for a time it cannot reach) stalls a run by that much per wake-up, with the clock's warning.
 *
 * Why there is no speed-up any more: on Effect 3 this module replaced `TestClock`'s wait between
 * wake-ups (a few `setTimeout(0)`, at least a real millisecond per sleep woken) by a microtask
 * scheduler and a `setImmediate`, set on a private field of the clock. Effect 4's `TestClock`
 * waits for a woken fiber by counting the scheduler tasks the wake-up started, and the tasks
 * those start, until none is left, and its scheduler yields with `setImmediate`: what the old
 * hack bought, done by the clock itself. Measured on Node 24 (one fiber sleeping 1 s 10,000
 * times): Effect 3's stock clock 44 s with one `adjust` (85 s with an `adjust` per sleep), the
 * old fast path 1.9 s (8.8 s); Effect 4's `TestClock.layer()` 0.08–0.16 s (0.24–0.37 s). Fiber
 * steps run on Effect's usual scheduler, so a run may interleave with real I/O.
 */
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"

/** How long, in real time, the clock waits for a woken fiber to suspend before it moves on. */
export const patience: Duration.Duration = Duration.minutes(1)

/** Runs `effect` on a fresh `TestClock` at 0 that waits `patience` for woken fibers (see the module header). */
export const provide = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Exclude<R, TestClock.TestClock>> =>
  Effect.provide(effect, TestClock.layer({ warningDelay: patience }))
