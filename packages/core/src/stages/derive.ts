/**
 * The metrics stage: clean events → the shop's live-dashboard metrics, written as log lines
 * (`MetricLog`) in the format configured (`MetricLine`: EMF or the Datadog Lambda line). No
 * network call: the forwarder, subscribed to the log group, ships the lines on its own.
 *
 * Metrics, one point per minute (the event's own time, floored to the minute), each tagged with
 * the configured static tags:
 *
 * | metric                         | value                                              | tags                     |
 * |--------------------------------|----------------------------------------------------|--------------------------|
 * | `<prefix>.events`              | events                                             | `event_type`, `platform` |
 * | `<prefix>.sessions.active`     | sessions with at least one event in the minute     | `platform`               |
 * | `<prefix>.checkouts`           | `checkout` events                                  | `platform`               |
 * | `<prefix>.buyers`              | sessions with at least one purchase in the minute  | `platform`               |
 * | `<prefix>.revenue`             | purchase amounts, in the currency's minor unit     | `currency`, `platform`   |
 *
 * All are counts, so the forwarder (and Datadog) add up what every invocation wrote. The two
 * "sessions with …" metrics count a session once per minute across invocations by remembering
 * (session, minute) pairs in the `DedupCache`: the clean stream is partitioned by session, so a
 * session's events all pass through one shard's invocations, in order. Events are remembered by
 * id too, so a batch the mapping sends again (after the cleaner's partial failure) is not counted
 * twice. The cache lives in the execution environment: a cold start forgets it, and a batch
 * delivered again to a new environment would be counted again — bounded, and documented.
 */
import { Effect, Metric, Result } from "effect"
import * as Clickstream from "../Clickstream.js"
import { DedupCache } from "../DedupCache.js"
import type * as LambdaEvents from "../LambdaEvents.js"
import { toStreamRecord } from "../LambdaEvents.js"
import * as MetricLine from "../MetricLine.js"
import { MetricLog } from "../MetricLog.js"
import * as MetricsSink from "../MetricsSink.js"
import type { StreamRecord } from "../RecordStream.js"

export interface DeriveOptions {
  readonly format: MetricLine.Format
  /** First part of every metric name. @default "clickstream" */
  readonly prefix: string
  /** The EMF namespace (`format: "emf"`). @default "Clickstream" */
  readonly namespace: string
  /** `key:value` tags on every metric (`env:prod`, `service:shop`). */
  readonly tags: ReadonlyArray<string>
}

export const defaultOptions: DeriveOptions = {
  format: "datadog",
  prefix: "clickstream",
  namespace: "Clickstream",
  tags: []
}

export interface Computed {
  readonly events: number
  readonly duplicates: number
  readonly undecodable: ReadonlyArray<{ readonly sequenceNumber: string; readonly reason: string }>
  /** One sample per metric, tag set and minute of this batch (counts summed). */
  readonly samples: ReadonlyArray<MetricsSink.Sample>
  /** The ids to remember once the samples are written (`remember`). */
  readonly seen: ReadonlyArray<string>
}

export interface DeriveResult extends Omit<Computed, "seen"> {
  readonly lines: number
}

export const eventsCounted = Metric.counter("clickstream_events_counted", { incremental: true })
export const duplicateEvents = Metric.counter("clickstream_duplicate_events_skipped", { incremental: true })
export const undecodableRecords = Metric.counter("clickstream_undecodable_clean_records", {
  incremental: true
})
export const linesWritten = Metric.counter("clickstream_metric_lines_written", { incremental: true })

const minuteOf = (epochMillis: number): number => Math.floor(epochMillis / 60_000) * 60

/**
 * The samples of a batch of clean records, skipping events (and session-minutes) remembered by
 * the cache or met earlier in the batch. Nothing is remembered yet: the caller does, once the
 * samples are safe (`remember`), so a write that fails leaves nothing half-counted.
 */
