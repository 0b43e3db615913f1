/**
 * How a recovery command ends: its summary (or with `--json`, exactly one JSON object) on stdout,
 * and its exit code — 0 done, 1 something is left (the summary lists it), 2 refused before
 * changing anything (`Refused`, one line from `main.ts`). A failure on the way (a service that stops
 * answering mid-run) is one line on stderr and exit 1: what was done is kept (checkpoints, deleted
 * messages), and running the command again goes on.
 */
import { Console, Effect } from "effect"
import { Flag } from "effect/cli"
import { Refused } from "../Refusal.js"

export const jsonFlag = Flag.Boolean("json").pipe(
  Flag.withoutNegation,
  Flag.withDefault(false),
  Flag.withDescription(
    "Print the result as one JSON object on stdout instead of the summary (progress stays on stderr) (default: off)"
  )
)

export const exitCodesHelp =
  "Exit codes: 0 done; 1 partial — something is left, and the summary says what; 2 bad input — nothing was done (an unknown option or value, missing configuration, no credentials, …)."

export const setExitCode = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

/** Prints the outcome and sets the exit code. */
export const emit = (options: {
  readonly json: boolean
  readonly summary: () => string
  readonly value: () => unknown
  readonly exitCode: number
}) =>
  Effect.andThen(
    options.json ? Console.log(JSON.stringify(options.value())) : Console.log(options.summary()),
    setExitCode(options.exitCode)
  )

/**
 * Ctrl-C or SIGTERM during a command: says what was kept and how to go on, and exits 1 — something
 * is left.
 */
export const onInterrupt =
  (command: string, whatIsKept: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.onInterrupt(effect, () =>
      Effect.andThen(Console.error(`${command}: interrupted; ${whatIsKept}`), setExitCode(1))
    )

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

/**
 * Refusals go on to `main.ts` (exit 2); any other failure becomes one line naming the command,
 * and exit 1.
 */
export const failures =
  (command: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A | undefined, Refused, R> =>
    effect.pipe(
      Effect.catch((error: E) =>
        error instanceof Refused
          ? Effect.fail(error)
          : Effect.andThen(
              Console.error(
                `${command}: stopped: ${String(field(error, "message") ?? error).replace(/\s*\n\s*/g, " ")}; what was done is kept, run the same command again to go on`
              ),
              Effect.as(setExitCode(1), undefined)
            )
      )
    )
