/**
 * An emulation of Amazon Data Firehose with a Kinesis stream as source and S3 as destination
 * (docs/aws-behaviour.md §5.2–5.5, §5.8): the hourly backup of the stream. It reads every shard about once per
 * second as its own consumer, buffers what it read, and writes one archive object whenever the
 * buffer reaches `bufferingSizeBytes` or its oldest record has waited `bufferingIntervalSeconds`,
 * whichever comes first. Over a `MemoryStream` and a `MemoryArchive` it backs up the in-memory
 * pipeline; over `@spillway/aws`' `KinesisShardSource` and `FirehoseArchive` it backs up a stream
 * in kinesalite into an S3 bucket (`spillway dev --backend emulators`).
 *
 * Guarantees:
 * - every record the stream holds reaches the archive, once, in shard order within an object,
 *   except records the archive's newline framing cannot hold (empty, or containing a newline):
 *   those are set aside in `refused` with their shard, sequence number and reason instead of
 *   blocking the backup. (Firehose itself would archive them — it diverts only failed transforms
 *   and conversions, docs/aws-behaviour.md §5.6 — and they would read back split or not at all.) Firehose is
 *   at-least-once; this emulation never duplicates, even when a flush is interrupted, but readers
 *   must not rely on that;
 * - a failed read is retried on the next poll, a failed delivery after `retryDelayMillis`, both
 *   indefinitely; while a delivery is retried nothing more is read, and after a permanent refusal
 *   nothing more is read until a delivery goes through (the buffer stays bounded, as Firehose's
 *   is, and the stream keeps the records meanwhile); the latest failure is in `lastError`;
 * - `flush` reads every shard to its tip and delivers the buffer now. Firehose has no such call:
 *   it stands for "the buffering interval elapsed", for a local run that is stopping.
 *
 * Choices: reading starts at the trim horizon (Firehose starts at `LATEST` when it is created; it
 * is created with the stream, so both see every record). Records trimmed by retention before they
 * were read are not backed up, as in Firehose.
 */
import { Archive, type RecordStream, type ShardReader } from "@spillway/core"
import { Clock, Data, Effect, Result, type Scope, Semaphore } from "effect"

export interface Config {
  /** Flush when the buffer holds this many bytes (Firehose: 1–128 MiB). @default 5 MiB */
  readonly bufferingSizeBytes?: number
  /** Flush when the oldest buffered record has waited this long (Firehose: 0–900 s). @default 300 */
  readonly bufferingIntervalSeconds?: number
  /** How often each shard is read. @default 1000 */
  readonly pollIntervalMillis?: number
  /** Pause before a failed delivery is tried again. @default 1000 */
  readonly retryDelayMillis?: number
}

export class InvalidConfig extends Data.TaggedError("InvalidFirehoseConfig")<{
  readonly option: string
  readonly message: string
}> {}

export interface Counters {
  readonly recordsRead: number
  readonly recordsDelivered: number
  readonly objectsDelivered: number
  readonly bytesDelivered: number
  /** Records read and waiting in the buffer. */
  readonly buffered: number
  /** Records the archive's framing cannot hold (empty, or containing a newline): see `refused`. */
  readonly recordsRefused: number
  /** The latest read or delivery failure, with its reason (kept after recovery, for the record). */
  readonly lastError?: string
  readonly readErrors: number
  readonly deliveryErrors: number
}

/** A stream record left out of the archive, with where it is and why: Firehose's error output. */
export interface Refused {
  readonly shardId: string
  readonly sequenceNumber: string
  readonly reason: string
}

export interface Delivery {
  readonly counters: Effect.Effect<Counters>
  /** Records left out of the archive, as Firehose writes failed records to its error prefix. */
  readonly refused: Effect.Effect<ReadonlyArray<Refused>>
  /** Every shard read to its tip (records may still wait in the buffer). */
  readonly isCaughtUp: Effect.Effect<boolean>
  /** Reads every shard to its tip and delivers the buffer now; fails only if the archive refuses for good. */
  readonly flush: Effect.Effect<void, Archive.ArchiveError>
}

const mebibyte = 1024 * 1024
/** GetRecords' largest page. */
const readLimit = 10_000

/** What a record adds to an archive object: its data and the newline that ends it (`Archive.encodeObject`). */
const objectBytes = (record: { readonly data: Uint8Array }) => record.data.length + 1

const check = (option: string, value: number, min: number, max: number) =>
  Number.isFinite(value) && value >= min && value <= max
    ? Effect.succeed(value)
    : Effect.fail(new InvalidConfig({ option, message: `${option} must be in ${min}–${max}, got ${value}` }))

