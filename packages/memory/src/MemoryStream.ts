/**
 * An in-memory Kinesis data stream: the `RecordStream` backend for tests and local runs, plus a
 * control handle to read shards the way a consumer does and to inject the failures a real stream
 * produces.
 *
 * Guarantees, each as Kinesis documents it (docs/aws-behaviour.md §1):
 * - routing: MD5 of the partition key's UTF-8 bytes, read as a big-endian unsigned 128-bit integer,
 *   into shards that split the hash space evenly (the last shard takes the remainder);
 * - per shard, sequence numbers are ~56-digit decimal strings that strictly increase, with random
 *   gaps so that no caller can get away with "previous + 1" arithmetic;
 * - `putRecords` either fails as a whole (limits, outage, throttling) or answers once per entry in
 *   request order; one failed entry never stops the others;
 * - per-shard write throughput (1,000 records/s and 1 MiB/s) is enforced per entry with
 *   `ProvisionedThroughputExceededException`, so partial-retry code paths get exercised;
 * - on-demand capacity (`capacity: { mode: "onDemand" }`), as documented: a new stream takes
 *   4 MB/s and 4,000 records/s, and at any time double the highest write throughput it has
 *   written in a second, once that peak is 15 minutes old (the documented upper bound for scaling
 *   up: "write throttling can occur if your traffic increases to more than double the previous
 *   peak within a 15-minute duration"); beyond it, entries are throttled as a provisioned stream's;
 * - records older than the retention period are trimmed and can no longer be read;
 * - enhanced fan-out (`fanOut`): every record is pushed to registered consumers
 *   `fanOutPropagationMillis` after it was written, and a consumer waiting for one is woken then,
 *   not on a timer.
 *
 * Time comes from Effect's `Clock` and randomness from Effect's `Random`, both taken from the calling
 * fiber, so a test under `TestClock` with a seeded `Random` (`Random.withSeed`) is deterministic.
 */
import { hash } from "node:crypto"
import { RecordStream, type ShardReader } from "@spillway/core"
import { Clock, Context, Deferred, Duration, Effect, Layer, Random } from "effect"

export interface Options {
  /** @default "telemetry" */
  readonly streamName?: string
  /** @default 4 */
  readonly shardCount?: number
  /** Region in the stream ARN. @default "us-east-1" */
  readonly region?: string
  /** Account in the stream ARN and in throttling messages. @default "123456789012" */
  readonly accountId?: string
  /** PutRecords limits. @default RecordStream.defaultLimits */
  readonly limits?: RecordStream.Limits
  /** Per-shard write budget in records per second. @default 1000 */
  readonly recordsPerSecondPerShard?: number
  /** Per-shard write budget in bytes (data + partition key) per second. @default 1048576 (1 MiB) */
  readonly bytesPerSecondPerShard?: number
  /** Records older than this are trimmed. @default 24 */
  readonly retentionHours?: number
  /**
   * Enhanced fan-out: how long after it is written a record is pushed to a registered consumer
   * (`SubscribeToShard`). @default 70 — "typically an average of 70 ms" (Kinesis Data Streams
   * Developer Guide, "Read data from Amazon Kinesis Data Streams")
   */
  readonly fanOutPropagationMillis?: number
  /** @default { mode: "provisioned" } */
  readonly capacity?: CapacityMode
}

/** What the Kinesis Data Streams Developer Guide gives as the typical enhanced fan-out propagation delay. */
export const defaultFanOutPropagationMillis = 70

/**
 * How the stream's write capacity is managed. Provisioned: `shardCount` shards, each taking
 * `recordsPerSecondPerShard` and `bytesPerSecondPerShard`. On-demand: Kinesis manages the shards;
 * the stream takes `onDemand.initialRecordsPerSecond` / `initialBytesPerSecond`, or double the
 * previous peak, whichever is more, and scales to double each new peak within
 * `onDemand.scaleUpMillis` (Kinesis Data Streams FAQ, "What are the default throughput quotas
 * to write data into data stream using on-demand mode?" and "How do data streams scale in
 * on-demand mode?"; Developer Guide, "Choose the data stream capacity mode").
 *
 * What the model leaves out: on-demand splits a shard whose traffic passes 500 KB/s and adapts
 * to uneven keys unless one key passes a shard's limits; the model enforces the stream's
 * capacity, not a shard's, and reads the stream through `shardCount` shards (4 by default, the
 * initial capacity's worth of 1 MiB/s shards). Scale-down (gradual, over a day) plays no part in
 * a run.
 */
