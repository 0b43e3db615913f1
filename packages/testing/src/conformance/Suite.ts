/**
 * What every conformance suite shares: one options shape (`name`, `layer`, `clock`, `faults?`) and
 * one way to register a test, so a backend that runs one suite knows how to run them all.
 *
 * Each test builds its own layer (a fresh, empty backend) and nothing leaks between tests: the
 * layer is built with a memo map of its own, so even a `Layer` value reused by `layer` is built
 * again. Tests that need the fault hooks are registered only when `faults` is given: a backend
 * that cannot fail on demand (a real service) runs the rest, and the skipped checks are simply
 * not there — never a skipped test.
 */
import { it } from "@effect/vitest"
import { Effect, type Layer } from "effect"

/**
 * How a suite's tests see time. `"test"`: each test runs on `TestClock` (`it.effect`) and time
 * moves only when the suite moves it — for in-memory backends, whose waits then cost nothing.
 * `"live"`: the real clock (`it.live`) — for emulators and real services; the suite waits in
 * short steps, bounded, and never asserts on how long anything took.
 */
export type SuiteClock = "test" | "live"

/**
 * The options every suite takes.
 * - `Setup`: what a test asks of its fresh backend (an archive's layout, a queue's size limit);
 *   `void` when there is nothing to ask.
 * - `Service`: the service under test. `R`: whatever else the layer provides, which `faults` (and
 *   a suite's other capabilities) may read — a backend's control handle, say.
 */
export interface SuiteOptions<Setup, Service, Hooks, R> {
  /** The backend, as test titles name it. */
  readonly name: string
  /** Builds a fresh, empty backend for `setup`; called once per test. */
  readonly layer: (setup: Setup) => Layer.Layer<Service | R, unknown>
  readonly clock: SuiteClock
  /**
   * The fault hooks, built in the test's context (a service key works as is: `faults: StreamFaults`).
   * Without them, the tests that make the backend fail are not registered.
   */
  readonly faults?: Effect.Effect<Hooks, unknown, Service | R> | undefined
  /** Per-test timeout in milliseconds. */
  readonly timeout?: number | undefined
}

/** Registers one test of a suite: `body` runs against a fresh backend built for `setup`. */
export const register =
  <Setup, Service, R>(options: {
    readonly layer: (setup: Setup) => Layer.Layer<Service | R, unknown>
    readonly clock: SuiteClock
    readonly timeout?: number | undefined
  }) =>
  (title: string, body: () => Effect.Effect<void, unknown, Service | R>, setup: Setup): void => {
    const test = options.clock === "test" ? it.effect : it.live
    test(title, () => Effect.provide(body(), options.layer(setup), { local: true }), options.timeout)
  }

/**
 * Registers a test that needs the fault hooks, or nothing when the backend has none: the test
 * is then absent from the run, not skipped.
 */
export const registerWithFaults =
  <Setup, Service, Hooks, R>(options: SuiteOptions<Setup, Service, Hooks, R>) =>
  (title: string, body: (faults: Hooks) => Effect.Effect<void, unknown, Service | R>, setup: Setup): void => {
    const faults = options.faults
    if (faults === undefined) return
    register(options)(title, () => Effect.flatMap(faults, body), setup)
  }
