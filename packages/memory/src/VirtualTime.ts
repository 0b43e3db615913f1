/**
 * Virtual time for simulations: Effect's `TestContext` (`TestClock`, `TestRandom`, …), made fast.
 *
 * Why this exists: before `TestClock.adjust` wakes each sleeping fiber it waits for the fibers
 * that are running to settle, by yielding to the event loop with `setTimeout(0)` (a few times per
 * wake-up). Under Effect's default scheduler that is what lets every fiber step already queued —
 * on microtasks, or on a `setTimeout` after a long run of steps — run before the clock moves on.
 * It costs at least a millisecond of real time per wake-up, and a ten-minute simulation wakes
 * thousands of sleeps (polls, writes, retries, client ticks): most of its wall time was spent
 * idle in those timers.
 *
 * What it does instead: it runs the effect on a scheduler that executes every fiber step on the
 * microtask queue (Effect's `MixedScheduler` never falling back to `setTimeout`), and lets the
 * clock yield with `setImmediate`. Node runs an immediate only once the microtask queue is empty,
 * so when the clock moves on, every fiber step that was queued has run and every fiber is waiting
 * on a timer, a deferred or I/O — at least what the `setTimeout(0)` guaranteed, in microseconds.
 * The order of wake-ups is `TestClock`'s own. Tests compare it with the stock clock: a 20-fiber
 * program (`test/VirtualTime.test.ts`) and whole simulator scenarios (the CLI's
 * `simulate.test.ts`) give the same results, byte for byte.
 *
 * The clock's yield lives in a private field of Effect's `TestClock` implementation. If a later
 * Effect renames it, `provide` leaves the clock as it is: slower, same results (`isFast` says
 * which, and a test checks it).
 *
 * Not for effects that must interleave with real I/O while they run: the microtask scheduler
 * never yields to the event loop while a fiber has work.
 */
import { Effect, Scheduler, TestClock, TestContext, type TestServices } from "effect"

/** Fiber steps on microtasks only: no `setTimeout` after a long run of steps. */
const microtaskScheduler = new Scheduler.MixedScheduler(Number.MAX_SAFE_INTEGER)

const waitForIdle = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

const privateWaitField = "yieldTimer"

const speedUp = (clock: TestClock.TestClock) =>
  Effect.sync(() => {
    if (privateWaitField in clock) {
      ;(clock as unknown as Record<string, unknown>)[privateWaitField] = waitForIdle
    }
  })

/** Whether `provide` found the clock's wait to replace (false means it runs at stock speed). */
export const isFast: Effect.Effect<boolean, never, never> = TestClock.testClockWith((clock) =>
  Effect.succeed(privateWaitField in clock)
).pipe(Effect.provide(TestContext.TestContext))

/**
 * Runs `effect` with a fresh `TestContext` (its own `TestClock` at 0, `TestRandom`, …) and the fast
 * wait described above.
 */
export const provide = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Exclude<R, TestServices.TestServices>> =>
  TestClock.testClockWith(speedUp).pipe(
    Effect.zipRight(effect),
    Effect.withScheduler(microtaskScheduler),
    Effect.provide(TestContext.TestContext)
  )
