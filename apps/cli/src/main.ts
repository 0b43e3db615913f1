/**
 * The `spillway` command. `bin/spillway.js` runs this file through tsx, so the CLI needs no build.
 *
 * Exit codes: 0 success (and `--help`, `--version`); 1 a failure, an invocation the command line
 * refuses (its errors on stderr, see `cliOutput.ts`), or records lost (`dev`); 2 options that do
 * not go together. Ctrl-C and SIGTERM interrupt the command, which then drains and exits with the code it
 * set; a second Ctrl-C (or SIGTERM) during the drain quits at once.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Layer, Runtime } from "effect"
import { Command } from "effect/cli"
import { FetchHttpClient } from "effect/http"
import * as CliOutput from "./cliOutput.js"
import { devCommand } from "./dev/command.js"
import { simulateCommand } from "./simulate/command.js"

const spillway = Command.make("spillway").pipe(
  Command.withDescription("Spillway: typed, failure-proof telemetry ingestion for AWS"),
  Command.withSubcommands([devCommand, simulateCommand])
)

const cli = Command.run(spillway, { version: "0.1.0" })

const requestedExitCode = () => (typeof process.exitCode === "number" ? process.exitCode : 0)

/** Prints a one-line error (no stack: the cause is the user's to fix) and sets the exit code. */
const refuse = (message: string, code: number) =>
  Effect.andThen(
    Console.error(`spillway: ${message}`),
    Effect.sync(() => {
      process.exitCode = code
    })
  )

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
  Effect.catchTags({
    UsageError: (e) => refuse(e.message, 2),
    ServeError: (e) =>
      refuse(
        `cannot start the collector: ${e.cause instanceof Error ? e.cause.message : String(e.cause)} (--port 0 picks a free port)`,
        1
      ),
    BackendError: (e) => refuse(e.message, 1)
  }),
  Effect.provide(Layer.mergeAll(NodeServices.layer, FetchHttpClient.layer, CliOutput.presenter)),
  NodeRuntime.runMain({
    teardown: (exit, onExit) =>
      onExit(
        Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)
          ? requestedExitCode()
          : // At least 1, unless the failure says otherwise (help shown for a bare `spillway`: 0).
            Math.max(requestedExitCode(), Runtime.getErrorExitCode(Cause.squash(exit.cause)))
      )
  })
)
