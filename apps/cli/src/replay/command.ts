/**
 * `spillway replay`: the command line of `ReplayWindow` — its options, the backend it works on,
 * and the exit code.
 */
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Archive, DedupCache, DocumentSink, RecordStream } from "@spillway/core"
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Connection from "../backends/Connection.js"
import * as Instant from "../backends/Instant.js"
import * as OpenSearchIndex from "../backends/OpenSearchIndex.js"
import * as Output from "../backends/Output.js"
import * as RecoveryCommand from "../backends/RecoveryCommand.js"
import * as Rehearsal from "../backends/Rehearsal.js"
import * as SinkAsStream from "../backends/SinkAsStream.js"
import { Refused } from "../Refusal.js"
import * as Text from "../Text.js"
import * as Checkpoint from "./Checkpoint.js"
import * as ReplayWindow from "./ReplayWindow.js"

const command = ReplayWindow.command

const from = Instant.flag(
  "from",
  `Start of the window (required): ${Instant.describe}. Every archive object filed under the hours from this one to --to's is replayed`
)
const to = Instant.flag("to", `End of the window (required), at or after --from: ${Instant.describe}`)

const dryRun = RecoveryCommand.switchFlag(
  "dry-run",
  "Read the window and count its records, and how many of their ids the index does not hold; put nothing (needs $OPENSEARCH_ENDPOINT) (default: off)"
)

const rate = RecoveryCommand.intFlag(
  "rate",
  "records/s",
  (n) => n >= 1 && n <= 1_000_000,
  "--rate must be 1–1000000 records per second"
).pipe(
  Flag.optional,
  Flag.withDescription(
    "Put at most this many records per second, leaving the shards room for live traffic (default: as fast as the shards take, backing off when they refuse)"
  )
)

const toSink = RecoveryCommand.switchFlag(
  "to-sink",
  "Write straight into the index through the processor's stage instead of putting into the stream (needs $OPENSEARCH_ENDPOINT) (default: off, into the stream)"
)

const checkpoint = Flag.String("checkpoint").pipe(
  Flag.withMetavar("file"),
  Flag.optional,
  Flag.withDescription(
    "Where the replay keeps its place, to resume after an interruption by running the same command again (default: spillway-replay-<from>-<to>.json in the current directory; memory: a temporary file)"
  )
)

const restart = RecoveryCommand.switchFlag(
  "restart",
  "Ignore the checkpoint file and replay the window from its start (default: off)"
)

const skipUnreadable = RecoveryCommand.switchFlag(
  "skip-unreadable",
  "Replay the rest of the window when an archive object cannot be read, listing it (exit 1), instead of refusing before putting anything (default: off)"
)

