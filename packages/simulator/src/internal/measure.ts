/**
 * Reading a finished run back into figures: what the index holds and when each write landed (by
 * the probe), what was lost and why, what the archive holds, and every retry. Everything is
 * counted from this run's backends, never from the process-global Effect metrics, so runs in one
 * process do not mix.
 *
 * Loss accounting is counted, not assumed: `lost` is the set of accepted ids that the index does
 * not hold (or that only a restore wrote) and that the replay did not report as refused for their
 * content (poison).
 */
import { Archive, type Replay } from "@spillway/core"
import type { MemoryPipeline } from "@spillway/memory"
import { Effect } from "effect"
import type { Report } from "../Report.js"
import { secondOf, startTime } from "./harness.js"
import type { Probe } from "./probe.js"
import { ascending, mean1, PerSecond, percentile } from "./stats.js"
import type { Ledger } from "./traffic.js"

/**
 * Records held by the fallback queue, visible or in flight (a message carries many). A message's
 * body never changes, so each is parsed once, however many seconds it stays in the queue.
 */
export const fallbackDepthGauge = (pipeline: MemoryPipeline.Pipeline): Effect.Effect<number> => {
  const recordsIn = new Map<string, number>()
  const count = (body: string): number => {
    const parsed: unknown = JSON.parse(body)
    return typeof parsed === "object" &&
      parsed !== null &&
      "records" in parsed &&
      Array.isArray(parsed.records)
      ? parsed.records.length
      : 0
  }
  return Effect.map(pipeline.queue.messages, (messages) => {
    let total = 0
    for (const message of messages) {
      let n = recordsIn.get(message.messageId)
      if (n === undefined) {
        n = count(message.body)
        recordsIn.set(message.messageId, n)
      }
      total += n
    }
    return total
  })
}

/** The pipeline's own writes per accepted id, read before a restore writes documents again. */
export const pipelineWrites = (pipeline: MemoryPipeline.Pipeline, accepted: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const writesOf = new Map<string, number>()
    for (const id of accepted) writesOf.set(id, yield* pipeline.index.writes(id))
    return writesOf
  })

export interface Indexed {
  readonly ids: Set<string>
  /** Collector receipt to confirmed write, per indexed record, in index order. */
  readonly delays: Array<number>
  readonly perSecond: PerSecond
  readonly delaysPerSecond: Array<Array<number>>
  readonly unexpectedDocuments: number
  readonly unexplainedDelays: number
  readonly writtenMoreThanOnce: number
}

/** What the index holds, each document timed by the probe's last attempt for its id. */
export const readIndex = (
  pipeline: MemoryPipeline.Pipeline,
  ledger: Ledger,
  probe: Probe,
  writesOf: ReadonlyMap<string, number>
): Effect.Effect<Indexed> =>
  Effect.gen(function* () {
    const ids = new Set<string>()
    const delays: Array<number> = []
    const perSecond = new PerSecond()
    const delaysPerSecond: Array<Array<number>> = []
    let unexpectedDocuments = 0
    let unexplainedDelays = 0
    let writtenMoreThanOnce = 0
    for (const document of yield* pipeline.index.documents) {
      if (!ledger.accepted.has(document.id)) unexpectedDocuments++
      ids.add(document.id)
      if ((writesOf.get(document.id) ?? 0) > 1) writtenMoreThanOnce++
      const attempts = probe.attempts(document.id)
      const receivedAt = Date.parse(String(document.source.receivedAt))
      if (attempts === undefined || Number.isNaN(receivedAt) || attempts.lastEndedAt < receivedAt) {
        unexplainedDelays++
        continue
      }
      const delay = attempts.lastEndedAt - receivedAt
      const second = secondOf(attempts.lastEndedAt)
      delays.push(delay)
      perSecond.add(second)
      while (delaysPerSecond.length <= second) delaysPerSecond.push([])
      delaysPerSecond[second]!.push(delay)
    }
    return {
      ids,
      delays,
      perSecond,
      delaysPerSecond,
      unexpectedDocuments,
      unexplainedDelays,
      writtenMoreThanOnce
    }
  })

/**
 * Poison records (not indexed, read back from an on-failure range and refused again for their
 * content, with the reason) and lost ones. A record that failed the replay for a transient reason
 * (the index was down) is not settled: it counts as lost until a replay writes it. A record the
 * pipeline never wrote is lost even if a restore from the backup wrote it since: the restore must
 * not hide a loss on the live path.
 */
