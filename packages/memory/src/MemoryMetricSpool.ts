/**
 * The forwarder's spool in memory: an S3 prefix as a map from key to the stored JSON text, in
 * the S3 spool's layout (`MetricSpool.entryKey`: `<area>/YYYY/MM/DD/HH/<epoch ms>-<n>.json.gz`),
 * so listings answer oldest first as the S3 one does. Entries are stored encoded and decoded on
 * read, through the same schema as S3's, so a test reads back what a real spool would.
 *
 * Fault injection: `startOutage` makes every call fail `Unavailable` (a 503 from S3) until
 * `endOutage` or the clock reaches `until`; `corrupt` stores bytes that do not decode, as a
 * damaged object would.
 */
import { MetricSpool } from "@spillway/core"
import { Clock, Context, Effect, Layer, Result, SchemaParser } from "effect"

export interface Options {
  /** @default "memory://metric-spool/" */
  readonly location?: string
}

export interface Handle extends MetricSpool.Service {
  /** Every entry of an area, oldest first (undecodable ones left out). */
  readonly entries: (
    area: MetricSpool.Area
  ) => Effect.Effect<ReadonlyArray<{ key: string; entry: MetricSpool.Entry }>>
  readonly size: (area: MetricSpool.Area) => Effect.Effect<number>
  /** Stores a pending object that does not decode; returns its key. */
  readonly corrupt: (text: string) => Effect.Effect<string>
  readonly startOutage: (options?: { readonly until?: number }) => Effect.Effect<void>
  readonly endOutage: Effect.Effect<void>
}

export class MemoryMetricSpool extends Context.Service<MemoryMetricSpool, Handle>()(
  "spillway/memory/MemoryMetricSpool"
) {}

const decode = SchemaParser.decodeUnknownResult(MetricSpool.StoredEntryJson)

export const make = (options: Options = {}): Effect.Effect<Handle> =>
  Effect.sync(() => {
    const location = options.location ?? "memory://metric-spool/"
    const objects = new Map<string, string>()
    let written = 0
    let outage: { readonly until: number | undefined } | undefined

    const available = Effect.gen(function* () {
      if (outage === undefined) return
      const now = yield* Clock.currentTimeMillis
      if (outage.until !== undefined && now >= outage.until) {
        outage = undefined
        return
      }
      return yield* new MetricSpool.MetricSpoolError({
        reason: "Unavailable",
        message: "503 Service Unavailable (outage)"
      })
    })

    const keysOf = (area: MetricSpool.Area) =>
      [...objects.keys()].filter((key) => key.startsWith(`${area}/`)).sort()

    const store = (area: MetricSpool.Area, text: string) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        written++
        const key = MetricSpool.entryKey("", area, now, String(written).padStart(8, "0"))
        objects.set(key, text)
        return key
      })

    const read = (key: string): Effect.Effect<MetricSpool.Entry, MetricSpool.MetricSpoolError> =>
      Effect.gen(function* () {
        const text = objects.get(key)
        if (text === undefined)
          return yield* new MetricSpool.MetricSpoolError({ reason: "NotFound", message: `NoSuchKey: ${key}` })
        const decoded = decode(text)
        if (Result.isFailure(decoded)) {
          return yield* new MetricSpool.MetricSpoolError({
            reason: "Corrupt",
            message: `${key} does not decode as a spool entry`
          })
        }
        const { v: _, ...entry } = decoded.success
        return entry
      })

    return {
      location,
      put: Effect.fn("MemoryMetricSpool.put")(function* (
        entry: MetricSpool.Entry,
        area: MetricSpool.Area = "pending"
      ) {
        yield* available
        return yield* store(area, MetricSpool.encodeEntry(entry))
      }),
      list: Effect.fn("MemoryMetricSpool.list")(function* (limit: number) {
        yield* available
        return keysOf("pending")
          .slice(0, limit)
          .map((key) => ({ key, spooledAt: MetricSpool.spooledAtOf(key) ?? 0 }))
      }),
      read: Effect.fn("MemoryMetricSpool.read")(function* (key: string) {
        yield* available
        return yield* read(key)
      }),
      remove: Effect.fn("MemoryMetricSpool.remove")(function* (key: string) {
        yield* available
        objects.delete(key)
      }),
      entries: (area) =>
        Effect.gen(function* () {
          const found: Array<{ key: string; entry: MetricSpool.Entry }> = []
          for (const key of keysOf(area)) {
            const entry = yield* Effect.result(read(key))
            if (Result.isSuccess(entry)) found.push({ key, entry: entry.success })
          }
          return found
        }),
      size: (area) => Effect.sync(() => keysOf(area).length),
      corrupt: (text) => store("pending", text),
      startOutage: (window = {}) =>
        Effect.sync(() => {
          outage = { until: window.until }
        }),
      endOutage: Effect.sync(() => {
        outage = undefined
      })
    } satisfies Handle
  })

export const layerMemory = (
  options: Options = {}
): Layer.Layer<MetricSpool.MetricSpool | MemoryMetricSpool> =>
  Layer.effectContext(
    Effect.map(make(options), (handle) =>
      Context.make(MemoryMetricSpool, handle).pipe(Context.add(MetricSpool.MetricSpool, handle))
    )
  )