export type CapacityMode =
  | { readonly mode: "provisioned" }
  | {
      readonly mode: "onDemand"
      /**
       * The highest write throughput of the last 30 days, in records per second: the stream can
       * take double it from the start. @default 0 (a new stream: the initial capacity)
       */
      readonly previousPeakRecordsPerSecond?: number
      /** As `previousPeakRecordsPerSecond`, in bytes per second. @default 0 */
      readonly previousPeakBytesPerSecond?: number
    }

/** On-demand's documented figures: a new stream's write capacity, and how long a scale-up may take. */
export const onDemand = {
  /** "A new data stream created in on-demand mode has a quota of 4 MB/second and 4,000 records per second for writes." */
  initialRecordsPerSecond: 4000,
  initialBytesPerSecond: 4 * 1_048_576,
  /** Double the previous peak is taken at once; more than that "within a 15-minute duration" may be throttled. */
  scaleUpMillis: 15 * 60_000
} as const

/** A shard as ListShards describes it: hash keys are inclusive decimal strings. */
export interface ShardDescription {
  readonly shardId: string
  readonly startingHashKey: string
  readonly endingHashKey: string
}

/** What one GetRecords-like read returns. */
/** What `getRecords` answers (the `ShardReader` port's result). */
export type ReadResult = ShardReader.ReadResult

/** When an injected fault ends: after a duration from now, at an epoch-millisecond instant, or (omitted) when cleared. */
export type FaultWindow = { readonly for: Duration.Input } | { readonly until: number }

/** Decides, per entry, whether to fail it; `undefined` lets the entry through. */
export type EntryFailureInjector = (
  entry: RecordStream.PutEntry,
  index: number
) => RecordStream.EntryErrorCode | undefined

export interface Stats {
  /** Entries failed by the injector (sync or random); equals their count in the outcomes. */
  readonly injectedEntryFailures: number
  /** Entries refused with `ProvisionedThroughputExceededException` by the per-shard budget. */
  readonly throttledEntries: number
  /** Whole calls refused because of an injected outage or throttling. */
  readonly rejectedCalls: number
}

/**
 * The stream seen by producers (`RecordStream.Service`) and by consumers (`ShardReader.Service`),
 * plus what tests need.
 */
export interface Service extends RecordStream.Service, ShardReader.Service {
  readonly streamName: string
  readonly shards: ReadonlyArray<ShardDescription>
  /** Every retained record, shard by shard, each shard in sequence order. */
  readonly records: Effect.Effect<ReadonlyArray<RecordStream.StreamRecord>>
  readonly recordCount: Effect.Effect<number>
  /** Every data-plane call (put, readRange, getRecords) fails `Unavailable` for the window. */
  readonly startOutage: (window?: FaultWindow) => Effect.Effect<void>
  /** Every `putRecords` call fails `Throttled` for the window (account-level throttling). */
  readonly startThrottling: (window?: FaultWindow) => Effect.Effect<void>
  /** Fails the entries the function picks; `undefined` removes the injector. */
  readonly injectEntryFailures: (inject: EntryFailureInjector | undefined) => Effect.Effect<void>
  /** Fails each entry with probability `fraction`, drawing from the caller's Effect `Random`. */
  readonly failRandomEntries: (
    fraction: number,
    errorCode?: RecordStream.EntryErrorCode
  ) => Effect.Effect<void>
  /** Ends outages, throttling and entry failure injection. */
  readonly clearFaults: Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
  /** Every memory stream pushes to registered consumers. */
  readonly fanOut: ShardReader.FanOut
  /** The stream's write capacity now: provisioned (the sum of its shards) or on-demand (as it has scaled). */
  readonly writeCapacity: Effect.Effect<{
    readonly mode: CapacityMode["mode"]
    readonly recordsPerSecond: number
    readonly bytesPerSecond: number
  }>
}

export class MemoryStream extends Context.Service<MemoryStream, Service>()("spillway/memory/MemoryStream") {}

