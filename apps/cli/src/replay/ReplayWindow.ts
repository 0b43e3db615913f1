/**
 * `spillway replay`: puts what the backup archive holds for a window back into the stream — the
 * backup-replayer function's stage (`BackupReplay.replayArchive`), run by an operator: the
 * window's objects in key order, as the collector wrote each record (so a record put twice is
 * skipped by the processor's cache or overwrites its document with the same content), one
 * PutRecords call at a time, backing off when the shards refuse. `toSink` replays straight into
 * the index through the processor's stage instead (`SinkAsStream`).
 *
 * - Before anything is put, every object of the window (from the checkpoint on) is read once
 *   (`ArchiveScan`): one that cannot be read is a refusal (exit 2) unless `skipUnreadable`; the
 *   records counted are what progress is measured against.
 * - The position is saved after every call the target took (`Checkpoint`); a run stopped at any
 *   point — Ctrl-C, SIGKILL, the stream refusing — is resumed by running the same command again,
 *   and says so. A window replayed to its end is not replayed again unless `restart`.
 * - `ratePerSecond` caps the pace (calls of at most that many records, spaced to keep the
 *   average); without it the replay goes as fast as the shards take, next to the live traffic.
 * - `dryRun` reads the window and counts its records, distinct ids, and the ids the index does not
 *   hold — what a replay would bring back.
 */
import { type Archive, BackupReplay, RecordStream } from "@spillway/core"
import { Clock, Effect } from "effect"
import * as ArchiveScan from "../backends/ArchiveScan.js"
import type * as OpenSearchIndex from "../backends/OpenSearchIndex.js"
import type { Progress } from "../backends/Progress.js"
import { Refused } from "../Refusal.js"
import * as Text from "../Text.js"
import * as Checkpoint from "./Checkpoint.js"

export const command = "spillway replay"

export interface Options {
  readonly window: Archive.Range
  readonly dryRun: boolean
  readonly ratePerSecond: number | undefined
  /** What the records are put into: `stream:<arn>` or `sink:<alias>`, kept in the checkpoint file. */
  readonly target: string
  readonly checkpointFile: string
  readonly restart: boolean
  readonly skipUnreadable: boolean
}

export interface DryRun {
  readonly _tag: "DryRun"
  readonly window: Archive.Range
  readonly objects: number
  readonly records: number
  readonly distinctIds: number
  /** Distinct ids of the window the index does not hold. */
  readonly missingFromIndex: number
  readonly missingIds: ReadonlyArray<string>
  readonly undecodable: number
  readonly unreadable: ReadonlyArray<ArchiveScan.Unreadable>
}

export interface Replayed {
  readonly _tag: "Replayed"
  readonly window: Archive.Range
  readonly target: string
  readonly checkpointFile: string
  /** Where this run started, when it resumed an earlier one. */
  readonly resumedFrom?: Checkpoint.Position
  /** Nothing to do: the checkpoint file says the window was replayed to its end. */
  readonly alreadyDone: boolean
  readonly objects: number
  /** Records this run had to put (from its starting point), read and put. */
  readonly toPut: number
  readonly read: number
  readonly put: number
  /** Records put by every run of this window, this one included. */
  readonly putInAll: number
  readonly undecodable: BackupReplay.BackupReplayResult["undecodable"]
  readonly unreadable: BackupReplay.BackupReplayResult["unreadable"]
  /** Records the sink refused for good (`--to-sink`). */
  readonly rejected: ReadonlyArray<{ readonly recordId: string | undefined; readonly reason: string }>
  readonly stopped?: { readonly reason: BackupReplay.StopReason; readonly message: string }
  /** Where the next run starts, when this one did not finish. */
  readonly next?: Checkpoint.Position
}

export type Outcome = DryRun | Replayed

const refuse = (message: string) => new Refused({ command, message })

