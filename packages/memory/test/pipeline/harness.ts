/** Shared helpers for the end-to-end pipeline tests: record factories and settling on TestClock. */
import { Harness } from "@spillway/testing"
import { Effect } from "effect"
import type { Pipeline } from "../../src/MemoryPipeline.js"

export const { apiKey, record, records, settle, whileClockRuns } = Harness

/** Asserts-friendly view of the index: how many documents, and the ids written other than once. */
export const indexReport = (pipeline: Pipeline, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const count = yield* pipeline.index.count
    const missing: Array<string> = []
    const writtenMoreThanOnce: Array<string> = []
    for (const id of ids) {
      const writes = yield* pipeline.index.writes(id)
      if (writes === 0) missing.push(id)
      if (writes > 1) writtenMoreThanOnce.push(id)
    }
    return { count, missing, writtenMoreThanOnce }
  })
