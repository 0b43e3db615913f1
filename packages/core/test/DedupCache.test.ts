import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Result } from "effect"
import * as DedupCache from "../src/DedupCache.js"

describe("DedupCache", () => {
  it.effect("answers seen only for ids marked processed, in request order", () =>
    Effect.gen(function* () {
      const cache = yield* DedupCache.DedupCache
      expect(yield* cache.seen(["a", "b", "c"])).toEqual([false, false, false])
      yield* cache.markProcessed(["a", "c"])
      expect(yield* cache.seen(["a", "b", "c", "a"])).toEqual([true, false, true, true])
      expect(yield* cache.seen([])).toEqual([])
      // Looking up does not mark anything.
      expect(yield* cache.stats).toEqual({ size: 2, capacity: 100, evicted: 0 })
    }).pipe(Effect.provide(DedupCache.layer({ capacity: 100 })))
  )

  it.effect("counts a repeated mark once", () =>
    Effect.gen(function* () {
      const cache = yield* DedupCache.DedupCache
      yield* cache.markProcessed(["x", "x", "y"])
      yield* cache.markProcessed(["y"])
      expect(yield* cache.stats).toEqual({ size: 2, capacity: 100, evicted: 0 })
    }).pipe(Effect.provide(DedupCache.layer({ capacity: 100 })))
  )

  it.effect("forgets the oldest ids in batches once full and reports it in stats", () =>
    Effect.gen(function* () {
      const cache = yield* DedupCache.DedupCache
      yield* cache.markProcessed(["r1", "r2", "r3", "r4"])
      expect(yield* cache.stats).toEqual({ size: 4, capacity: 4, evicted: 0 })
      yield* cache.markProcessed(["r5"])
      expect(yield* cache.stats).toEqual({ size: 3, capacity: 4, evicted: 2 })
      expect(yield* cache.seen(["r1", "r2", "r3", "r4", "r5"])).toEqual([false, false, true, true, true])
      // A record redelivered after its id was forgotten is processed and remembered again.
      yield* cache.markProcessed(["r1"])
      expect(yield* cache.seen(["r1"])).toEqual([true])
      expect(yield* cache.stats).toEqual({ size: 4, capacity: 4, evicted: 2 })
    }).pipe(Effect.provide(DedupCache.layer({ capacity: 4, evictionBatch: 2 })))
  )

  it.effect("defaults to 10 million ids", () =>
    Effect.gen(function* () {
      const cache = yield* DedupCache.DedupCache
      yield* cache.markProcessed(["only"])
      expect(yield* cache.stats).toEqual({ size: 1, capacity: DedupCache.defaultCapacity, evicted: 0 })
      expect(DedupCache.defaultCapacity).toBe(10_000_000)
    }).pipe(Effect.provide(DedupCache.layer()))
  )

  it.effect("each layer build is a fresh, empty cache", () =>
    Effect.gen(function* () {
      const first = DedupCache.make({ capacity: 10 })
      const second = DedupCache.make({ capacity: 10 })
      yield* first.markProcessed(["a"])
      expect(yield* second.seen(["a"])).toEqual([false])
    })
  )

  it("rejects invalid options with a RangeError naming the option", () => {
    expect(() => DedupCache.make({ capacity: 0 })).toThrow(RangeError)
    expect(() => DedupCache.make({ capacity: 0 })).toThrow(/options\.capacity/)
    expect(() => DedupCache.make({ capacity: 10, evictionBatch: 11 })).toThrow(/options\.evictionBatch/)
  })

  it.effect("a layer with invalid options dies when built", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Effect.provide(DedupCache.DedupCache, DedupCache.layer({ capacity: 1.5 }))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const defect = Cause.findDefect(exit.cause)
        expect(Result.isSuccess(defect)).toBe(true)
        if (Result.isSuccess(defect)) expect(defect.success).toBeInstanceOf(RangeError)
      }
    })
  )
})
