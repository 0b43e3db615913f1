/**
 * A scenario's plan on the clock: each fault started and stopped at its place in the planned
 * traffic time, and the index's automated snapshots taken at theirs. Both run as fibers next to
 * the producer, so a fault meets whatever traffic is in flight.
 */
import type { MemoryPipeline } from "@spillway/memory"
import { Clock, Duration, Effect } from "effect"
import type { Scenario } from "../Scenario.js"

/** Starts and stops each fault of the scenario at its place in the planned traffic time. */
export const injectFaults = (
  pipeline: MemoryPipeline.Pipeline,
  scenario: Scenario,
  trafficMillis: number
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const begin = yield* Clock.currentTimeMillis
    yield* Effect.forEach(
      scenario.faults,
      (fault) =>
        Effect.gen(function* () {
          const from = Math.round(fault.from * trafficMillis)
          const to = Math.round(fault.to * trafficMillis)
          if (from > 0) yield* Effect.sleep(Duration.millis(from))
          yield* fault.start(pipeline, begin + to)
          yield* Effect.sleep(Duration.millis(to - from))
          yield* fault.stop(pipeline)
        }),
      { concurrency: "unbounded", discard: true }
    )
  })

/** The index's automated snapshots, at the scenario's times. */
export const takeSnapshots = (
  pipeline: MemoryPipeline.Pipeline,
  scenario: Scenario,
  trafficMillis: number
): Effect.Effect<void> =>
  Effect.gen(function* () {
    let elapsed = 0
    for (const at of scenario.recovery?.snapshotsAt ?? []) {
      const due = Math.round(at * trafficMillis)
      if (due > elapsed) yield* Effect.sleep(Duration.millis(due - elapsed))
      elapsed = Math.max(elapsed, due)
      yield* pipeline.index.takeSnapshot
    }
  })

/** How each fault reads in the report: its name and its window. */
export const describeFaults = (scenario: Scenario): Array<string> =>
  scenario.faults.map((f) =>
    f.from === f.to
      ? `${f.name} (at ${Math.round(f.from * 100)}% of traffic)`
      : `${f.name} (${Math.round(f.from * 100)}–${Math.round(f.to * 100)}% of traffic)`
  )
