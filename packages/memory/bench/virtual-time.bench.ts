/**
 * What virtual time costs in real time: one fiber sleeping 1 s 10,000 times on `VirtualTime`,
 * woken by one `TestClock.adjust` of 10,000 s, and by an `adjust` of 1 s per sleep (the way the
 * simulator's clock driver moves time). On Effect 3 the stock `TestClock` spent at least a real
 * millisecond per wake-up (44 s and 85 s for these two on this machine), which is why
 * `VirtualTime` once replaced its wait; Effect 4's clock needs no such help.
 *
 *   npm run bench:virtual-time      (SLEEPS=N for another count)
 */
import { writeFileSync } from "node:fs"
import { Clock, Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { VirtualTime } from "../src/index.js"

const sleeps = Number(process.env.SLEEPS ?? 10_000)
if (!Number.isInteger(sleeps) || sleeps < 1)
  throw new Error(`SLEEPS must be a positive integer, got ${process.env.SLEEPS}`)

const sleeper = Effect.gen(function* () {
  for (let i = 0; i < sleeps; i++) yield* Effect.sleep(Duration.seconds(1))
  return yield* Clock.currentTimeMillis
})

const oneAdjust = Effect.gen(function* () {
  const fiber = yield* Effect.forkChild(sleeper)
  yield* TestClock.adjust(Duration.seconds(sleeps))
  return yield* Fiber.join(fiber)
})

const adjustPerSleep = Effect.gen(function* () {
  const fiber = yield* Effect.forkChild(sleeper)
  for (let i = 0; i < sleeps; i++) yield* TestClock.adjust(Duration.seconds(1))
  return yield* Fiber.join(fiber)
})

const rows: Array<{ name: string; medianMs: number; minMs: number; maxMs: number; microsPerWake: number }> =
  []

const measure = async (label: string, program: Effect.Effect<number>) => {
  const runs: Array<number> = []
  for (let run = 0; run < 5; run++) {
    const started = performance.now()
    const end = await Effect.runPromise(VirtualTime.provide(program))
    runs.push(performance.now() - started)
    if (end !== sleeps * 1000) throw new Error(`${label}: the clock ended at ${end} ms, not ${sleeps * 1000}`)
  }
  runs.sort((a, b) => a - b)
  const perWake = (runs[2]! * 1000) / sleeps
  rows.push({ name: label, medianMs: runs[2]!, minMs: runs[0]!, maxMs: runs[4]!, microsPerWake: perWake })
  console.log(
    `${label.padEnd(26)} | median ${runs[2]!.toFixed(0).padStart(6)} ms | range ${runs[0]!.toFixed(0)}–${runs[4]!.toFixed(0)} ms | ${perWake.toFixed(1)} µs per wake-up`
  )
}

console.log(
  `VirtualTime on node ${process.version}: one fiber, ${sleeps.toLocaleString("en")} sleeps of 1 s, 5 runs each`
)
await measure("one adjust", oneAdjust)
await measure("one adjust per sleep", adjustPerSleep)

// `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
if (process.env.BENCH_JSON !== undefined) {
  writeFileSync(
    process.env.BENCH_JSON,
    JSON.stringify({ bench: "virtual time", node: process.version, sleeps, rows })
  )
}