export const computeSamples = (
  records: ReadonlyArray<StreamRecord>,
  options: DeriveOptions = defaultOptions
): Effect.Effect<Computed, never, DedupCache> =>
  Effect.gen(function* () {
    const cache = yield* DedupCache
    const undecodable: Array<{ sequenceNumber: string; reason: string }> = []
    const events: Array<Clickstream.CleanEvent> = []
    for (const record of records) {
      const decoded = Clickstream.decodeCleanRecord(record.data)
      if (Result.isFailure(decoded))
        undecodable.push({ sequenceNumber: record.sequenceNumber, reason: decoded.failure.reason })
      else events.push(...decoded.success.events)
    }
    const eventKeys = events.map((e) => `event\u0000${e.eventId}`)
    const knownEvents = yield* cache.seen(eventKeys)
    const fresh: Array<Clickstream.CleanEvent> = []
    const batchEvents = new Set<string>()
    events.forEach((event, i) => {
      if (knownEvents[i] === true || batchEvents.has(eventKeys[i]!)) return
      batchEvents.add(eventKeys[i]!)
      fresh.push(event)
    })

    const pairKeys = new Set<string>()
    for (const event of fresh) {
      const minute = minuteOf(event.timestamp)
      pairKeys.add(`active\u0000${event.sessionId}\u0000${minute}`)
      if (event.type === "purchase") pairKeys.add(`buyer\u0000${event.sessionId}\u0000${minute}`)
    }
    const pairs = [...pairKeys]
    const knownPairs = new Set<string>()
    const answers = yield* cache.seen(pairs)
    pairs.forEach((key, i) => {
      if (answers[i] === true) knownPairs.add(key)
    })

    const samples = new Map<string, MetricsSink.Sample>()
    const add = (name: string, timestamp: number, tags: ReadonlyArray<string>, value: number) => {
      const allTags = MetricsSink.canonicalTags([...options.tags, ...tags])
      const metric = `${options.prefix}.${name}`
      const key = `${metric}\u0000${timestamp}\u0000${allTags.join("\u0000")}`
      const before = samples.get(key)
      samples.set(key, {
        metric,
        kind: "count",
        timestamp,
        tags: allTags,
        value: (before?.value ?? 0) + value
      })
    }
    const counted = new Set<string>()
    for (const event of fresh) {
      const minute = minuteOf(event.timestamp)
      const platform = `platform:${event.client.platform}`
      add("events", minute, [`event_type:${event.type}`, platform], 1)
      const active = `active\u0000${event.sessionId}\u0000${minute}`
      if (!knownPairs.has(active) && !counted.has(active)) {
        counted.add(active)
        add("sessions.active", minute, [platform], 1)
      }
      if (event.type === "checkout") add("checkouts", minute, [platform], 1)
      if (event.type === "purchase") {
        const buyer = `buyer\u0000${event.sessionId}\u0000${minute}`
        if (!knownPairs.has(buyer) && !counted.has(buyer)) {
          counted.add(buyer)
          add("buyers", minute, [platform], 1)
        }
        if (event.amountMinor !== undefined && event.currency !== undefined) {
          add("revenue", minute, [`currency:${event.currency}`, platform], event.amountMinor)
        }
      }
    }
    return {
      events: events.length,
      duplicates: events.length - fresh.length,
      undecodable,
      samples: [...samples.values()],
      seen: [...batchEvents, ...counted]
    } satisfies Computed
  })

/** Remembers what a batch counted, once its samples are written (or sent). */
export const remember = (computed: Computed): Effect.Effect<void, never, DedupCache> =>
  computed.seen.length === 0 ? Effect.void : DedupCache.use((cache) => cache.markProcessed(computed.seen))

export const derive = Effect.fn("Clickstream.derive")(function* (
  records: ReadonlyArray<StreamRecord>,
  options: DeriveOptions = defaultOptions
): Effect.fn.Return<DeriveResult, never, MetricLog | DedupCache> {
  const computed = yield* computeSamples(records, options)
  const lines = MetricLine.encode(computed.samples, options.format, options.namespace)
  if (lines.length > 0) yield* (yield* MetricLog).write(lines)
  yield* remember(computed)
  yield* Metric.update(eventsCounted, computed.events - computed.duplicates)
  yield* Metric.update(duplicateEvents, computed.duplicates)
  yield* Metric.update(undecodableRecords, computed.undecodable.length)
  yield* Metric.update(linesWritten, lines.length)
  const { seen: _, ...result } = computed
  return { ...result, lines: lines.length }
})

/**
 * The metrics stage on a Kinesis event. It never reports a record failed: an undecodable record
 * is counted and logged (retrying it cannot help), and writing a line cannot fail.
 */
export const deriveKinesisEvent = (
  event: LambdaEvents.KinesisEvent,
  options: DeriveOptions = defaultOptions
): Effect.Effect<
  LambdaEvents.BatchResponse & { readonly result: DeriveResult },
  never,
  MetricLog | DedupCache
> =>
  derive(event.Records.map(toStreamRecord), options).pipe(
    Effect.map((result) => ({ result, batchItemFailures: [] }))
  )