export const start = (
  source: Pick<ShardReader.Service, "shardIds" | "getRecords" | "shardTips">,
  archive: Archive.Service,
  config: Config = {}
): Effect.Effect<Delivery, InvalidConfig, Scope.Scope> =>
  Effect.gen(function* () {
    const sizeBytes = yield* check(
      "bufferingSizeBytes",
      config.bufferingSizeBytes ?? 5 * mebibyte,
      1,
      128 * mebibyte
    )
    const intervalMillis =
      (yield* check("bufferingIntervalSeconds", config.bufferingIntervalSeconds ?? 300, 0, 900)) * 1000
    const pollMillis = yield* check("pollIntervalMillis", config.pollIntervalMillis ?? 1000, 1, 60_000)
    const retryMillis = yield* check("retryDelayMillis", config.retryDelayMillis ?? 1000, 1, 3_600_000)

    const checkpoints = new Map<string, string | undefined>(source.shardIds.map((id) => [id, undefined]))
    let buffer: Array<Archive.ArchivedRecord> = []
    let bufferBytes = 0
    let bufferedSince: number | undefined
    const counters = {
      recordsRead: 0,
      recordsDelivered: 0,
      objectsDelivered: 0,
      bytesDelivered: 0,
      readErrors: 0,
      deliveryErrors: 0
    }
    // One round at a time: the polling loop and `flush` both read and deliver.
    const lock = yield* Semaphore.make(1)

    const refused: Array<Refused> = []
    /** The latest read or delivery failure, for people watching the backup. */
    let lastError: string | undefined
    /** The permanent refusal holding the backup up, until a delivery goes through. */
    let blockedBy: Archive.ArchiveError | undefined

    const append = (records: ReadonlyArray<RecordStream.StreamRecord>, now: number) => {
      for (const record of records) {
        // Set aside rather than buffered: one such record would make every delivery of its object fail.
        const problem = Archive.unframeable(record.data)
        if (problem !== undefined) {
          refused.push({
            shardId: record.shardId,
            sequenceNumber: record.sequenceNumber,
            reason: `the record ${problem}`
          })
          continue
        }
        bufferedSince ??= now
        buffer.push({ data: record.data, arrivedAt: record.approximateArrivalTimestamp })
        bufferBytes += objectBytes(record)
      }
      counters.recordsRead += records.length
    }

    /** Reads each shard until a page comes back short (its tip) or a read fails. */
    const readAll = Effect.gen(function* () {
      for (const shardId of source.shardIds) {
        while (true) {
          const page = yield* source
            .getRecords(shardId, { after: checkpoints.get(shardId), limit: readLimit })
            .pipe(
              Effect.map((result) => result.records),
              Effect.catch((error) =>
                Effect.sync(() => {
                  counters.readErrors++
                  lastError = `read ${shardId}: ${error.message}`
                  return undefined
                })
              )
            )
          if (page === undefined) break
          append(page, yield* Clock.currentTimeMillis)
          const last = page.at(-1)
          if (last !== undefined) checkpoints.set(shardId, last.sequenceNumber)
          if (page.length < readLimit) break
        }
      }
    })

    /** Cuts the buffer into objects of at most `sizeBytes` (at least one record each). */
    const cut = (records: ReadonlyArray<Archive.ArchivedRecord>) => {
      const objects: Array<Array<Archive.ArchivedRecord>> = []
      let current: Array<Archive.ArchivedRecord> = []
      let bytes = 0
      for (const record of records) {
        if (current.length > 0 && bytes + objectBytes(record) > sizeBytes) {
          objects.push(current)
          current = []
          bytes = 0
        }
        current.push(record)
        bytes += objectBytes(record)
      }
      if (current.length > 0) objects.push(current)
      return objects
    }

    /** Takes a delivered object's records off the front of the buffer and counts them. */
    const delivered = (object: ReadonlyArray<Archive.ArchivedRecord>) => {
      buffer = buffer.slice(object.length)
      bufferBytes -= object.reduce((n, r) => n + objectBytes(r), 0)
      if (buffer.length === 0) bufferedSince = undefined
      counters.objectsDelivered++
      counters.recordsDelivered += object.length
      counters.bytesDelivered += object.reduce((n, r) => n + r.data.length, 0)
      blockedBy = undefined
    }

    /**
     * Writes the buffer an object at a time, retrying retryable refusals; a permanent refusal
     * keeps what is left and fails. Each object leaves the buffer as soon as the archive has it,
     * in a step an interruption cannot split, so a flush cut short (a stopping run's deadline)
     * never writes the same records twice.
     */
    const deliver = Effect.gen(function* () {
      for (const object of cut(buffer)) {
        while (true) {
          const outcome = yield* Effect.uninterruptibleMask((restore) =>
            Effect.result(restore(archive.write(object))).pipe(
              Effect.tap((result) =>
                Result.isSuccess(result) ? Effect.sync(() => delivered(object)) : Effect.void
              )
            )
          )
          if (Result.isSuccess(outcome)) break
          counters.deliveryErrors++
          lastError = `delivery: ${outcome.failure.message}`
          if (!outcome.failure.isRetryable) {
            blockedBy = outcome.failure
            return yield* outcome.failure
          }
          yield* Effect.sleep(retryMillis)
        }
      }
    })

    const due = Effect.map(
      Clock.currentTimeMillis,
      (now) =>
        buffer.length > 0 &&
        (bufferBytes >= sizeBytes || (bufferedSince !== undefined && now - bufferedSince >= intervalMillis))
    )

    const round = lock.withPermits(1)(
      Effect.gen(function* () {
        // After a permanent refusal (a bucket that does not exist), nothing more is read until a
        // delivery goes through: the buffer stays bounded and the stream keeps the records.
        if (blockedBy === undefined) yield* readAll
        if (blockedBy !== undefined || (yield* due)) {
          // Counted, shown in `lastError`, and tried again next round.
          yield* Effect.ignore(deliver)
        }
      })
    )

    yield* Effect.forkScoped(Effect.forever(Effect.andThen(round, Effect.sleep(pollMillis))))

    return {
      counters: Effect.sync(() => ({
        ...counters,
        buffered: buffer.length,
        recordsRefused: refused.length,
        ...(lastError === undefined ? {} : { lastError })
      })),
      refused: Effect.sync(() => [...refused]),
      isCaughtUp: Effect.map(source.shardTips, (tips) =>
        source.shardIds.every((shardId) => {
          const tip = tips[shardId]
          const checkpoint = checkpoints.get(shardId)
          return tip === undefined || (checkpoint !== undefined && BigInt(checkpoint) >= BigInt(tip))
        })
      ),
      flush: lock.withPermits(1)(
        Effect.gen(function* () {
          yield* readAll
          if (buffer.length > 0) yield* deliver
        })
      )
    } satisfies Delivery
  }).pipe(Effect.withSpan("FirehoseDelivery.start"))
