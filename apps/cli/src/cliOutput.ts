/**
 * Where the command line's own messages go. Help and `--version` print on stdout, as usual; a
 * refused invocation (an unknown option or subcommand, a value out of range) prints only its
 * errors, and where to find the help, on stderr. So stdout only ever carries what a command
 * prints (`simulate --json` output stays exactly one JSON object per scenario, and a refused one
 * leaves stdout empty), and a refusal is a few lines, not the whole help.
 */
import { Console, Context, Effect } from "effect"
import { CliOutput, TerminalCapabilities } from "effect/cli"

/** `CliOutput.defaultPresenter`, with an invalid invocation reduced to its errors, on stderr. */
export const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.gen(function* () {
          const context = yield* Effect.context<never>()
          const formatter =
            Context.getOrUndefined(context, CliOutput.Formatter) ??
            CliOutput.defaultFormatter({
              colors: Context.get(context, TerminalCapabilities.TerminalCapabilities).canColor
            })
          yield* Console.error(formatter.formatErrors(event.errors))
          yield* Console.error(`\n${event.commandPath.join(" ")} --help lists the options.`)
        })
      : CliOutput.defaultPresenter.present(event)
})
