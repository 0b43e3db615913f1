/**
 * The backup archive in memory: an S3 bucket as a map from key to bytes, in Firehose's layout
 * (`Archive` in core: hour prefixes, object names after the oldest record, newline-delimited
 * records, optional gzip), so what the local pipeline backs up reads exactly as the S3 one does.
 *
 * Object names end in a UUID as Firehose's do; here it is made from a counter, so a seeded run
 * names its objects the same way every time and draws nothing from `Random`.
 *
 * Fault injection: `startOutage` makes every call fail `Unavailable` (a 503 from S3) until
 * `endOutage` or the clock reaches `until`.
 */
import { gunzipSync, gzipSync } from "node:zlib"
import { Archive } from "@spillway/core"
import { Clock, Effect } from "effect"

export interface Options extends Partial<Archive.Layout> {
  /** @default "spillway-backup" */
  readonly bucket?: string
}

export interface Handle extends Archive.Service {
  /** Every object, in key order. */
  readonly objects: Effect.Effect<ReadonlyArray<{ readonly key: string; readonly bytes: Uint8Array }>>
  readonly startOutage: (options?: { readonly until?: number }) => Effect.Effect<void>
  readonly endOutage: Effect.Effect<void>
}

/** A UUID-shaped name from a counter: unique within an archive, the same on every run. */
const counterUuid = (n: number): string => {
  const hex = n.toString(16).padStart(12, "0")
  return `00000000-0000-4000-8000-${hex}`
}

export const make = (options: Options = {}): Effect.Effect<Handle> =>
  Effect.sync(() => {
    const bucket = options.bucket ?? "spillway-backup"
    const layout: Archive.Layout = {
      deliveryStreamName: options.deliveryStreamName ?? "spillway-backup",
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      ...(options.deliveryStreamVersion === undefined
        ? {}
        : { deliveryStreamVersion: options.deliveryStreamVersion }),
      ...(options.compression === undefined ? {} : { compression: options.compression })
    }
    const objects = new Map<string, Uint8Array>()
    let written = 0
    let outage: { readonly until: number | undefined } | undefined

    const available = Effect.gen(function* () {
      if (outage === undefined) return
      const now = yield* Clock.currentTimeMillis
      if (outage.until !== undefined && now >= outage.until) {
        outage = undefined
        return
      }
      return yield* new Archive.ArchiveError({
        reason: "Unavailable",
        message: "503 Service Unavailable (outage)"
      })
    })

    const write = Effect.fn("MemoryArchive.write")(function* (
      records: ReadonlyArray<Archive.ArchivedRecord>
    ) {
      yield* available
      const plain = yield* Effect.fromResult(Archive.encodeObject(records))
      written++
      const key = Archive.objectKey(layout, Archive.oldestArrival(records), counterUuid(written))
      objects.set(key, layout.compression === "GZIP" ? new Uint8Array(gzipSync(plain)) : plain)
      return key
    })

    const list = Effect.fn("MemoryArchive.list")(function* (range: Archive.Range) {
      yield* available
      const prefixes = yield* Effect.fromResult(Archive.hourPrefixes(range, layout.prefix))
      return [...objects.keys()].filter((key) => prefixes.some((p) => key.startsWith(p))).sort()
    })

    const read = Effect.fn("MemoryArchive.read")(function* (key: string) {
      yield* available
      const stored = objects.get(key)
      if (stored === undefined) {
        return yield* new Archive.ArchiveError({ reason: "NotFound", message: `NoSuchKey: ${key}` })
      }
      if (!key.endsWith(".gz")) return Archive.decodeObject(stored)
      return yield* Effect.try({
        try: () => Archive.decodeObject(new Uint8Array(gunzipSync(stored))),
        catch: (error) =>
          new Archive.ArchiveError({ reason: "Corrupt", message: `${key} does not gunzip: ${String(error)}` })
      })
    })

    return {
      bucket,
      write,
      list,
      read,
      objects: Effect.sync(() =>
        [...objects.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([key, bytes]) => ({ key, bytes }))
      ),
      startOutage: (outageOptions = {}) =>
        Effect.sync(() => {
          outage = { until: outageOptions.until }
        }),
      endOutage: Effect.sync(() => {
        outage = undefined
      })
    }
  })
