/**
 * Virtual time for simulations: Effect's `TestContext` (`TestClock`, `TestRandom`, …), made fast.
 *
 * Why this exists: before `TestClock.adjust` wakes each sleeping fiber it waits until every fiber
 * is suspended, and it checks that by comparing the fibers' states around a `setTimeout(0)` — at
 * least a millisecond of real time per woken sleep. A ten-minute simulation wakes thousands of
 * sleeps (polls, writes, retries, client ticks), so most of its wall time was spent in those
 * timers with the CPU idle.
 *
 * What it does instead: it runs the effect on a scheduler that executes every fiber step on the
 * microtask queue (Effect's `MixedScheduler` never falling back to `setTimeout`), and lets the
 * clock wait with `setImmediate`. Node runs an immediate only once the microtask queue is empty,
 * that is once every fiber is waiting on a timer, a deferred or I/O — the same condition the
 * `setTimeout(0)` was waiting for, observed in microseconds. The order of wake-ups is still
 * `TestClock`'s own, so results are unchanged, byte for byte (the simulator's determinism tests
 * compare runs).
 *
 * The clock's wait lives in a private field of Effect's `TestClock` implementation. If a later
 * Effect renames it, `provide` leaves the clock as it is: slower, same results.
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
