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
 * - records older than the retention period are trimmed and can no longer be read.
 *
 * Time comes from Effect's `Clock` and randomness from Effect's `Random`, both taken from the calling
 * fiber, so a test under `TestClock` with a seeded `Random` (`Random.withSeed`) is deterministic.
 */
import { createHash } from "node:crypto"
import { RecordStream, type ShardReader } from "@spillway/core"
import { Clock, Context, Duration, Effect, Layer, Random } from "effect"

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
}

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
}

export class MemoryStream extends Context.Service<MemoryStream, Service>()("spillway/memory/MemoryStream") {}

/** 2^128: the size of the Kinesis hash key space. */
export const hashKeySpace = 1n << 128n

/** The Kinesis hash key of a partition key: MD5 of its UTF-8 bytes as a big-endian unsigned integer. */
export const hashKeyOf = (partitionKey: string): bigint =>
  BigInt(`0x${createHash("md5").update(partitionKey, "utf8").digest("hex")}`)

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
  readonly start: bigint
  readonly end: bigint
  /** Retained records in sequence order. */
  records: Array<RecordStream.StreamRecord>
  /** Sequence number of the newest trimmed record: reads at or before it were lost to retention. */
  trimmedThrough: bigint | undefined
  lastSequence: bigint
  windowSecond: number
  windowRecords: number
  windowBytes: number
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
    const retentionMillis = retentionHours * 3_600_000
    const streamArn = `arn:aws:kinesis:${region}:${accountId}:stream/${streamName}`

    const descriptions = describeShards(shardCount)
    const shards: Array<ShardState> = []
    for (const description of descriptions) {
      // A random starting point per shard: the same digits on two shards would hide bugs that key
      // dedup on the sequence number alone instead of (shardId, sequenceNumber).
      const offset = yield* Random.nextIntBetween(0, 1_000_000_000, { halfOpen: true })
      shards.push({
        description,
        start: BigInt(description.startingHashKey),
        end: BigInt(description.endingHashKey),
        records: [],
        trimmedThrough: undefined,
        lastSequence: sequenceBase + BigInt(offset),
        windowSecond: -1,
        windowRecords: 0,
        windowBytes: 0
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

    const shardFor = (partitionKey: string): ShardState => {
      const h = hashKeyOf(partitionKey)
      return shards.find((shard) => shard.start <= h && h <= shard.end)!
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
      const gaps = yield* Effect.forEach(entries, () =>
        Random.nextIntBetween(1, maxSequenceGap, { halfOpen: true })
      )
      return yield* Effect.sync(() => {
        trim(now)
        const second = Math.floor(now / 1000)
        return entries.map((entry, index): RecordStream.PutOutcome => {
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
          // Fixed one-second windows: the budget resets on each wall-clock second, which is how
          // producers observe the limit (a burst fails, the next second succeeds).
          if (shard.windowSecond !== second) {
            shard.windowSecond = second
            shard.windowRecords = 0
            shard.windowBytes = 0
          }
          const size = RecordStream.entrySize(entry)
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
          return { _tag: "Stored", shardId: record.shardId, sequenceNumber: record.sequenceNumber }
        })
      })
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
      stats: Effect.sync(() => ({ injectedEntryFailures, throttledEntries, rejectedCalls }))
    })
  })

/** One stream behind both tags: producers see `RecordStream`, tests and consumers `MemoryStream`. */
export const layerMemory = (options: Options = {}): Layer.Layer<RecordStream.RecordStream | MemoryStream> =>
  Layer.effectContext(
    Effect.map(make(options), (stream) =>
      Context.make(MemoryStream, stream).pipe(Context.add(RecordStream.RecordStream, stream))
    )
  )
