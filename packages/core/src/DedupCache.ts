/**
 * The processor's memory of record ids it has already written, so that records the stream
 * delivers again (retries, redrives, replays, producer duplicates) are skipped without a write.
 *
 * It lives in the Lambda container and is lost on a cold start: it is an optimisation in front of
 * idempotent sinks, never the only guard against duplicates. What it must never do is answer
 * "seen" for an id it was not given — that would drop a record — see `FingerprintSet` for the
 * collision bound.
 */
import { Context, Effect, Layer } from "effect"
import { FingerprintSet, type FingerprintSetOptions } from "./internal/FingerprintSet.js"

export interface Stats {
  readonly size: number
  readonly capacity: number
  /** Entries evicted since the cache was made. */
  readonly evicted: number
}

export interface Service {
  /** For each id, whether it was marked processed (and not evicted since). */
  readonly seen: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<boolean>>
  readonly markProcessed: (ids: ReadonlyArray<string>) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

export class DedupCache extends Context.Service<DedupCache, Service>()("spillway/DedupCache") {}

/** The production default: the original system kept 10 million ids. */
export const defaultCapacity = 10_000_000

export const make = (options: Partial<FingerprintSetOptions> = {}): Service => {
  const set = new FingerprintSet({ capacity: defaultCapacity, ...options })
  return DedupCache.of({
    seen: (ids) => Effect.sync(() => ids.map((id) => set.has(id))),
    markProcessed: (ids) =>
      Effect.sync(() => {
        for (const id of ids) set.add(id)
      }),
    stats: Effect.sync(() => ({ size: set.size, capacity: set.capacity, evicted: set.evicted }))
  })
}

/** An in-process cache; the same layer serves Lambda (per container) and local runs. */
export const layer = (options: Partial<FingerprintSetOptions> = {}): Layer.Layer<DedupCache> =>
  Layer.sync(DedupCache, () => make(options))