/** The index, for the dry run's count of missing ids. */
export interface World {
  readonly index: OpenSearchIndex.Probe | undefined
  /** Records the target refused for good (the sink's rejections). */
  readonly rejected?: Effect.Effect<
    ReadonlyArray<{ readonly recordId: string | undefined; readonly reason: string }>
  >
}

export const run = Effect.fn("ReplayWindow.run")(function* (
  options: Options,
  world: World,
  progress: Progress
): Effect.fn.Return<
  Outcome,
  Refused | Archive.ArchiveError | OpenSearchIndex.IndexError | Checkpoint.CheckpointFileError,
  Archive.Archive | RecordStream.RecordStream
> {
  const { window } = options
  const scanProgress = (done: number, of: number, records: number) =>
    progress.tick(
      `checking the archive: ${Text.number(done)} of ${Text.count(of, "object")}, ${Text.count(records, "record")}`
    )

  if (options.dryRun) {
    const scanned = yield* ArchiveScan.scan(window, { ids: true, onObject: scanProgress })
    yield* progress.done
    if (scanned.unreadable.length > 0 && !options.skipUnreadable)
      return yield* unreadableRefusal(scanned.unreadable)
    const ids = [...scanned.firstReceived.keys()]
    let missingIds: ReadonlyArray<string> = []
    if (world.index !== undefined && ids.length > 0) {
      yield* progress.note(`looking ${Text.count(ids.length, "id")} up in ${world.index.alias} …`)
      const held = yield* world.index.holding(ids)
      missingIds = ids.filter((id) => !held.has(id))
    }
    return {
      _tag: "DryRun",
      window,
      objects: scanned.objects.length,
      records: scanned.records,
      distinctIds: ids.length,
      missingFromIndex: missingIds.length,
      missingIds: missingIds.slice(0, 20),
      undecodable: scanned.undecodable.length,
      unreadable: scanned.unreadable
    } satisfies DryRun
  }

  // Where to start: the checkpoint file of this window and target, unless told to start over.
  const now = yield* Clock.currentTimeMillis
  const previous = options.restart ? undefined : yield* Checkpoint.load(options.checkpointFile)
  if (previous !== undefined) {
    if (previous.window.from !== window.from || previous.window.to !== window.to) {
      return yield* refuse(
        `${options.checkpointFile} is the checkpoint of another window (${Text.instant(previous.window.from)} to ${Text.instant(previous.window.to)}): give that window, another --checkpoint file, or --restart`
      )
    }
    if (previous.target !== options.target) {
      return yield* refuse(
        `${options.checkpointFile} is the checkpoint of a replay into ${previous.target}, not ${options.target}: give another --checkpoint file, or --restart`
      )
    }
  }
  if (previous?.done === true) {
    yield* progress.note(
      `${options.checkpointFile} says this window was replayed to its end at ${Text.instant(previous.updatedAt)} (${Text.count(previous.put, "record")} put): nothing to do (--restart replays it again)`
    )
    return {
      _tag: "Replayed",
      window,
      target: options.target,
      checkpointFile: options.checkpointFile,
      alreadyDone: true,
      objects: 0,
      toPut: 0,
      read: 0,
      put: 0,
      putInAll: previous.put,
      undecodable: [],
      unreadable: [],
      rejected: []
    } satisfies Replayed
  }
  const start = previous?.checkpoint
  if (start !== undefined) {
    yield* progress.note(
      `resuming at ${start.key} record ${Text.number(start.index)}: ${Text.count(previous?.put ?? 0, "record")} put by ${Text.count(previous?.runs ?? 0, "earlier run")}, the last at ${Text.instant(previous?.updatedAt ?? now)} (${options.checkpointFile})`
    )
  }

  const scanned = yield* ArchiveScan.scan(window, { startAt: start, onObject: scanProgress })
  yield* progress.done
  if (scanned.unreadable.length > 0 && !options.skipUnreadable)
    return yield* unreadableRefusal(scanned.unreadable)
  const toPut = scanned.records - scanned.undecodable.length
  yield* progress.note(
    `${Text.count(toPut, "record")} in ${Text.count(scanned.objects.length, "object")} to put into ${options.target}${
      options.ratePerSecond === undefined ? "" : ` at ${Text.number(options.ratePerSecond)} records/s at most`
    }`
  )

  let state: Checkpoint.State = {
    ...(previous ?? Checkpoint.fresh(window, options.target, now)),
    runs: (previous?.runs ?? 0) + 1
  }
  const putBefore = state.put
  const save = (next: Partial<Checkpoint.State>) =>
    Effect.flatMap(Clock.currentTimeMillis, (updatedAt) => {
      state = { ...state, ...next, updatedAt }
      return Checkpoint.save(options.checkpointFile, state)
    })
  // Saved before the first call, so even a run killed at once leaves a file that resumes it.
  yield* save(start === undefined ? {} : { checkpoint: start })

  const startedAt = yield* Clock.currentTimeMillis
  let putThisRun = 0
  const rate = options.ratePerSecond
  const pace =
    rate === undefined
      ? Effect.succeed(true)
      : Effect.gen(function* () {
          const due = startedAt + (putThisRun * 1000) / rate
          const wait = due - (yield* Clock.currentTimeMillis)
          if (wait > 0) yield* Effect.sleep(wait)
          return true
        })
  let saveError: Checkpoint.CheckpointFileError | undefined
  const result = yield* BackupReplay.replayArchive(window, {
    ...(start === undefined ? {} : { checkpoint: start }),
    // A checkpoint that cannot be saved stops the run: going on would leave nothing to resume from.
    continueWhile: Effect.flatMap(pace, () => Effect.succeed(saveError === undefined)),
    onProgress: (p) =>
      Effect.gen(function* () {
        putThisRun = p.put
        const saved = yield* Effect.result(save({ checkpoint: p.checkpoint, put: putBefore + p.put }))
        if (saved._tag === "Failure") saveError = saved.failure
        yield* progress.tick(
          `${Text.number(p.put)} of ${Text.count(toPut, "record")} put (${Text.percent(p.put, toPut)}), at ${p.checkpoint.key} record ${Text.number(p.checkpoint.index)}`
        )
      }),
    ...(rate === undefined
      ? {}
      : {
          streamLimits: {
            ...RecordStream.defaultLimits,
            maxEntriesPerCall: Math.max(1, Math.min(500, Math.floor(rate)))
          }
        })
  })
  yield* progress.done
  if (saveError !== undefined) return yield* Effect.fail(saveError)

  const unreadable = [
    ...result.unreadable,
    ...scanned.unreadable.filter((u) => !result.unreadable.some((r) => r.key === u.key))
  ]
  const done = result.stopped === undefined
  yield* save({
    done,
    put: putBefore + result.put,
    skipped: [...state.skipped, ...unreadable.map((u) => ({ key: u.key, reason: u.reason }))],
    ...(result.checkpoint === undefined ? {} : { checkpoint: result.checkpoint })
  })
  return {
    _tag: "Replayed",
    window,
    target: options.target,
    checkpointFile: options.checkpointFile,
    ...(start === undefined ? {} : { resumedFrom: start }),
    alreadyDone: false,
    objects: scanned.objects.length,
    toPut,
    read: result.read,
    put: result.put,
    putInAll: putBefore + result.put,
    undecodable: result.undecodable,
    unreadable,
    rejected: world.rejected === undefined ? [] : yield* world.rejected,
    ...(result.stopped === undefined ? {} : { stopped: result.stopped }),
    ...(result.checkpoint === undefined ? {} : { next: result.checkpoint })
  } satisfies Replayed
})

