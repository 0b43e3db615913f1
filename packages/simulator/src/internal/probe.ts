/**
 * The simulator's stopwatch: a `DocumentSink` written next to the index (through the pipeline's
 * `extraSinks`, so the processor fans out to both) that stores nothing and always answers
 * `Written`. It notes, per document id, when each write attempt ended and how many there were.
 *
 * Why this times the pipeline exactly: the processor retries a document until the index confirms
 * it and marks it in the dedup cache at that moment, after which every later copy is skipped. So
 * the last attempt the probe saw for an id that the index holds is the write that landed, and
 * since the probe takes as long as the index's `_bulk` latency, that attempt ends exactly when the
 * processor counts the write confirmed. Effect metrics would give the same figure, but they are
 * process-global: two runs in one process would mix their samples.
 */
import { DocumentSink } from "@spillway/core"
import { Clock, Duration, Effect } from "effect"

export interface Attempts {
  /** Epoch milliseconds at which the latest write attempt of the id ended. */
  readonly lastEndedAt: number
  readonly count: number
}

export interface Probe {
  readonly sink: DocumentSink.Service
  /** Per document id, its write attempts so far. */
  readonly attempts: (id: string) => Attempts | undefined
  /** Write attempts beyond the first, summed over documents: how often a document was sent again. */
  readonly repeatedAttempts: () => number
  /**
   * Stops noting attempts: what is written afterwards (a restore from the backup) is not the
   * pipeline's delivery and must not time it.
   */
  readonly freeze: () => void
}

export const make = (latency: Duration.Input): Probe => {
  const wait = Duration.fromInputUnsafe(latency)
  const seen = new Map<string, Attempts>()
  let repeated = 0
  let frozen = false
  const write = Effect.fn("SimulationProbe.write")(function* (
    documents: ReadonlyArray<DocumentSink.Document>
  ) {
    if (Duration.toMillis(wait) > 0) yield* Effect.sleep(wait)
    const now = yield* Clock.currentTimeMillis
    if (frozen) return documents.map(() => DocumentSink.written)
    for (const document of documents) {
      const previous = seen.get(document.id)
      if (previous !== undefined) repeated++
      seen.set(document.id, { lastEndedAt: now, count: (previous?.count ?? 0) + 1 })
    }
    return documents.map(() => DocumentSink.written)
  })
  return {
    sink: DocumentSink.DocumentSink.of({ name: "simulation-probe", write }),
    attempts: (id) => seen.get(id),
    repeatedAttempts: () => repeated,
    freeze: () => {
      frozen = true
    }
  }
}
