/**
 * A command that refuses to run: its input is wrong (a flag, a missing variable, no credentials,
 * a snapshot that does not exist, an archive object it cannot read) and it stopped before it
 * changed anything. `main.ts` prints it as one line, `spillway <command>: <message>`, and exits 2 —
 * the exit code every command documents for "bad input, nothing done".
 */
import { Schema } from "effect"

export class Refused extends Schema.TaggedError<Refused>()("Refused", {
  /** The command path, `spillway restore`. */
  command: Schema.String,
  /** What is wrong and, where it helps, what to do: one line, no trailing period. */
  message: Schema.String
}) {}

/** The exit code of a refusal (see each command's `--help`). */
export const exitCode = 2