/** 2^128: the size of the Kinesis hash key space. */
export const hashKeySpace = 1n << 128n

/** The Kinesis hash key of a partition key: MD5 of its UTF-8 bytes as a big-endian unsigned integer. */
export const hashKeyOf = (partitionKey: string): bigint => BigInt(`0x${hashHexOf(partitionKey)}`)

/**
 * The same hash key as 32 hex digits. Zero-padded to one length, hex strings sort as the numbers
 * do, so a shard is found by comparing strings: no BigInt per entry (routing is on every put).
 */
const hashHexOf = (partitionKey: string): string => hash("md5", partitionKey, "hex")
const hexOf = (key: bigint): string => key.toString(16).padStart(32, "0")

export const shardIdOf = (index: number): string => `shardId-${index.toString().padStart(12, "0")}`

/** Even split of the hash key space, as CreateStream does; the last shard absorbs the remainder. */
export const describeShards = (shardCount: number): ReadonlyArray<ShardDescription> => {
  const width = hashKeySpace / BigInt(shardCount)
  return Array.from({ length: shardCount }, (_, i) => ({
    shardId: shardIdOf(i),
    startingHashKey: (BigInt(i) * width).toString(),
    endingHashKey: (i === shardCount - 1 ? hashKeySpace - 1n : BigInt(i + 1) * width - 1n).toString()
  }))
}

const sequenceNumberPattern = /^(0|[1-9]\d{0,128})$/
// Real sequence numbers are 56 digits; starting there keeps consumers honest about BigInt compares.
const sequenceBase = BigInt(`4965${"0".repeat(52)}`)
// Upper bound (exclusive) of the random gap between consecutive sequence numbers of a shard.
const maxSequenceGap = 1 << 16
const maxGetRecordsLimit = 10_000
const maxPartitionKeyLength = 256

interface ShardState {
  readonly description: ShardDescription
  /** The hash key range, as 32 hex digits (see `hashHexOf`). */
  readonly startHex: string
  readonly endHex: string
  /** Retained records in sequence order. */
  records: Array<RecordStream.StreamRecord>
  /** Sequence number of the newest trimmed record: reads at or before it were lost to retention. */
  trimmedThrough: bigint | undefined
  lastSequence: bigint
  windowSecond: number
  windowRecords: number
  windowBytes: number
  /** Completed, and replaced, whenever records are stored in the shard: wakes fan-out consumers. */
  arrived: Deferred.Deferred<void>
}

type Injector = (
  entry: RecordStream.PutEntry,
  index: number
) => Effect.Effect<RecordStream.EntryErrorCode | undefined>

const positiveInteger = (option: string, value: number): Effect.Effect<number> =>
  Number.isInteger(value) && value > 0
    ? Effect.succeed(value)
    : Effect.die(new Error(`MemoryStream: option ${option} must be a positive integer, got ${value}`))

const streamError = (reason: RecordStream.ErrorReason, message: string) =>
  new RecordStream.RecordStreamError({ reason, message })

