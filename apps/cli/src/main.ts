/**
 * The `spillway` command. `bin/spillway.js` runs this file through tsx, so the CLI needs no build.
 *
 * Exit codes, the same for every command:
 * - 0 done (and `--help`, `--version`);
 * - 1 the command ran but something is left (records lost in `dev`; what a recovery command could
 *   not do, listed in its summary), or it failed on the way (a service that stopped answering);
 * - 2 bad input: an invocation the command line refuses (unknown option, missing or malformed
 *   value) or one the command refuses before changing anything (options that do not go together,
 *   missing configuration, no credentials, an unknown snapshot). One plain line on stderr says why.
 *
 * No failure prints a stack trace or a serialized error: every one is reduced to a line
 * (`SPILLWAY_DEBUG=1` adds the full cause, for a bug report). Ctrl-C and SIGTERM interrupt the
 * command, which then drains and exits with the code it set; a second Ctrl-C (or SIGTERM) during
 * the drain quits at once.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Layer } from "effect"
import { Command } from "effect/cli"
import { FetchHttpClient } from "effect/http"
import * as CliOutput from "./cliOutput.js"
import { devCommand } from "./dev/command.js"
import * as Refusal from "./Refusal.js"
import { replayCommand } from "./replay/command.js"
import { reprocessFailuresCommand } from "./reprocess-failures/command.js"
import { restoreCommand } from "./restore/command.js"
import { simulateCommand } from "./simulate/command.js"

const spillway = Command.make("spillway").pipe(
  Command.withDescription(
    "Spillway: typed, failure-proof telemetry ingestion for AWS. Exit codes: 0 done, 1 something is left (listed), 2 bad input (nothing done)."
  ),
  Command.withSubcommands([
    devCommand,
    simulateCommand,
    reprocessFailuresCommand,
    replayCommand,
    restoreCommand
  ])
)

const cli = Command.run(spillway, { version: "0.1.0" })

const requestedExitCode = () => (typeof process.exitCode === "number" ? process.exitCode : 0)

const setExitCode = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

/** Prints a one-line error (no stack: the cause is the user's to fix) and sets the exit code. */
const refuse = (message: string, code: number) => Effect.andThen(Console.error(message), setExitCode(code))

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim()

/** Every failure a command can end with, as one line and an exit code. */
const report = (cause: Cause.Cause<unknown>) =>
  Effect.gen(function* () {
    if (process.env.SPILLWAY_DEBUG === "1") yield* Console.error(Cause.pretty(cause))
    const error = Cause.squash(cause)
    const tag = field(error, "_tag")
    const message = oneLine(String(field(error, "message") ?? error))
    switch (tag) {
      // Already presented (help, or the one-line refusal of `cliOutput.ts`).
      case "ShowHelp": {
        const errors = field(error, "errors")
        return yield* setExitCode(Array.isArray(errors) && errors.length > 0 ? 2 : 0)
      }
      case "Refused":
        return yield* refuse(`${field(error, "command")}: ${message}`, Refusal.exitCode)
      case "UsageError":
        return yield* refuse(`spillway dev: ${message}`, 2)
      case "SimulationError":
        return yield* refuse(
          `spillway simulate: ${message}`,
          field(error, "reason") === "InvalidOptions" ? 2 : 1
        )
      case "ServeError": {
        const inner = field(error, "cause")
        return yield* refuse(
          `spillway dev: cannot start the collector: ${inner instanceof Error ? inner.message : String(inner)} (--port 0 picks a free port)`,
          1
        )
      }
      case "BackendError":
        return yield* refuse(`spillway dev: ${message}`, 1)
      default:
        return yield* refuse(
          Cause.hasFails(cause)
            ? `spillway: ${message}`
            : `spillway: internal error: ${message} (SPILLWAY_DEBUG=1 prints the full cause for a bug report)`,
          1
        )
    }
  })

// `runMain` interrupts the command on the first signal and keeps listening until it has ended,
// so a second signal would do nothing; the drain is uninterruptible, and the user asked twice.
let signalled = false
const quitOnSecondSignal = () => {
  if (signalled) process.exit(130)
  signalled = true
}
process.on("SIGINT", quitOnSecondSignal)
process.on("SIGTERM", quitOnSecondSignal)

cli.pipe(
  Effect.catchCause((cause) => (Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : report(cause))),
  Effect.provide(Layer.mergeAll(NodeServices.layer, FetchHttpClient.layer, CliOutput.presenter)),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Failures were reported and set their code above; an interrupted command (Ctrl-C, SIGTERM)
    // exits with the code it set while draining.
    teardown: (_exit, onExit) => onExit(requestedExitCode())
  })
)
