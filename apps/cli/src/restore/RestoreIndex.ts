/**
 * `spillway restore`: the disaster-recovery procedure as one command — choose the snapshot, restore
 * it, write what came after it from the backup archive (`Restore.restore`, the stage the simulator
 * and the disaster drills run), then check the result against the archive.
 *
 * 1. The snapshot: the one named, or the last successful one that started before the loss
 *    (`before`); a snapshot taken after the loss holds only what came since. Without either, the
 *    snapshots are listed and nothing else happens.
 * 2. Before anything changes, every archive object of the window is read once (`ArchiveScan`): one
 *    that cannot be read is a refusal (exit 2) unless `skipUnreadable`, so a restore never starts
 *    that could not finish.
 * 3. The snapshot's indices are restored. OpenSearch restores only over deleted indices; open ones
 *    of the same names (the live pipeline recreates them after a loss) are deleted first only
 *    with `replace` — what they hold since the loss is in the archive and written again in step
 *    4. Each index restored is marked (`_meta.spillway_restore`, with its own UUID): a second run
 *    finds the mark and does not restore again — restoring again would delete what was written
 *    since the first run and is not yet archived (Firehose buffers up to 15 minutes).
 * 4. The archive from the snapshot's start minus `lookbackMillis` to now, past the dedup cache
 *    (`Restore.restore`): the records received after that point, each id's first copy. The
 *    lookback covers records received before the snapshot but indexed after it (processing lag)
 *    and Firehose filing records under the hour of an object's oldest record.
 * 5. Verification, per hour of receipt from the window's start: the distinct ids the archive holds
 *    against the documents the index holds; for an hour where the index has fewer, the archive's
 *    ids of that hour are looked up one by one and the missing ones named. (Equal counts could
 *    hide an id missing next to one not archived yet: only short hours are looked up.)
 *
 * Running it twice changes nothing: the snapshot step is skipped, and the archive step writes
 * every document again with the same content.
 */
import { Archive, type DedupCache, type DocumentSink, Restore } from "@spillway/core"
import { Clock, Effect } from "effect"
import * as ArchiveScan from "../backends/ArchiveScan.js"
import type * as OpenSearchIndex from "../backends/OpenSearchIndex.js"
import type { Progress } from "../backends/Progress.js"
import type * as Snapshots from "../backends/Snapshots.js"
import { Refused } from "../Refusal.js"
import * as Text from "../Text.js"

export const command = "spillway restore"

export type Choice =
  | { readonly _tag: "List" }
  | { readonly _tag: "Named"; readonly name: string }
  | { readonly _tag: "Before"; readonly time: number }

export interface Options {
  readonly choice: Choice
  /** Delete open indices the snapshot would restore over. */
  readonly replace: boolean
  /** How far before the snapshot's start the archive is written again. */
  readonly lookbackMillis: number
  /** Go on without the records of archive objects that cannot be read. */
  readonly skipUnreadable: boolean
}

export interface World {
  readonly store: Snapshots.Store
  readonly index: OpenSearchIndex.Probe
}

export interface Listed {
  readonly _tag: "Listed"
  readonly location: string
  readonly snapshots: ReadonlyArray<Snapshots.Snapshot>
}

export interface HourCheck {
  /** The hour's start, epoch ms. */
  readonly hour: number
  /** Distinct ids the archive holds first received in this hour. */
  readonly archive: number
  /** Documents the index holds received in this hour. */
  readonly index: number
  /** Archived ids of this hour the index does not hold (looked up when `index < archive`). */
  readonly missing: number
}

export interface Restored {
  readonly _tag: "Restored"
  readonly location: string
  readonly snapshot: Snapshots.Snapshot
  /** `restored`, or `already-restored` (marked by an earlier run: not restored again). */
  readonly snapshotStep: "restored" | "already-restored"
  readonly alreadyRestoredAt?: number
  readonly deletedIndices: ReadonlyArray<string>
  readonly restoredIndices: ReadonlyArray<string>
  readonly window: { readonly from: number; readonly to: number }
  readonly scanned: { readonly objects: number; readonly records: number }
  readonly archive: Restore.RestoreResult
  /** Archive objects left out (`skipUnreadable`). */
  readonly skippedObjects: ReadonlyArray<ArchiveScan.Unreadable>
  readonly verification: {
    readonly hours: ReadonlyArray<HourCheck>
    readonly missing: number
    /** The first missing ids. */
    readonly missingIds: ReadonlyArray<string>
  }
}