export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const streamName = options.streamName ?? "telemetry"
    const region = options.region ?? "us-east-1"
    const accountId = options.accountId ?? "123456789012"
    const limits = options.limits ?? RecordStream.defaultLimits
    const shardCount = yield* positiveInteger("shardCount", options.shardCount ?? 4)
    const recordsPerSecond = yield* positiveInteger(
      "recordsPerSecondPerShard",
      options.recordsPerSecondPerShard ?? 1000
    )
    const bytesPerSecond = yield* positiveInteger(
      "bytesPerSecondPerShard",
      options.bytesPerSecondPerShard ?? 1_048_576
    )
    const retentionHours = yield* positiveInteger("retentionHours", options.retentionHours ?? 24)
    const propagationMillis = options.fanOutPropagationMillis ?? defaultFanOutPropagationMillis
    if (!Number.isFinite(propagationMillis) || propagationMillis < 0) {
      return yield* Effect.die(
        new Error(`MemoryStream: option fanOutPropagationMillis must be ≥ 0, got ${propagationMillis}`)
      )
    }
    const retentionMillis = retentionHours * 3_600_000
    const streamArn = `arn:aws:kinesis:${region}:${accountId}:stream/${streamName}`
    const capacity = options.capacity ?? { mode: "provisioned" }
    const scaling = capacity.mode === "onDemand" ? yield* onDemandScaling(capacity) : undefined

    const descriptions = describeShards(shardCount)
    const shards: Array<ShardState> = []
    for (const description of descriptions) {
      // A random starting point per shard: the same digits on two shards would hide bugs that key
      // dedup on the sequence number alone instead of (shardId, sequenceNumber).
      const offset = yield* Random.nextIntBetween(0, 1_000_000_000, { halfOpen: true })
      shards.push({
        description,
        startHex: hexOf(BigInt(description.startingHashKey)),
        endHex: hexOf(BigInt(description.endingHashKey)),
        records: [],
        trimmedThrough: undefined,
        lastSequence: sequenceBase + BigInt(offset),
        windowSecond: -1,
        windowRecords: 0,
        windowBytes: 0,
        arrived: Deferred.makeUnsafe<void>()
      })
    }
    const byId = new Map(shards.map((shard) => [shard.description.shardId, shard]))

    let outageUntil: number | undefined
    let throttledUntil: number | undefined
    let injector: Injector | undefined
    let injectedEntryFailures = 0
    let throttledEntries = 0
    let rejectedCalls = 0

    // Records are in sequence order: binary search keeps polling O(log n) on long shards.
    const firstAfter = (records: ReadonlyArray<RecordStream.StreamRecord>, sequence: bigint): number => {
      let lo = 0
      let hi = records.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (BigInt(records[mid]!.sequenceNumber) > sequence) hi = mid
        else lo = mid + 1
      }
      return lo
    }

    // Shards cover the key space in order: the last one starting at or before the key holds it.
    const shardFor = (partitionKey: string): ShardState => {
      const key = hashHexOf(partitionKey)
      let lo = 0
      let hi = shards.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1
        if (shards[mid]!.startHex <= key) lo = mid
        else hi = mid - 1
      }
      return shards[lo]!
    }

    const trim = (now: number): void => {
      const horizon = now - retentionMillis
      for (const shard of shards) {
        let dropped = 0
        while (
          dropped < shard.records.length &&
          shard.records[dropped]!.approximateArrivalTimestamp < horizon
        )
          dropped++
        if (dropped > 0) {
          shard.trimmedThrough = BigInt(shard.records[dropped - 1]!.sequenceNumber)
          shard.records = shard.records.slice(dropped)
        }
      }
    }

    const untilOf = (now: number, window: FaultWindow | undefined): number =>
      window === undefined
        ? Number.POSITIVE_INFINITY
        : "until" in window
          ? window.until
          : now + Duration.toMillis(Duration.fromInputUnsafe(window.for))

    /** Fails when an injected outage covers `now`; every data-plane call goes through it. */
    const checkOutage = (now: number): Effect.Effect<void, RecordStream.RecordStreamError> => {
      if (outageUntil !== undefined && now < outageUntil) {
        rejectedCalls++
        return Effect.fail(
          streamError("Unavailable", `Kinesis stream ${streamName} is unavailable (injected outage)`)
        )
      }
      return Effect.void
    }

    const shardOrNotFound = (shardId: string): Effect.Effect<ShardState, RecordStream.RecordStreamError> => {
      const shard = byId.get(shardId)
      return shard === undefined
        ? Effect.fail(
            streamError(
              "NotFound",
              `Shard ${shardId} in stream ${streamName} under account ${accountId} not found`
            )
          )
        : Effect.succeed(shard)
    }

    const validateCall = (entries: ReadonlyArray<RecordStream.PutEntry>): string | undefined => {
      if (entries.length === 0) return "PutRecords needs at least one entry"
      if (entries.length > limits.maxEntriesPerCall) {
        return `${entries.length} entries exceed the limit of ${limits.maxEntriesPerCall} per PutRecords call`
      }
      let total = 0
      for (const [index, entry] of entries.entries()) {
        const keyLength = entry.partitionKey.length
        if (keyLength === 0 || keyLength > maxPartitionKeyLength) {
          return `entry ${index}: partition key length ${keyLength} is outside 1-${maxPartitionKeyLength}`
        }
        const size = RecordStream.entrySize(entry)
        if (size > limits.maxBytesPerRecord) {
          return `entry ${index}: ${size} bytes exceed the limit of ${limits.maxBytesPerRecord} per record`
        }
        total += size
      }
      if (total > limits.maxBytesPerCall) {
        return `${total} bytes exceed the limit of ${limits.maxBytesPerCall} per PutRecords call`
      }
      return undefined
    }

    const putRecords = Effect.fn("MemoryStream.putRecords")(function* (
      entries: ReadonlyArray<RecordStream.PutEntry>
    ) {
      const now = yield* Clock.currentTimeMillis
      yield* checkOutage(now)
      const invalid = validateCall(entries)
      if (invalid !== undefined) return yield* Effect.fail(streamError("InvalidRequest", invalid))
      if (throttledUntil !== undefined && now < throttledUntil) {
        rejectedCalls++
        return yield* Effect.fail(
          streamError("Throttled", `Rate exceeded for stream ${streamName} (injected throttling)`)
        )
      }
      // Everything that needs Clock or Random is drawn before the state changes, so the state update
      // below is one synchronous step and concurrent callers cannot interleave inside it.
      const inject = injector
      const injected =
        inject === undefined
          ? entries.map(() => undefined)
          : yield* Effect.forEach(entries, (entry, index) => inject(entry, index))
      // `Random.nextIntBetween(1, maxSequenceGap, { halfOpen: true })` per entry, drawn straight
      // from the run's generator: the same numbers in the same order, without an effect per entry.
      const random = yield* Random.Random
      const gaps = entries.map(() => Math.floor(random.nextDoubleUnsafe() * (maxSequenceGap - 1)) + 1)
      return yield* Effect.sync(() => {
        trim(now)
        const second = Math.floor(now / 1000)
        const stream = scaling?.at(now)
        const stored = new Set<ShardState>()
        const outcomes = entries.map((entry, index): RecordStream.PutOutcome => {
          const errorCode = injected[index]
          if (errorCode !== undefined) {
            injectedEntryFailures++
            return {
              _tag: "Failed",
              errorCode,
              message:
                errorCode === "InternalFailure"
                  ? "Internal service failure."
                  : `Rate exceeded for stream ${streamName} under account ${accountId}.`
            }
          }
          const shard = shardFor(entry.partitionKey)
          const size = RecordStream.entrySize(entry)
          if (stream !== undefined) {
            // On-demand: the stream's capacity as it has scaled, whichever shard the entry goes to.
            if (!stream.take(size)) {
              throttledEntries++
              return {
                _tag: "Failed",
                errorCode: "ProvisionedThroughputExceededException",
                message: `Rate exceeded for stream ${streamName} under account ${accountId}.`
              }
            }
          } else {
            // Fixed one-second windows: the budget resets on each wall-clock second, which is how
            // producers observe the limit (a burst fails, the next second succeeds).
            if (shard.windowSecond !== second) {
              shard.windowSecond = second
              shard.windowRecords = 0
              shard.windowBytes = 0
            }
            if (shard.windowRecords + 1 > recordsPerSecond || shard.windowBytes + size > bytesPerSecond) {
              throttledEntries++
              return {
                _tag: "Failed",
                errorCode: "ProvisionedThroughputExceededException",
                message: `Rate exceeded for shard ${shard.description.shardId} in stream ${streamName} under account ${accountId}.`
              }
            }
            shard.windowRecords += 1
            shard.windowBytes += size
          }
          shard.lastSequence += BigInt(gaps[index]!)
          const record: RecordStream.StreamRecord = {
            shardId: shard.description.shardId,
            sequenceNumber: shard.lastSequence.toString(),
            partitionKey: entry.partitionKey,
            // Copied so that a producer reusing its buffer cannot rewrite stored history.
            data: Uint8Array.from(entry.data),
            approximateArrivalTimestamp: now
          }
          shard.records.push(record)
          stored.add(shard)
          return { _tag: "Stored", shardId: record.shardId, sequenceNumber: record.sequenceNumber }
        })
        for (const shard of stored) {
          Deferred.doneUnsafe(shard.arrived, Effect.void)
          shard.arrived = Deferred.makeUnsafe<void>()
        }
        return outcomes
      })
    })

    // Whole milliseconds, rounded up: a `TestClock` can stand at a fractional instant, and a wait
    // of less than a nanosecond is no wait to Effect's `Duration` (the waiter would spin).
    const awaitPushed = (shardId: string, after: string | undefined): Effect.Effect<void> =>
      Effect.gen(function* () {
        const shard = byId.get(shardId)
        if (shard === undefined) return yield* Effect.die(new Error(`MemoryStream: no shard ${shardId}`))
        while (true) {
          const now = yield* Clock.currentTimeMillis
          trim(now)
          const next = shard.records[after === undefined ? 0 : firstAfter(shard.records, BigInt(after))]
          if (next !== undefined) {
            const wait = Math.ceil(next.approximateArrivalTimestamp + propagationMillis - now)
            if (wait > 0) yield* Effect.sleep(wait)
            return
          }
          yield* Deferred.await(shard.arrived)
        }
      })

    const readRange = Effect.fn("MemoryStream.readRange")(function* (range: RecordStream.ShardRange) {
      const now = yield* Clock.currentTimeMillis
      yield* checkOutage(now)
      const shard = yield* shardOrNotFound(range.shardId)
      if (
        !sequenceNumberPattern.test(range.startSequenceNumber) ||
        !sequenceNumberPattern.test(range.endSequenceNumber)
      ) {
        return yield* Effect.fail(streamError("InvalidRequest", "sequence numbers must be decimal strings"))
      }
      const start = BigInt(range.startSequenceNumber)
      const end = BigInt(range.endSequenceNumber)
      if (start > end) {
        return yield* Effect.fail(streamError("InvalidRequest", "range start is after its end"))
      }
      trim(now)
      if (shard.trimmedThrough !== undefined && start <= shard.trimmedThrough) {
        return yield* Effect.fail(
          streamError(
            "TrimmedByRetention",
            `records of ${range.shardId} from ${range.startSequenceNumber} are older than the ${retentionHours} h retention`
          )
        )
      }
      return shard.records.slice(firstAfter(shard.records, start - 1n), firstAfter(shard.records, end))
    })

    const getRecords = Effect.fn("MemoryStream.getRecords")(function* (
      shardId: string,
      options: { readonly after?: string | undefined; readonly limit: number }
    ) {
      const now = yield* Clock.currentTimeMillis
      yield* checkOutage(now)
      const shard = yield* shardOrNotFound(shardId)
      if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > maxGetRecordsLimit) {
        return yield* Effect.fail(
          streamError(
            "InvalidRequest",
            `GetRecords limit ${options.limit} is outside 1-${maxGetRecordsLimit}`
          )
        )
      }
      if (options.after !== undefined && !sequenceNumberPattern.test(options.after)) {
        return yield* Effect.fail(streamError("InvalidRequest", `${options.after} is not a sequence number`))
      }
      trim(now)
      const from = options.after === undefined ? 0 : firstAfter(shard.records, BigInt(options.after))
      const records = shard.records.slice(from, from + options.limit)
      const next = shard.records[from + records.length]
      return {
        records,
        millisBehindLatest: next === undefined ? 0 : Math.max(0, now - next.approximateArrivalTimestamp)
      } satisfies ReadResult
    })

    const withTrim = <A>(f: () => A): Effect.Effect<A> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          trim(now)
          return f()
        })
      )

    return MemoryStream.of({
      streamArn,
      streamName,
      region,
      accountId,
      retentionHours,
      shards: descriptions,
      shardIds: descriptions.map((shard) => shard.shardId),
      putRecords,
      readRange,
      getRecords,
      // An observation for consumers and tests: fault injection does not apply to it.
      shardTips: withTrim(() =>
        Object.fromEntries(
          shards.map((shard) => [shard.description.shardId, shard.records.at(-1)?.sequenceNumber])
        )
      ),
      records: withTrim(() => shards.flatMap((shard) => shard.records)),
      recordCount: withTrim(() => shards.reduce((sum, shard) => sum + shard.records.length, 0)),
      startOutage: (window) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            outageUntil = untilOf(now, window)
          })
        ),
      startThrottling: (window) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            throttledUntil = untilOf(now, window)
          })
        ),
      injectEntryFailures: (inject) =>
        Effect.sync(() => {
          injector =
            inject === undefined ? undefined : (entry, index) => Effect.sync(() => inject(entry, index))
        }),
      failRandomEntries: (fraction, errorCode = "InternalFailure") =>
        Effect.sync(() => {
          injector = () => Effect.map(Random.next, (draw) => (draw < fraction ? errorCode : undefined))
        }),
      clearFaults: Effect.sync(() => {
        outageUntil = undefined
        throttledUntil = undefined
        injector = undefined
      }),
      stats: Effect.sync(() => ({ injectedEntryFailures, throttledEntries, rejectedCalls })),
      fanOut: { propagationMillis, awaitPushed },
      writeCapacity: Effect.map(Clock.currentTimeMillis, (now) =>
        scaling === undefined
          ? {
              mode: "provisioned" as const,
              recordsPerSecond: recordsPerSecond * shardCount,
              bytesPerSecond: bytesPerSecond * shardCount
            }
          : { mode: "onDemand" as const, ...scaling.capacity(now) }
      )
    })
  })

