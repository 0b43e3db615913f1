/**
 * The backup replayer function: invoked by an operator (or a Step Functions loop) with a time
 * window, it puts what the backup archive holds for that window back into the stream
 * (`BackupReplay.replayArchive`: the window's archive hours, at the rate the shards take, as the
 * collector wrote each record, so replaying twice is harmless downstream).
 *
 *   event    { "from": "2026-11-24T10:00:00Z" | 1795514400000, "to": …, "checkpoint"?: { "key", "index" } }
 *   answer   { done, window, objects, read, put, undecodable, unreadable, stopped?, next? }
 *
 * `from` and `to` are ISO-8601 instants with a zone or epoch milliseconds. A run that reaches the
 * deadline (or a stream that keeps refusing records) stops at a checkpoint and answers
 * `done: false` with `next`, the event to invoke it with to go on; `done: true` means the window
 * was replayed to its end. A run cut off in the middle of a call goes on from the last checkpoint
 * the stream confirmed, so some records may be put twice, never skipped.
 */
import { type Archive, BackupReplay, type RecordStream, Telemetry } from "@spillway/core"
import { Effect, type Layer, Option, Schema, SchemaTransformation } from "effect"
import type * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

export type Services = Archive.Archive | RecordStream.RecordStream

const IsoInstant = Telemetry.Timestamp.pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({
      decode: (iso) => Date.parse(iso),
      encode: (millis) => new Date(millis).toISOString()
    })
  )
)

const EpochMillis = Schema.Number.check(
  Schema.isInt({ message: "must be whole epoch milliseconds" }).abort(),
  Schema.isGreaterThanOrEqualTo(Telemetry.minEpochMillis, {
    message: `must be epoch milliseconds (at least ${Telemetry.minEpochMillis}): this looks like epoch seconds, multiply it by 1000`
  })
)

/** An instant as an ISO-8601 string with a zone, or epoch milliseconds; decoded to epoch milliseconds. */
export const Instant = Schema.Union([IsoInstant, EpochMillis])

export const Checkpoint = Schema.Struct({
  key: Schema.String.check(Schema.isMinLength(1, { message: "must not be empty" })),
  index: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "must be 0 or more" }))
})

export const BackupReplayEvent = Schema.Struct({
  from: Instant,
  to: Instant,
  checkpoint: Schema.optional(Checkpoint)
}).check(Schema.makeFilter((event) => event.to >= event.from || "must have `to` at or after `from`"))
export type BackupReplayEvent = typeof BackupReplayEvent.Type

export interface Response {
  /** The window was replayed to its end. */
  readonly done: boolean
  readonly window: { readonly from: string; readonly to: string }
  readonly objects: number
  readonly read: number
  readonly put: number
  readonly undecodable: BackupReplay.BackupReplayResult["undecodable"]
  readonly unreadable: BackupReplay.BackupReplayResult["unreadable"]
  readonly stopped?: { readonly reason: BackupReplay.StopReason; readonly message: string }
  /** The event to invoke the function with to go on, when not `done`. */
  readonly next?: {
    readonly from: string
    readonly to: string
    readonly checkpoint?: BackupReplay.Checkpoint
  }
}

export const handle = Effect.fn("BackupReplayer.handle")(function* (
  event: BackupReplayEvent,
  deadline: Deadline.Deadline
) {
  const window = { from: new Date(event.from).toISOString(), to: new Date(event.to).toISOString() }
  let progress: BackupReplay.Progress | undefined
  const outcome = yield* deadline.bounded(
    BackupReplay.replayArchive(
      { from: event.from, to: event.to },
      {
        ...(event.checkpoint === undefined ? {} : { checkpoint: event.checkpoint }),
        continueWhile: deadline.hasTimeToStart,
        onProgress: (p) =>
          Effect.sync(() => {
            progress = p
          })
      }
    )
  )
  const result: BackupReplay.BackupReplayResult = Option.getOrElse(outcome, () => {
    const checkpoint = progress?.checkpoint ?? event.checkpoint
    return {
      objects: progress?.objects ?? 0,
      read: progress?.read ?? 0,
      put: progress?.put ?? 0,
      undecodable: [],
      unreadable: [],
      ...(checkpoint === undefined ? {} : { checkpoint }),
      stopped: {
        reason: "Deadline",
        message: "cut off at the deadline; resume at the last confirmed checkpoint"
      }
    } satisfies BackupReplay.BackupReplayResult
  })
  const done = result.stopped === undefined
  for (const unreadable of result.unreadable) {
    yield* Effect.logError(`archive object not replayed: ${unreadable.reason}`).pipe(
      Effect.annotateLogs({ key: unreadable.key, retryable: unreadable.retryable })
    )
  }
  if (result.undecodable.length > 0) {
    yield* Effect.logWarning(
      `${result.undecodable.length} archived records are not envelopes and were skipped`
    ).pipe(Effect.annotateLogs({ undecodable: result.undecodable.slice(0, 10) }))
  }
  const summary = `${result.put} of ${result.read} records put into the stream from ${window.from}–${window.to}`
  yield* (
    done
      ? Effect.logInfo(`replayed: ${summary}`)
      : Effect.logWarning(`stopped (${result.stopped?.reason}): ${summary}`)
  ).pipe(
    Effect.annotateLogs({
      ...window,
      done,
      objects: result.objects,
      read: result.read,
      put: result.put,
      ...(result.checkpoint === undefined ? {} : { checkpoint: result.checkpoint })
    })
  )
  return {
    done,
    window,
    objects: result.objects,
    read: result.read,
    put: result.put,
    undecodable: result.undecodable,
    unreadable: result.unreadable,
    ...(result.stopped === undefined ? {} : { stopped: result.stopped }),
    ...(done
      ? {}
      : {
          next: { ...window, ...(result.checkpoint === undefined ? {} : { checkpoint: result.checkpoint }) }
        })
  } satisfies Response
})

/** The backup replayer's handler over `layer` (`AwsPipeline.backupReplayer` deployed). */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options?: LambdaHandler.Options
): LambdaHandler.Handler<Response> =>
  LambdaHandler.make(
    layer,
    {
      name: "backup-replayer",
      event: BackupReplayEvent,
      eventDescription:
        "a replay window: { from, to, checkpoint? }, from and to as ISO-8601 instants or epoch milliseconds",
      handle: (event, { deadline }) => handle(event, deadline)
    },
    options
  )