export const replayCommand = Command.make(
  "replay",
  RecoveryCommand.flags({ from, to, dryRun, rate, toSink, checkpoint, restart, skipUnreadable }, [
    "stream",
    "archive",
    "index"
  ]),
  (flags) =>
    RecoveryCommand.run({
      command,
      name: "replay",
      flags,
      whatIsKept: "its position is saved in the checkpoint file: run the same command to resume",
      options: Effect.gen(function* () {
        if (flags.from > flags.to) {
          return yield* new Refused({
            command,
            message: `--from ${Text.instant(flags.from)} is after --to ${Text.instant(flags.to)}: the window runs from --from to --to`
          })
        }
        const window: Archive.Range = { from: flags.from, to: flags.to }
        if (Archive.hourPrefixes(window)._tag === "Failure") {
          return yield* new Refused({
            command,
            message: `the window spans more than ${Text.count(Archive.maxListedHours, "hour")}: replay it a year at a time at most`
          })
        }
        const checkpointFile = Option.getOrElse(flags.checkpoint, () =>
          flags.backend === "memory"
            ? join(tmpdir(), `${process.pid}-${Checkpoint.defaultPath(window)}`)
            : Checkpoint.defaultPath(window)
        )
        return {
          checkpointFile,
          options: (target: string): ReplayWindow.Options => ({
            window,
            dryRun: flags.dryRun,
            ratePerSecond: Option.getOrUndefined(flags.rate),
            target,
            checkpointFile,
            restart: flags.restart,
            skipUnreadable: flags.skipUnreadable
          })
        }
      }),
      rehearsal: ({ checkpointFile, options }) =>
        rehearsal(flags.toSink, options).pipe(
          // A rehearsal's checkpoint is of no use once its process ends.
          Effect.ensuring(
            Option.isSome(flags.checkpoint)
              ? Effect.void
              : Effect.sync(() => rmSync(checkpointFile, { force: true }))
          )
        ),
      onTarget: (t, { options }, progress) =>
        Effect.gen(function* () {
          const archive = yield* Connection.archive(t)
          const index =
            flags.dryRun || flags.toSink
              ? OpenSearchIndex.make(yield* Connection.openSearchClient(t), yield* Connection.alias(t))
              : undefined
          const target = flags.dryRun
            ? undefined
            : flags.toSink
              ? yield* Effect.flatMap(Connection.sink(t), (sink) =>
                  Effect.flatMap(Connection.alias(t), (alias) =>
                    SinkAsStream.make(alias).pipe(
                      Effect.provideService(DocumentSink.DocumentSink, sink),
                      Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 1_000_000 }))
                    )
                  )
                )
              : {
                  stream: yield* Connection.stream(t).pipe(Effect.mapError(refuseStream)),
                  rejected: undefined
                }
          const name =
            target === undefined
              ? "nothing (dry run)"
              : flags.toSink
                ? `sink:${index?.alias ?? ""}`
                : `stream:${target.stream.streamArn}`
          return yield* ReplayWindow.run(
            options(name),
            { index, ...(target?.rejected === undefined ? {} : { rejected: target.rejected }) },
            progress
          ).pipe(
            Effect.provideService(Archive.Archive, archive),
            Effect.provideService(RecordStream.RecordStream, target?.stream ?? unusedStream)
          )
        }),
      format: ReplayWindow.format,
      toJson: (outcome, backend) => ({
        command: "replay",
        backend,
        exitCode: ReplayWindow.exitCode(outcome),
        ...outcome
      }),
      exitCode: ReplayWindow.exitCode
    })
).pipe(
  Command.withDescription(
    `Replay the backup archive for a window into the stream (the backup-replayer function's stage), or straight into the index with --to-sink: as the collector wrote each record, at a rate the shards accept, keeping its place in a checkpoint file so that an interrupted replay resumes where it stopped. ${Output.exitCodesHelp}`
  ),
  Command.withExamples([
    {
      command:
        "spillway replay --backend aws --from 2026-11-24T10:00:00Z --to 2026-11-24T11:59:59Z --dry-run",
      description: "How many records the window holds, and how many of their ids the index lacks"
    },
    {
      command:
        "spillway replay --backend aws --from 2026-11-24T10:00:00Z --to 2026-11-24T11:59:59Z --rate 500",
      description: "Replay it; run the same command again to resume after an interruption"
    }
  ])
)

/** The stream is not used by a dry run or a replay into the sink. */
const unusedStream = RecordStream.RecordStream.of({
  streamArn: "none",
  putRecords: () => Effect.die(new Error("the stream is not used here")),
  readRange: () => Effect.die(new Error("the stream is not used here"))
})

const refuseStream = (error: Refused | RecordStream.RecordStreamError) =>
  error instanceof Refused || error.isRetryable ? error : new Refused({ command, message: error.message })

const rehearsal = (intoSink: boolean, options: (target: string) => ReplayWindow.Options) =>
  RecoveryCommand.rehearse("replay", 0, Rehearsal.replay, (world, progress) =>
    Effect.gen(function* () {
      const sinkStream = intoSink
        ? yield* SinkAsStream.make(world.index.alias).pipe(
            Effect.provideService(DocumentSink.DocumentSink, world.pipeline.index.sink),
            Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 100_000 }))
          )
        : undefined
      const outcome = yield* Rehearsal.whileTimePasses(
        ReplayWindow.run(
          options(intoSink ? `sink:${world.index.alias}` : `stream:${world.pipeline.stream.streamArn}`),
          { index: world.index, ...(sinkStream === undefined ? {} : { rejected: sinkStream.rejected }) },
          progress
        ).pipe(
          Effect.provideService(Archive.Archive, world.pipeline.archive),
          Effect.provideService(RecordStream.RecordStream, sinkStream?.stream ?? world.pipeline.stream)
        )
      )
      yield* Rehearsal.settled(world.pipeline)
      yield* Console.error(
        `rehearsal: the index now holds ${Text.count(yield* world.pipeline.index.count, "document")}`
      )
      return outcome
    })
  )
