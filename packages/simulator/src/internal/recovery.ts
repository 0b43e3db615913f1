/**
 * The operator's disaster recovery after a scenario lost the index (docs/aws-behaviour.md §6.7): restore the
 * last snapshot taken before the loss, then write everything since again from the backup
 * archive. A snapshot taken after the loss (the automated ones go on) must not be picked: it
 * holds only what the recreated index had.
 */
import type { MemoryPipeline } from "@spillway/memory"
import { Clock, Effect } from "effect"
import type { Report } from "../Report.js"
import type { Recovery } from "../Scenario.js"
import type { ClockDriver } from "./harness.js"
import { startTime } from "./harness.js"

/**
 * How far before the chosen snapshot the restore starts: the longest processing lag the operator
 * allows for (a record indexed just after the snapshot may have been received before it), scaled
 * down like the runs: the pipeline here indexes within about a second (a record it missed would
 * show as lost).
 */
const restoreLookbackMillis = 2_000

export type RecoveryFigures = NonNullable<Report["recovery"]>

/** Restores the index as the operator would; `accepted` are the ids the pipeline took. */
export const recover = (
  pipeline: MemoryPipeline.Pipeline,
  driver: ClockDriver,
  options: {
    readonly recovery: Recovery
    readonly trafficStart: number
    readonly trafficMillis: number
    readonly accepted: ReadonlySet<string>
  }
) =>
  Effect.gen(function* () {
    const lostAt = options.trafficStart + Math.round(options.recovery.indexLostAt * options.trafficMillis)
    const held = new Set((yield* pipeline.index.documents).map((d) => d.id))
    const missingBeforeRestore = [...options.accepted].filter((id) => !held.has(id)).length
    const chosen = (yield* pipeline.index.snapshots).filter((s) => s.takenAt < lostAt).at(-1)
    // OpenSearch restores only into a deleted index: the one the pipeline recreated goes first.
    yield* pipeline.index.deleteIndex
    if (chosen !== undefined) yield* Effect.orDie(pipeline.index.restoreSnapshot(chosen.name))
    // Records indexed after the snapshot can have arrived a little before it.
    const from = (chosen?.takenAt ?? startTime) - restoreLookbackMillis
    const restored = yield* driver.whileTicking(
      "the restore could not read the backup archive",
      pipeline.restoreFromArchive({ from, to: yield* Clock.currentTimeMillis })
    )
    return {
      snapshot: chosen?.name ?? "none",
      snapshotDocuments: chosen?.documents ?? 0,
      snapshotsTaken: (yield* pipeline.index.snapshots).length,
      missingBeforeRestore,
      archiveObjects: restored.objects,
      archiveRecords: restored.read,
      rewritten: restored.written,
      failed: restored.failed.length,
      unreadableObjects: restored.unreadable.length
    } satisfies RecoveryFigures
  })
