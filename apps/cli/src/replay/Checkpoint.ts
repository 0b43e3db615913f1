/**
 * The file where `spillway replay` keeps its place: the window and target it replays, the position
 * of the next record to put (`BackupReplay.Checkpoint`), and whether the window is done. It is
 * written after every PutRecords call the target took (so after every object, too) by writing a
 * temporary file and renaming it over the old one, so a run killed at any instant leaves either
 * the previous position or the new one, never a torn file. A run killed between a call and the
 * write of its position puts that one call's records again when resumed (at most 500): the
 * processor's dedup cache skips them, or they overwrite their documents with the same content.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import type { BackupReplay } from "@spillway/core"
import { Effect, Schema } from "effect"

export const State = Schema.Struct({
  version: Schema.Literal(1),
  window: Schema.Struct({ from: Schema.Number, to: Schema.Number }),
  /** `stream:<arn>` or `sink:<alias>`. */
  target: Schema.String,
  /** The next record to put; absent once done. */
  checkpoint: Schema.optional(Schema.Struct({ key: Schema.String, index: Schema.Number })),
  done: Schema.Boolean,
  /** Records put by every run so far. */
  put: Schema.Number,
  runs: Schema.Number,
  /** Objects that could not be read in a run: not replayed. */
  skipped: Schema.Array(Schema.Struct({ key: Schema.String, reason: Schema.String })),
  updatedAt: Schema.Number
})
export type State = typeof State.Type

const decode = Schema.decodeUnknownResult(Schema.fromJsonString(State))

export class CheckpointFileError extends Schema.TaggedError<CheckpointFileError>()("CheckpointFileError", {
  message: Schema.String
}) {}

/** The default file for a window: in the current directory, named after it. */
export const defaultPath = (window: { readonly from: number; readonly to: number }): string => {
  const stamp = (t: number) =>
    new Date(t)
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d{3}Z$/, "Z")
  return `spillway-replay-${stamp(window.from)}-${stamp(window.to)}.json`
}

/** The state in `path`, `undefined` when there is no file. */
export const load = (path: string): Effect.Effect<State | undefined, CheckpointFileError> =>
  Effect.suspend(() => {
    if (!existsSync(path)) return Effect.succeed(undefined)
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (cause) {
      return Effect.fail(new CheckpointFileError({ message: `cannot read ${path}: ${String(cause)}` }))
    }
    const state = decode(text)
    return state._tag === "Success"
      ? Effect.succeed(state.success)
      : Effect.fail(
          new CheckpointFileError({
            message: `${path} is not a replay checkpoint file (${state.failure.message.split("\n")[0]})`
          })
        )
  })

/** Writes `state` to `path` atomically (a temporary file renamed over it). */
export const save = (path: string, state: State): Effect.Effect<void, CheckpointFileError> =>
  Effect.try({
    try: () => {
      const temporary = `${path}.${process.pid}.tmp`
      writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`)
      renameSync(temporary, path)
    },
    catch: (cause) => new CheckpointFileError({ message: `cannot write ${path}: ${String(cause)}` })
  })

export const fresh = (
  window: { readonly from: number; readonly to: number },
  target: string,
  now: number
): State => ({ version: 1, window, target, done: false, put: 0, runs: 0, skipped: [], updatedAt: now })

export type Position = BackupReplay.Checkpoint
