/**
 * Where the command line's own messages go, and how they read. Help and `--version` print on
 * stdout, as usual (coloured only when stdout is a terminal and `NO_COLOR` is unset). A refused
 * invocation — an unknown option or command, a missing or malformed value — prints exactly one
 * plain line on stderr, naming the command, what is wrong and where the help is:
 *
 *   spillway simulate: --scenario "nope" is not one of steady, kinesis-throttling, …; spillway simulate --help lists the options
 *
 * and the run exits 2 (`main.ts`). No colours, no stack, no `{"_tag": …}`: stdout only ever
 * carries what a command prints (`--json` output stays exactly one JSON object), and a refusal is
 * a line a person reads and a script can match.
 */
import { Console } from "effect"
import { type CliError, CliOutput, type HelpDoc } from "effect/cli"

/** `"a" | "b"` (how a choice flag states what it expected) → `["a", "b"]`; anything else → undefined. */
const choices = (expected: string): ReadonlyArray<string> | undefined => {
  const parts = expected.replace(/^Expected:?\s*/, "").split(" | ")
  return parts.length > 1 && parts.every((p) => /^"[^"]*"$/.test(p))
    ? parts.map((p) => p.slice(1, -1))
    : undefined
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, " ").trim()

const suggestion = (suggestions: ReadonlyArray<string>): string =>
  suggestions.length === 0 ? "" : ` (did you mean ${suggestions.join(" or ")}?)`

/** One error as a clause of the line: what is wrong, in the command line's terms. */
export const describeError = (
  error: CliError.CliError,
  flags: ReadonlyArray<HelpDoc.FlagDoc> = []
): string => {
  switch (error._tag) {
    case "InvalidValue": {
      const name = error.kind === "flag" ? `--${error.option}` : `<${error.option}>`
      const listed = choices(error.expected)
      if (error.value === "") {
        return listed === undefined
          ? `${name} needs a value`
          : `${name} needs a value: one of ${listed.join(", ")}`
      }
      if (listed !== undefined) return `${name} "${error.value}" is not one of ${listed.join(", ")}`
      // Our own checks already say what they want (`--port must be 0–65535`).
      if (error.expected.startsWith(`${name} `)) return `${oneLine(error.expected)}, got "${error.value}"`
      const type = flags.find((f) => f.name === error.option)?.type
      if (type === "integer") return `${name} "${error.value}" is not a whole number`
      const wanted = oneLine(error.expected.replace(/^Expected:?\s*/, ""))
      return `${name} "${error.value}" is not valid: expected ${wanted}`
    }
    case "MissingOption":
      return `--${error.option} is required`
    case "MissingArgument":
      return `<${error.argument}> is required`
    case "UnrecognizedOption":
      return `there is no option ${error.option}${suggestion(error.suggestions)}`
    case "UnknownSubcommand":
      return `there is no command "${error.subcommand}"${suggestion(error.suggestions)}`
    case "UnexpectedArgument":
      return `unexpected ${error.arguments.length === 1 ? "argument" : "arguments"} ${error.arguments
        .map((a) => JSON.stringify(a))
        .join(" ")}: every value goes with an option`
    default:
      return oneLine(error.message)
  }
}

/** The whole refusal: `spillway simulate: <what is wrong>; spillway simulate --help lists the options`. */
export const refusalLine = (
  commandPath: ReadonlyArray<string>,
  errors: ReadonlyArray<CliError.CliError>,
  flags: ReadonlyArray<HelpDoc.FlagDoc> = []
): string => {
  const command = commandPath.join(" ")
  const what = errors.map((e) => describeError(e, flags)).join("; ")
  return `${command}: ${what}; ${command} --help lists the options`
}

/** `CliOutput.defaultPresenter`, with an invalid invocation reduced to one line on stderr. */
export const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(refusalLine(event.commandPath, event.errors, event.helpDoc.flags))
      : CliOutput.defaultPresenter.present(event)
})