export const settleAccounts = (
  accepted: ReadonlySet<string>,
  indexed: ReadonlySet<string>,
  writesOf: ReadonlyMap<string, number>,
  replay: Replay.ReplayResult
) => {
  const reportedFailing = new Set(
    replay.failed.flatMap((f) =>
      f.recordId !== undefined && !f.retryable && f.reason.length > 0 ? [f.recordId] : []
    )
  )
  const onFailure = [...accepted].filter((id) => !indexed.has(id) && reportedFailing.has(id))
  const lost = [...accepted].filter(
    (id) => (!indexed.has(id) || (writesOf.get(id) ?? 0) === 0) && !reportedFailing.has(id)
  )
  return { onFailure, lost }
}

/** Copies in the stream of records written exactly once: the processor skipped them. */
export const duplicatesSkipped = (
  pipeline: MemoryPipeline.Pipeline,
  indexed: ReadonlySet<string>,
  writesOf: ReadonlyMap<string, number>
) =>
  Effect.gen(function* () {
    const copies = new Map<string, number>()
    for (const record of yield* pipeline.stream.records) {
      copies.set(record.partitionKey, (copies.get(record.partitionKey) ?? 0) + 1)
    }
    let skipped = 0
    for (const id of indexed) {
      if (writesOf.get(id) === 1) skipped += (copies.get(id) ?? 1) - 1
    }
    return skipped
  })

/** The backup, read back as a restore would: every accepted record must be in the archive. */
export const readBackup = (pipeline: MemoryPipeline.Pipeline, accepted: ReadonlySet<string>, end: number) =>
  Effect.gen(function* () {
    const archive = yield* Archive.readEnvelopes({ from: startTime, to: end }).pipe(
      Effect.provideService(Archive.Archive, pipeline.archive),
      Effect.catch((error) =>
        Effect.die(new Error(`the in-memory archive refused a read after its faults ended: ${error.message}`))
      )
    )
    const backedUp = new Set<string>(archive.envelopes.map((e) => e.record.id))
    const missing = [...accepted].filter((id) => !backedUp.has(id))
    return { objects: archive.objects, missing }
  })

/** Every retry of the run, by who made it. */
export const retries = (pipeline: MemoryPipeline.Pipeline, probe: Probe) =>
  Effect.gen(function* () {
    const processor = yield* pipeline.processor.counters
    const redriver = yield* pipeline.redriver.stats
    const queue = yield* pipeline.queue.stats
    const stream = yield* pipeline.stream.stats
    return {
      sinkWrites: probe.repeatedAttempts(),
      processorBatches: processor.retries,
      redriverMessages: Math.max(0, redriver.delivered - queue.sent),
      // Every entry PutRecords refused (collector or redriver) is parked and put again later.
      streamEntries: stream.throttledEntries + stream.injectedEntryFailures,
      // Whole calls refused during an outage: puts are parked, polls and redrives tried again.
      streamCalls: stream.rejectedCalls
    } satisfies Report["retriesBy"]
  })

/** The faults as the backends counted them. */
export const faultCounts = (pipeline: MemoryPipeline.Pipeline) =>
  Effect.gen(function* () {
    const processor = yield* pipeline.processor.counters
    const stream = yield* pipeline.stream.stats
    const index = yield* pipeline.index.stats
    return {
      streamThrottledEntries: stream.throttledEntries,
      streamInjectedEntryFailures: stream.injectedEntryFailures,
      streamRejectedCalls: stream.rejectedCalls,
      indexRejections: index.rejections,
      indexParseErrors: index.parseErrors,
      processorBatchesDiscarded: processor.batchesDiscarded
    } satisfies Omit<Report["faults"], "injected">
  })

/** One entry per simulated second, over `length` seconds. */
export const timeline = (
  length: number,
  ledger: Ledger,
  indexed: Indexed,
  depth: PerSecond
): Report["timeline"] =>
  Array.from({ length }, (_, second) => {
    const inSecond = ascending(indexed.delaysPerSecond[second] ?? [])
    return {
      second,
      sent: ledger.sent.at(second),
      accepted: ledger.acceptedPerSecond.at(second),
      rejected: ledger.rejectedPerSecond.at(second),
      indexed: indexed.perSecond.at(second),
      delayAvgMs: mean1(inSecond),
      delayP99Ms: percentile(inSecond, 0.99),
      fallbackDepth: depth.at(second)
    }
  })