export type Outcome = Listed | Restored

const refuse = (message: string) => new Refused({ command, message })

const describeSnapshot = (s: Snapshots.Snapshot) =>
  `${s.name} (${s.state}, started ${Text.instant(s.startedAt)}, ${Text.count(s.indices.length, "index", "indices")})`

const choose = (snapshots: ReadonlyArray<Snapshots.Snapshot>, choice: Choice, location: string) => {
  if (choice._tag === "Named") {
    const named = snapshots.find((s) => s.name === choice.name)
    if (named === undefined) {
      return Effect.fail(
        refuse(
          `there is no snapshot named ${choice.name} in ${location} (${Text.count(snapshots.length, "snapshot")}: \`spillway restore\` without --snapshot or --before lists them)`
        )
      )
    }
    if (named.state !== "SUCCESS") {
      return Effect.fail(
        refuse(`snapshot ${choice.name} ended ${named.state}: only a SUCCESS snapshot is fit to restore`)
      )
    }
    return Effect.succeed(named)
  }
  const time = choice._tag === "Before" ? choice.time : Number.POSITIVE_INFINITY
  const chosen = snapshots.filter((s) => s.state === "SUCCESS" && s.startedAt < time).at(-1)
  return chosen === undefined
    ? Effect.fail(
        refuse(
          `no successful snapshot in ${location} started before ${Text.instant(time)} (${Text.count(snapshots.length, "snapshot")} in all)`
        )
      )
    : Effect.succeed(chosen)
}

const hourOf = (millis: number) => Math.floor(millis / Archive.hourMillis) * Archive.hourMillis

