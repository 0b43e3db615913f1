/**
 * `spillway reprocess-failures`: the command line of `ReprocessFailures` — its options, the
 * backend it works on, and the exit code.
 */
import { DedupCache, DocumentSink, RecordStream } from "@spillway/core"
import { Console, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Connection from "../backends/Connection.js"
import * as OnFailureQueue from "../backends/OnFailureQueue.js"
import * as Output from "../backends/Output.js"
import * as RecoveryCommand from "../backends/RecoveryCommand.js"
import * as Rehearsal from "../backends/Rehearsal.js"
import { Refused } from "../Refusal.js"
import * as ReprocessFailures from "./ReprocessFailures.js"

const command = "spillway reprocess-failures"

const dryRun = RecoveryCommand.switchFlag(
  "dry-run",
  "Read every message's range back from the stream and count what would be reprocessed; write and delete nothing (each message is received once, which counts toward the queue's maxReceiveCount) (default: off)"
)

const maxMessages = RecoveryCommand.intFlag(
  "max-messages",
  "n",
  (n) => n >= 1,
  "--max-messages must be 1 or more"
).pipe(
  Flag.optional,
  Flag.withDescription("Stop after this many messages (default: every message on the queue)")
)

const visibilityTimeout = RecoveryCommand.intFlag(
  "visibility-timeout",
  "seconds",
  (n) => n >= 30 && n <= 43_200,
  "--visibility-timeout must be 30–43200 seconds"
).pipe(
  Flag.withDefault(900),
  Flag.withDescription(
    "How long a message this run received stays hidden from other consumers, such as the failure-reprocessor function; longer than the run needs (default: 900)"
  )
)

/** A sink for a dry run, which writes nothing: reaching it is a bug. */
const noSink = DocumentSink.DocumentSink.of({
  name: "dry-run",
  write: () => Effect.die(new Error("a dry run does not write"))
})

export const reprocessFailuresCommand = Command.make(
  "reprocess-failures",
  RecoveryCommand.flags({ dryRun, maxMessages, visibilityTimeout }, ["stream", "failureQueue", "index"]),
  (flags) =>
    RecoveryCommand.run({
      command,
      name: "reprocess-failures",
      flags,
      whatIsKept:
        "the messages this run held are visible again, those reprocessed are deleted; run the same command to go on",
      options: Effect.succeed<ReprocessFailures.Options>({
        dryRun: flags.dryRun,
        maxMessages: Option.getOrUndefined(flags.maxMessages),
        visibilityTimeoutSeconds: flags.visibilityTimeout
      }),
      rehearsal,
      onTarget: (t, options, progress) =>
        Effect.gen(function* () {
          const sqs = yield* Connection.sqsClient(t)
          const queue = yield* OnFailureQueue.make(command, sqs, yield* Connection.failureQueueUrl(t, sqs))
          const records = yield* Connection.stream(t).pipe(Effect.mapError(refuseStream))
          const sink = flags.dryRun ? noSink : yield* Connection.sink(t)
          return yield* ReprocessFailures.run(queue, options, progress).pipe(
            Effect.provide(
              Layer.mergeAll(
                Layer.succeed(RecordStream.RecordStream, records),
                Layer.succeed(DedupCache.DedupCache, DedupCache.make({ capacity: 1_000_000 })),
                Layer.succeed(DocumentSink.DocumentSink, sink)
              )
            )
          )
        }),
      format: ReprocessFailures.format,
      toJson: (result, backend) => ({
        command: "reprocess-failures",
        backend,
        exitCode: ReprocessFailures.exitCode(result),
        done: ReprocessFailures.exitCode(result) === 0,
        ...result
      }),
      exitCode: ReprocessFailures.exitCode
    })
).pipe(
  Command.withDescription(
    `Drain the on-failure queue: read each message's range back from the stream by sequence number, process it again (the failure-reprocessor function's stage), and delete the message only once every record of it is saved. Ranges past the stream's retention are listed with their shard, sequence numbers and arrival times, and their messages kept. ${Output.exitCodesHelp}`
  ),
  Command.withExamples([
    {
      command: "spillway reprocess-failures --backend aws --dry-run",
      description: "What would be reprocessed, from $FAILURE_QUEUE_URL and $STREAM_ARN"
    },
    {
      command: "spillway reprocess-failures --backend aws",
      description: "Reprocess, after the fix is deployed"
    },
    {
      command: "spillway reprocess-failures --backend memory",
      description: "Rehearse on an in-memory pipeline"
    }
  ])
)

/** A stream that is not there, or not ours, is bad input; one that does not answer is a failure. */
const refuseStream = (error: Refused | RecordStream.RecordStreamError) =>
  error instanceof Refused || error.isRetryable ? error : new Refused({ command, message: error.message })

const rehearsal = (options: ReprocessFailures.Options) =>
  RecoveryCommand.rehearse(
    "reprocess-failures",
    Rehearsal.reprocessFailuresSpan,
    Rehearsal.reprocessFailures,
    (world, progress) =>
      Effect.gen(function* () {
        const result = yield* Rehearsal.whileTimePasses(
          ReprocessFailures.run(world.queue, options, progress).pipe(Effect.provide(world.layer))
        )
        yield* Console.error(`rehearsal: the index now holds ${yield* world.index.count} documents`)
        return result
      })
  )