const unreadableRefusal = (unreadable: ReadonlyArray<ArchiveScan.Unreadable>) => {
  const first = unreadable[0]!
  const them = unreadable.length === 1 ? "it" : "them"
  return Effect.fail(
    refuse(
      `cannot read ${Text.count(unreadable.length, "archive object")} of the window (${first.key}: ${first.reason}); nothing was put. Fix or remove ${them}, or give --skip-unreadable to replay without ${unreadable.length === 1 ? "its" : "their"} records`
    )
  )
}

export const exitCode = (outcome: Outcome): 0 | 1 =>
  outcome._tag === "DryRun"
    ? outcome.unreadable.length > 0 || outcome.undecodable > 0
      ? 1
      : 0
    : outcome.stopped !== undefined ||
        outcome.unreadable.length > 0 ||
        outcome.undecodable.length > 0 ||
        outcome.rejected.length > 0
      ? 1
      : 0

/** The summary on stdout. */
export const format = (outcome: Outcome, backend: string): string => {
  const window = `${Text.instant(outcome.window.from)} to ${Text.instant(outcome.window.to)}`
  if (outcome._tag === "DryRun") {
    return [
      `replay (${backend}, dry run: nothing put): ${window}`,
      `  archive    ${Text.count(outcome.objects, "object")}, ${Text.count(outcome.records, "record")}, ${Text.count(outcome.distinctIds, "distinct id")}`,
      `  index      ${Text.count(outcome.missingFromIndex, "id")} of them not in the index${
        outcome.missingIds.length > 0 ? `, such as ${outcome.missingIds.slice(0, 5).join(", ")}` : ""
      }`,
      ...(outcome.undecodable > 0
        ? [
            `  undecodable ${Text.count(outcome.undecodable, "record")} that are not envelopes (not replayable)`
          ]
        : []),
      ...outcome.unreadable.map((u) => `  unreadable ${u.key}: ${u.reason}`),
      exitCode(outcome) === 0 ? "done (dry run)" : "partial (exit 1): some of the window cannot be replayed"
    ].join("\n")
  }
  const o = outcome
  if (o.alreadyDone) {
    return [
      `replay (${backend}): ${window} into ${o.target}`,
      `  nothing to do: ${o.checkpointFile} says the window was replayed to its end (${Text.count(o.putInAll, "record")} put); --restart replays it again`,
      "done"
    ].join("\n")
  }
  const lines = [
    `replay (${backend}): ${window} into ${o.target}`,
    ...(o.resumedFrom === undefined
      ? []
      : [
          `  resumed    at ${o.resumedFrom.key} record ${Text.number(o.resumedFrom.index)} (${o.checkpointFile})`
        ]),
    `  archive    ${Text.count(o.objects, "object")}, ${Text.count(o.toPut, "record")} to put`,
    `  put        ${Text.number(o.put)} by this run, ${Text.number(o.putInAll)} by every run of this window`,
    ...(o.undecodable.length > 0
      ? [
          `  undecodable ${Text.count(o.undecodable.length, "record")} that are not envelopes, skipped (first: ${o.undecodable[0]!.key} #${o.undecodable[0]!.index})`
        ]
      : []),
    ...o.unreadable.map((u) => `  unreadable ${u.key}: ${u.reason} (its records were not put)`),
    ...(o.rejected.length > 0
      ? [
          `  rejected   ${Text.count(o.rejected.length, "record")} the index refuses: ${o.rejected[0]!.recordId ?? "?"}: ${o.rejected[0]!.reason}`
        ]
      : []),
    ...(o.stopped === undefined ? [] : [`  stopped    ${o.stopped.message}`])
  ]
  lines.push(
    exitCode(o) === 0
      ? backend === "memory"
        ? "done (a rehearsal keeps no checkpoint)"
        : `done: checkpoint ${o.checkpointFile}`
      : o.stopped !== undefined
        ? `partial (exit 1): ${Text.count(o.toPut - o.put, "record")} left from ${o.next?.key ?? "?"} record ${Text.number(o.next?.index ?? 0)}; run the same command again to resume`
        : "partial (exit 1): what is listed above was not replayed"
  )
  return lines.join("\n")
}