export const run = Effect.fn("RestoreIndex.run")(function* (
  world: World,
  options: Options,
  progress: Progress
): Effect.fn.Return<
  Outcome,
  Refused | OpenSearchIndex.IndexError | Archive.ArchiveError,
  Archive.Archive | DocumentSink.DocumentSink | DedupCache.DedupCache
> {
  const { store, index } = world
  const snapshots = yield* store.list.pipe(
    Effect.catchTag("StoreRefusal", (error) => Effect.fail(refuse(error.message)))
  )
  if (options.choice._tag === "List") return { _tag: "Listed", location: store.location, snapshots }

  // 1. The snapshot.
  const snapshot = yield* choose(snapshots, options.choice, store.location)
  yield* progress.note(
    `snapshot ${describeSnapshot(snapshot)}${
      options.choice._tag === "Before"
        ? `: the last successful one that started before ${Text.instant(options.choice.time)}`
        : ""
    }`
  )
  const now = yield* Clock.currentTimeMillis
  const window = { from: snapshot.startedAt - options.lookbackMillis, to: now }

  // 2. The archive, read once before anything changes (from an hour earlier: see the verification).
  const scanned = yield* ArchiveScan.scan(
    { from: window.from - Archive.hourMillis, to: window.to },
    {
      ids: true,
      onObject: (done, of, records) =>
        progress.tick(
          `checking the archive: ${Text.number(done)} of ${Text.count(of, "object")}, ${Text.count(records, "record")}`
        )
    }
  )
  yield* progress.done
  if (scanned.unreadable.length > 0 && !options.skipUnreadable) {
    const first = scanned.unreadable[0]!
    return yield* refuse(
      `cannot read ${Text.count(scanned.unreadable.length, "archive object")} of the window (${first.key}: ${first.reason}); nothing was restored. Fix or remove ${scanned.unreadable.length === 1 ? "it" : "them"}, or give --skip-unreadable to restore without ${scanned.unreadable.length === 1 ? "its" : "their"} records`
    )
  }
  yield* progress.note(
    `archive from ${Text.instant(window.from)}: ${Text.count(scanned.objects.length, "object")}, ${Text.count(scanned.records, "record")}, all readable${
      scanned.unreadable.length > 0 ? ` but ${Text.number(scanned.unreadable.length)} (skipped)` : ""
    }`
  )

  // 3. The snapshot's indices.
  const open = yield* store.openIndices(snapshot)
  const marks = yield* index.restoreMarks(open)
  const markedFromThis =
    open.length > 0 &&
    open.every((name) => {
      const mark = marks.get(name)
      return mark !== undefined && mark.snapshot === snapshot.name && mark.repository === store.repository
    })
  let snapshotStep: Restored["snapshotStep"] = "restored"
  let alreadyRestoredAt: number | undefined
  let deletedIndices: ReadonlyArray<string> = []
  let restoredIndices: ReadonlyArray<string> = open
  if (markedFromThis) {
    snapshotStep = "already-restored"
    alreadyRestoredAt = Math.min(...open.map((name) => marks.get(name)!.restoredAt))
    yield* progress.note(
      `${Text.list(open)} ${open.length === 1 ? "was" : "were"} restored from ${snapshot.name} at ${Text.instant(alreadyRestoredAt)}: not restored again`
    )
  } else {
    if (open.length > 0 && !options.replace) {
      return yield* refuse(
        `${Text.count(open.length, "index", "indices")} of snapshot ${snapshot.name} ${open.length === 1 ? "exists" : "exist"} (${Text.list(open)}): restoring deletes ${open.length === 1 ? "it" : "them"} first. Give --replace to do so: what ${open.length === 1 ? "it holds" : "they hold"} since the snapshot is written again from the archive`
      )
    }
    if (open.length > 0) {
      yield* progress.note(`deleting ${Text.list(open)} (--replace)`)
      yield* store.deleteIndices(open)
      deletedIndices = open
    }
    yield* progress.note(`restoring ${snapshot.name} from ${store.location} …`)
    restoredIndices = yield* store.restore(snapshot)
    yield* index.markRestored(restoredIndices, {
      repository: store.repository,
      snapshot: snapshot.name,
      restoredAt: yield* Clock.currentTimeMillis
    })
    yield* progress.note(`restored ${Text.list(restoredIndices)}`)
  }

  // 4. What came after the snapshot, from the archive.
  const archive = yield* Restore.restore(window, {
    onProgress: (p) =>
      progress.tick(
        p.pass === "choosing"
          ? `reading the archive: ${Text.number(p.objectsDone)} of ${Text.count(p.objects, "object")}, ${Text.count(p.read, "record")}`
          : `writing from the archive: ${Text.number(p.objectsDone)} of ${Text.count(p.objects, "object")}, ${Text.count(p.written, "document")} written`
      )
  })
  yield* progress.done
  yield* progress.note(
    `archive written: ${Text.count(archive.written, "document")} of ${Text.count(archive.distinct, "id")} received since ${Text.instant(window.from)}${
      archive.failed.length > 0 ? `, ${Text.number(archive.failed.length)} failed` : ""
    }`
  )

  // 5. Verification.
  const perHour = new Map<number, number>()
  for (const receivedAt of scanned.firstReceived.values()) {
    if (receivedAt < window.from) continue
    const hour = hourOf(receivedAt)
    perHour.set(hour, (perHour.get(hour) ?? 0) + 1)
  }
  const counted = yield* index.countsPerHour(window.from)
  const hours: Array<HourCheck> = []
  const missingIds: Array<string> = []
  let missing = 0
  let checked = 0
  for (const hour of [...perHour.keys()].sort((a, b) => a - b)) {
    const inArchive = perHour.get(hour)!
    const inIndex = counted.get(hour) ?? 0
    let missingHere = 0
    if (inIndex < inArchive) {
      const ids = [...scanned.firstReceived]
        .filter(([, receivedAt]) => receivedAt >= window.from && hourOf(receivedAt) === hour)
        .map(([id]) => id)
      const held = yield* index.holding(ids)
      const absent = ids.filter((id) => !held.has(id))
      missingHere = absent.length
      missingIds.push(...absent.slice(0, Math.max(0, 20 - missingIds.length)))
    }
    missing += missingHere
    checked += inArchive
    hours.push({ hour, archive: inArchive, index: inIndex, missing: missingHere })
  }
  yield* progress.note(
    missing === 0
      ? `verified: every one of the ${Text.count(checked, "id")} archived since ${Text.instant(window.from)} is in the index (${Text.count(hours.length, "hour")} counted)`
      : `verification: ${Text.count(missing, "archived id")} not in the index`
  )

  return {
    _tag: "Restored",
    location: store.location,
    snapshot,
    snapshotStep,
    ...(alreadyRestoredAt === undefined ? {} : { alreadyRestoredAt }),
    deletedIndices,
    restoredIndices,
    window,
    scanned: { objects: scanned.objects.length, records: scanned.records },
    archive,
    skippedObjects: scanned.unreadable,
    verification: { hours, missing, missingIds }
  } satisfies Restored
})

