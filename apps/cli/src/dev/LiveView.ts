/**
 * The live view of `spillway dev`: records in and out per second, end-to-end delay, duplicates
 * skipped, fallback queue depth, records sent to the on-failure destination, and the backup
 * (records archived, objects, records waiting in Firehose's buffer).
 *
 * On a terminal the block is redrawn in place; when stdout is a pipe or a file (CI, `| tee`) it
 * prints one plain line every couple of seconds instead, since cursor movements would only be noise
 * in a log.
 */
import { Metrics } from "@spillway/core"
import { Clock, Console, Duration, Effect, Metric } from "effect"
import * as Text from "../Text.js"
import type { Ledger } from "./Ledger.js"
import type { Observed } from "./Summary.js"

export interface Snapshot {
  /** Milliseconds since the view started. */
  readonly at: number
  readonly accepted: number
  readonly written: number
  readonly delay: Metrics.DelayFigures
  readonly duplicatesSkipped: number
  /** Fallback queue messages, visible or in flight. */
  readonly fallbackDepth: number
  /** Records the processor gave up on and sent to the on-failure destination. */
  readonly onFailure: number
  readonly backup: {
    readonly archived: number
    readonly objects: number
    readonly buffered: number
    /** The latest read or delivery failure, if any. */
    readonly lastError: string | undefined
  }
}

export const snapshot = (pipeline: Observed, ledger: Ledger, startedAt: number): Effect.Effect<Snapshot> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const figures = yield* ledger.figures
    return {
      at: now - startedAt,
      accepted: figures.accepted,
      written: (yield* Metric.value(Metrics.recordsWritten)).count,
      delay: yield* Metrics.readDelay,
      duplicatesSkipped: (yield* Metric.value(Metrics.duplicatesSkipped)).count,
      fallbackDepth: (yield* pipeline.queue.stats).total,
      onFailure: (yield* pipeline.processor.counters).recordsDiscarded,
      backup: yield* Effect.map(pipeline.backup.counters, (c) => ({
        archived: c.recordsDelivered,
        objects: c.objectsDelivered,
        buffered: c.buffered,
        lastError: c.lastError
      }))
    }
  })

const perSecond = (count: number, millis: number): number =>
  millis <= 0 ? 0 : Math.round((count * 1000) / millis)

const ms = (value: number): string => `${Math.round(value)} ms`

/** One line, for logs. */
export const formatLine = (previous: Snapshot, current: Snapshot): string => {
  const span = current.at - previous.at
  return [
    `[${(current.at / 1000).toFixed(1)}s]`,
    `in ${Text.number(perSecond(current.accepted - previous.accepted, span))}/s`,
    `out ${Text.number(perSecond(current.written - previous.written, span))}/s`,
    `delay avg ${ms(current.delay.avg)} p99 ${ms(current.delay.p99)}`,
    `skips ${Text.number(current.duplicatesSkipped)}`,
    `fallback ${Text.number(current.fallbackDepth)}`,
    `on-failure ${Text.number(current.onFailure)}`,
    `backup ${Text.number(current.backup.archived)} (${Text.count(current.backup.objects, "object")}, ${Text.number(current.backup.buffered)} buffered)${
      current.backup.lastError === undefined ? "" : ` last error: ${current.backup.lastError}`
    }`
  ].join("  ")
}

/** A block of lines, for a terminal. */
export const formatBlock = (previous: Snapshot, current: Snapshot): ReadonlyArray<string> => {
  const span = current.at - previous.at
  const pad = (label: string) => label.padEnd(12)
  return [
    `${pad("up")}${(current.at / 1000).toFixed(0)} s`,
    `${pad("in")}${Text.number(perSecond(current.accepted - previous.accepted, span)).padStart(6)} rec/s   ${Text.number(current.accepted)} accepted`,
    `${pad("out")}${Text.number(perSecond(current.written - previous.written, span)).padStart(6)} rec/s   ${Text.number(current.written)} written`,
    `${pad("delay")}avg ${ms(current.delay.avg)}   p99 ${ms(current.delay.p99)}   max ${ms(current.delay.max)}`,
    `${pad("cache skips")}${Text.number(current.duplicatesSkipped)}`,
    `${pad("fallback")}${Text.count(current.fallbackDepth, "message")}`,
    `${pad("on-failure")}${Text.count(current.onFailure, "record")}`,
    `${pad("backup")}${Text.count(current.backup.archived, "record")} in ${Text.count(current.backup.objects, "object")}, ${Text.number(current.backup.buffered)} buffered`,
    ...(current.backup.lastError === undefined ? [] : [`${pad("")}last error: ${current.backup.lastError}`])
  ]
}

export interface Config {
  /** Redraw in place (a terminal) or print lines (a pipe). */
  readonly tty: boolean
  /** @default 500 ms on a terminal, 2 s otherwise */
  readonly every?: Duration.Input
}

/** Prints the view until interrupted. */
export const run = (pipeline: Observed, ledger: Ledger, config: Config): Effect.Effect<never> =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const every = Duration.fromInputUnsafe(config.every ?? (config.tty ? "500 millis" : "2 seconds"))
    let previous = yield* snapshot(pipeline, ledger, startedAt)
    let drawn = 0
    while (true) {
      yield* Effect.sleep(every)
      const current = yield* snapshot(pipeline, ledger, startedAt)
      if (config.tty) {
        const block = formatBlock(previous, current)
        // Move to the start of the previous block and clear to the end of the screen.
        const rewind = drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ""
        yield* Console.log(`${rewind}${block.join("\n")}`)
        drawn = block.length
      } else {
        yield* Console.log(formatLine(previous, current))
      }
      previous = current
    }
  })
