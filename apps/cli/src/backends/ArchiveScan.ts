/**
 * A read of the backup archive before a recovery command changes anything: every object of a
 * window read once (`Schedules.archiveRead` on S3's refusals, as the stages read), its records
 * counted and decoded. What it finds decides whether the command may go on — an object that cannot
 * be read (corrupt, gone, access denied) is a refusal before anything is written — and gives the
 * totals progress is measured against and, for `restore`'s verification, the hour each id was first
 * received in.
 *
 * Memory: one entry per distinct id when `firstReceived` is asked for (as `Restore` itself keeps
 * in its first pass), nothing per record otherwise.
 */
import { Archive, Schedules, Telemetry } from "@spillway/core"
import { Effect, Result } from "effect"

export interface Unreadable {
  readonly key: string
  readonly reason: string
  readonly retryable: boolean
}

export interface Scan {
  readonly objects: ReadonlyArray<{ readonly key: string; readonly records: number }>
  /** Records in the objects scanned (from `startAt`), copies and all. */
  readonly records: number
  /** Records that are not envelopes. */
  readonly undecodable: ReadonlyArray<{
    readonly key: string
    readonly index: number
    readonly reason: string
  }>
  readonly unreadable: ReadonlyArray<Unreadable>
  /** Per distinct id, its earliest `receivedAt` (when asked for). */
  readonly firstReceived: ReadonlyMap<string, number>
}

export interface Options {
  /** Skip what comes before this position (a replay resuming at its checkpoint). */
  readonly startAt?: { readonly key: string; readonly index: number } | undefined
  /** Keep each id's earliest `receivedAt`. @default false */
  readonly ids?: boolean
  /** Called after each object. */
  readonly onObject?: (done: number, of: number, records: number) => Effect.Effect<void>
}

export const scan = Effect.fn("ArchiveScan.scan")(function* (range: Archive.Range, options: Options = {}) {
  const archive = yield* Archive.Archive
  const retried = <A>(call: Effect.Effect<A, Archive.ArchiveError>) =>
    call.pipe(Effect.retry({ schedule: Schedules.archiveRead, while: (error) => error.isRetryable }))
  const listed = yield* retried(archive.list(range))
  const start = options.startAt
  const keys = start === undefined ? listed : listed.filter((key) => key >= start.key)
  const objects: Array<{ key: string; records: number }> = []
  const undecodable: Array<{ key: string; index: number; reason: string }> = []
  const unreadable: Array<Unreadable> = []
  const firstReceived = new Map<string, number>()
  let records = 0
  for (const [i, key] of keys.entries()) {
    const read = yield* Effect.result(retried(archive.read(key)))
    if (Result.isFailure(read)) {
      unreadable.push({ key, reason: read.failure.message, retryable: read.failure.isRetryable })
    } else {
      const first = start !== undefined && key === start.key ? start.index : 0
      let counted = 0
      read.success.forEach((data, index) => {
        if (index < first) return
        counted++
        const decoded = Telemetry.decodeEnvelope(data)
        if (Result.isFailure(decoded)) {
          undecodable.push({ key, index, reason: decoded.failure.reason })
          return
        }
        if (options.ids === true) {
          const { record, receivedAt } = decoded.success
          const previous = firstReceived.get(record.id)
          if (previous === undefined || receivedAt < previous) firstReceived.set(record.id, receivedAt)
        }
      })
      records += counted
      objects.push({ key, records: counted })
    }
    if (options.onObject !== undefined) yield* options.onObject(i + 1, keys.length, records)
  }
  return { objects, records, undecodable, unreadable, firstReceived } satisfies Scan
})