export const exitCode = (outcome: Outcome): 0 | 1 =>
  outcome._tag === "Listed"
    ? 0
    : outcome.archive.failed.length > 0 ||
        outcome.archive.unreadable.length > 0 ||
        outcome.archive.undecodable.length > 0 ||
        outcome.skippedObjects.length > 0 ||
        outcome.verification.missing > 0
      ? 1
      : 0

const hourLabel = (hour: number) => `${new Date(hour).toISOString().slice(0, 13)}:00Z`

/** The summary on stdout. */
export const format = (outcome: Outcome, backend: string): string => {
  if (outcome._tag === "Listed") {
    const rows = outcome.snapshots.map(
      (s) =>
        `  ${s.name.padEnd(Math.max(...outcome.snapshots.map((x) => x.name.length)))}  ${s.state.padEnd(10)}  started ${Text.instant(s.startedAt)}  ${Text.count(s.indices.length, "index", "indices")}`
    )
    return [
      `restore (${backend}): ${Text.count(outcome.snapshots.length, "snapshot")} in ${outcome.location}, oldest first${
        outcome.snapshots.length === 0 ? "" : ":"
      }`,
      ...rows,
      "restore one with --snapshot <name>, or the last one before a loss with --before <time>"
    ].join("\n")
  }
  const o = outcome
  const a = o.archive
  const lines = [
    `restore (${backend}): snapshot ${describeSnapshot(o.snapshot)} from ${o.location}`,
    o.snapshotStep === "restored"
      ? `  snapshot   restored ${Text.list(o.restoredIndices)}${o.deletedIndices.length > 0 ? ` (deleted first: ${Text.list(o.deletedIndices)})` : ""}`
      : `  snapshot   already restored at ${Text.instant(o.alreadyRestoredAt ?? 0)} (${Text.list(o.restoredIndices)}): not restored again`,
    `  archive    ${Text.instant(o.window.from)} to ${Text.instant(o.window.to)}: ${Text.count(a.objects, "object")}, ${Text.count(a.read, "record")} read, ${Text.count(a.distinct, "id")} received since, ${Text.number(a.written)} written, ${Text.number(a.beforeRange)} already in the snapshot`,
    ...(a.failed.length > 0
      ? [
          `  failed     ${Text.count(a.failed.length, "record")}:`,
          ...a.failed
            .slice(0, 10)
            .map((f) => `    ${f.recordId}: ${f.reason}${f.retryable ? " (a second run may write it)" : ""}`)
        ]
      : []),
    ...(a.undecodable.length > 0
      ? [
          `  undecodable ${Text.count(a.undecodable.length, "archived record")} that are not envelopes (first: ${a.undecodable[0]!.key} #${a.undecodable[0]!.index})`
        ]
      : []),
    ...[...a.unreadable, ...o.skippedObjects]
      .filter((u, i, all) => all.findIndex((x) => x.key === u.key) === i)
      .map((u) => `  unreadable ${u.key}: ${u.reason} (its records are not restored)`),
    `  verified   per hour of receipt, archive ids against index documents:`,
    ...o.verification.hours.map(
      (h) =>
        `    ${hourLabel(h.hour)}  archive ${Text.number(h.archive).padStart(9)}  index ${Text.number(h.index).padStart(9)}${
          h.missing > 0 ? `  MISSING ${Text.number(h.missing)}` : ""
        }`
    ),
    o.verification.missing === 0
      ? `  missing    0: every archived id since ${Text.instant(o.window.from)} is in the index`
      : `  missing    ${Text.count(o.verification.missing, "id")} archived but not in the index, such as ${o.verification.missingIds.slice(0, 5).join(", ")}`
  ]
  lines.push(
    exitCode(o) === 0
      ? "done"
      : "partial (exit 1): what is listed above is not in the index; a second run retries what can be retried"
  )
  return lines.join("\n")
}

/** The JSON on stdout (`--json`): the outcome, lists cut to their first 100 entries. */
export const toJson = (outcome: Outcome, backend: string) => {
  const exit = exitCode(outcome)
  if (outcome._tag === "Listed") return { command: "restore", backend, exitCode: exit, ...outcome }
  return {
    command: "restore",
    backend,
    exitCode: exit,
    ...outcome,
    archive: {
      ...outcome.archive,
      failed: outcome.archive.failed.slice(0, 100),
      undecodable: outcome.archive.undecodable.slice(0, 100),
      unreadable: outcome.archive.unreadable.slice(0, 100)
    }
  }
}
