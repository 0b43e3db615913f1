/**
 * Progress of a recovery command, as plain lines on stderr (`[12.4s] replay: 3,000 of 12,000
 * records put (25%), object 4 of 15`), so stdout keeps only the summary — or, with `--json`, only
 * the JSON object. The same lines on a terminal and in a log: no progress-bar library is installed
 * in this workspace, and cursor movements would be noise in a log anyway. `tick` lines are
 * throttled (one per `everyMillis` at most, the last one always shown by `done`); `note` lines
 * (an object that could not be read, a range lost to retention) always print.
 */
import { Clock, Console, Effect } from "effect"

/** `4.2s`, `3m05s`, `2h03m`: short enough to prefix every line. */
const elapsed = (millis: number): string => {
  const seconds = millis / 1000
  if (seconds < 60) return `${seconds.toFixed(1)}s`
  const whole = Math.floor(seconds)
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`
}

export interface Progress {
  /** A line that must be seen. */
  readonly note: (text: string) => Effect.Effect<void>
  /** A line that may be skipped when the previous one is too recent. */
  readonly tick: (text: string) => Effect.Effect<void>
  /** Prints the last skipped tick, if any. */
  readonly done: Effect.Effect<void>
}

export interface Options {
  /** The command's name, prefixed to every line. */
  readonly command: string
  /** @default 1000 */
  readonly everyMillis?: number
  /** Print nothing (a caller that renders its own output, such as a test). */
  readonly silent?: boolean
}

export const make = (options: Options): Effect.Effect<Progress> =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const every = options.everyMillis ?? 1000
    let lastPrinted = Number.NEGATIVE_INFINITY
    let lastText: string | undefined
    let skipped: string | undefined
    const print = (text: string, now: number) => {
      lastPrinted = now
      skipped = undefined
      if (text === lastText) return Effect.void
      lastText = text
      return options.silent === true
        ? Effect.void
        : Console.error(`[${elapsed(now - started)}] ${options.command}: ${text}`)
    }
    return {
      note: (text) => Effect.flatMap(Clock.currentTimeMillis, (now) => print(text, now)),
      tick: (text) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (now - lastPrinted < every) {
            skipped = text
            return Effect.void
          }
          return print(text, now)
        }),
      done: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        skipped === undefined ? Effect.void : print(skipped, now)
      )
    }
  })
