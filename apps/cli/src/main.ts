/**
 * The `spillway` command. `bin/spillway.js` runs this file through tsx, so the CLI needs no build.
 *
 * Exit codes: 0 success; 1 a failure, or records lost (`dev`); 2 options that do not go together.
 * Ctrl-C and SIGTERM interrupt the command, which then drains and exits with the code it set.
 */
import { Command } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Layer } from "effect"
import { devCommand } from "./dev/command.js"
import { simulateCommand } from "./simulate/command.js"

const spillway = Command.make("spillway").pipe(
  Command.withDescription("Spillway: typed, failure-proof telemetry ingestion for AWS"),
  Command.withSubcommands([devCommand, simulateCommand])
)

const cli = Command.run(spillway, { name: "spillway", version: "0.1.0" })

const requestedExitCode = () => (typeof process.exitCode === "number" ? process.exitCode : 0)

/** Prints a one-line error (no stack: the cause is the user's to fix) and sets the exit code. */
const refuse = (message: string, code: number) =>
  Effect.zipRight(
    Console.error(`spillway: ${message}`),
    Effect.sync(() => {
      process.exitCode = code
    })
  )

cli(process.argv).pipe(
  Effect.catchTags({
    UsageError: (e) => refuse(e.message, 2),
    ServeError: (e) =>
      refuse(
        `cannot start the collector: ${e.cause instanceof Error ? e.cause.message : String(e.cause)} (--port 0 picks a free port)`,
        1
      ),
    BackendError: (e) => refuse(e.message, 1)
  }),
  Effect.provide(Layer.mergeAll(NodeContext.layer, FetchHttpClient.layer)),
  NodeRuntime.runMain({
    teardown: (exit, onExit) =>
      onExit(
        Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)
          ? requestedExitCode()
          : Math.max(requestedExitCode(), 1)
      )
  })
)