/**
 * On-demand scaling: the write capacity at any instant is the initial capacity or double the
 * highest throughput written in one second, counting only seconds at least `scaleUpMillis` old,
 * whichever is more; the previous peak (the last 30 days) counts from the start. `at(now)` opens
 * the second `now` falls in and answers its budget, which `take` spends entry by entry.
 */
const onDemandScaling = (capacity: Extract<CapacityMode, { readonly mode: "onDemand" }>) =>
  Effect.gen(function* () {
    const previousRecords = capacity.previousPeakRecordsPerSecond ?? 0
    const previousBytes = capacity.previousPeakBytesPerSecond ?? 0
    for (const [option, value] of [
      ["previousPeakRecordsPerSecond", previousRecords],
      ["previousPeakBytesPerSecond", previousBytes]
    ] as const) {
      if (!Number.isFinite(value) || value < 0) {
        return yield* Effect.die(new Error(`MemoryStream: capacity.${option} must be ≥ 0, got ${value}`))
      }
    }
    let peakRecords = previousRecords
    let peakBytes = previousBytes
    // Seconds written and not yet `scaleUpMillis` old, oldest first.
    const young: Array<{ readonly second: number; readonly records: number; readonly bytes: number }> = []
    let windowSecond = Number.NEGATIVE_INFINITY
    let windowRecords = 0
    let windowBytes = 0
    let budget = { recordsPerSecond: 0, bytesPerSecond: 0 }

    // Closes the second being written once `now` is past it, so its throughput starts to age.
    const roll = (now: number) => {
      const second = Math.floor(now / 1000)
      if (second === windowSecond) return
      if (windowRecords > 0) young.push({ second: windowSecond, records: windowRecords, bytes: windowBytes })
      windowSecond = second
      windowRecords = 0
      windowBytes = 0
    }
    const capacityAt = (now: number) => {
      roll(now)
      while (young.length > 0 && (young[0]!.second + 1) * 1000 + onDemand.scaleUpMillis <= now) {
        const second = young.shift()!
        peakRecords = Math.max(peakRecords, second.records)
        peakBytes = Math.max(peakBytes, second.bytes)
      }
      return {
        recordsPerSecond: Math.max(onDemand.initialRecordsPerSecond, 2 * peakRecords),
        bytesPerSecond: Math.max(onDemand.initialBytesPerSecond, 2 * peakBytes)
      }
    }
    return {
      capacity: capacityAt,
      at: (now: number) => {
        budget = capacityAt(now)
        return {
          take: (size: number): boolean => {
            if (windowRecords + 1 > budget.recordsPerSecond || windowBytes + size > budget.bytesPerSecond)
              return false
            windowRecords += 1
            windowBytes += size
            return true
          }
        }
      }
    }
  })

/** One stream behind both tags: producers see `RecordStream`, tests and consumers `MemoryStream`. */
export const layerMemory = (options: Options = {}): Layer.Layer<RecordStream.RecordStream | MemoryStream> =>
  Layer.effectContext(
    Effect.map(make(options), (stream) =>
      Context.make(MemoryStream, stream).pipe(Context.add(RecordStream.RecordStream, stream))
    )
  )
