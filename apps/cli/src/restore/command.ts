/**
 * `spillway restore`: the command line of `RestoreIndex` — its options, the backend it works on,
 * and the exit code.
 */
import { Archive, DedupCache, DocumentSink } from "@spillway/core"
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Connection from "../backends/Connection.js"
import * as Instant from "../backends/Instant.js"
import * as OpenSearchIndex from "../backends/OpenSearchIndex.js"
import * as Output from "../backends/Output.js"
import * as RecoveryCommand from "../backends/RecoveryCommand.js"
import * as Rehearsal from "../backends/Rehearsal.js"
import * as Snapshots from "../backends/Snapshots.js"
import { Refused } from "../Refusal.js"
import * as RestoreIndex from "./RestoreIndex.js"

const command = RestoreIndex.command

const snapshot = Flag.String("snapshot").pipe(
  Flag.withMetavar("name"),
  Flag.optional,
  Flag.withDescription(
    "Restore this snapshot (default: none; without --snapshot or --before, the snapshots are listed)"
  )
)

const before = Instant.flag(
  "before",
  `The time of the loss: restore the last successful snapshot that started before it (${Instant.describe}) (default: none)`
).pipe(Flag.optional)

const replace = RecoveryCommand.switchFlag(
  "replace",
  "Delete the open indices the snapshot would restore over (the live pipeline recreates them after a loss); what they hold since the snapshot is written again from the archive. Without it, the restore refuses (default: off)"
)

const lookback = RecoveryCommand.intFlag(
  "lookback",
  "minutes",
  (n) => n >= 0 && n <= 24 * 60,
  "--lookback must be 0–1440 minutes"
).pipe(
  Flag.withDefault(60),
  Flag.withDescription(
    "How far before the snapshot's start the archive is written again: the longest processing lag to allow for plus Firehose's buffering interval (at most 15 minutes) (default: 60)"
  )
)

const skipUnreadable = RecoveryCommand.switchFlag(
  "skip-unreadable",
  "Restore without the records of archive objects that cannot be read, listing them (exit 1), instead of refusing before anything changes (default: off)"
)

export const restoreCommand = Command.make(
  "restore",
  RecoveryCommand.flags({ snapshot, before, replace, lookback, skipUnreadable }, [
    "snapshots",
    "archive",
    "index"
  ]),
  (flags) =>
    RecoveryCommand.run({
      command,
      name: "restore",
      flags,
      whatIsKept:
        "run the same command again: a snapshot it already restored is not restored again, and the archive step starts over",
      options: Effect.gen(function* () {
        if (Option.isSome(flags.snapshot) && Option.isSome(flags.before)) {
          return yield* new Refused({
            command,
            message: "--snapshot and --before both choose the snapshot: give one of them"
          })
        }
        const choice: RestoreIndex.Choice = Option.isSome(flags.snapshot)
          ? { _tag: "Named", name: flags.snapshot.value }
          : Option.isSome(flags.before)
            ? { _tag: "Before", time: flags.before.value }
            : { _tag: "List" }
        if (choice._tag === "List" && flags.replace) {
          return yield* new Refused({ command, message: "--replace goes with --snapshot or --before" })
        }
        const options: RestoreIndex.Options = {
          choice,
          replace: flags.replace,
          lookbackMillis: flags.lookback * 60_000,
          skipUnreadable: flags.skipUnreadable
        }
        return options
      }),
      rehearsal,
      onTarget: (t, options, progress) =>
        Effect.gen(function* () {
          const client = yield* Connection.openSearchClient(t)
          const alias = yield* Connection.alias(t)
          const repository = t.env.SNAPSHOT_REPOSITORY ?? "cs-automated"
          const world: RestoreIndex.World = {
            store: Snapshots.openSearch(client, repository, alias),
            index: OpenSearchIndex.make(client, alias)
          }
          if (options.choice._tag === "List") {
            return yield* RestoreIndex.run(world, options, progress).pipe(
              Effect.provideService(Archive.Archive, unused.archive),
              Effect.provideService(DocumentSink.DocumentSink, unused.sink),
              Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 10 }))
            )
          }
          const archive = yield* Connection.archive(t)
          const sink = yield* Connection.sink(t)
          return yield* RestoreIndex.run(world, options, progress).pipe(
            Effect.provideService(Archive.Archive, archive),
            Effect.provideService(DocumentSink.DocumentSink, sink),
            Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 1_000_000 }))
          )
        }),
      format: RestoreIndex.format,
      toJson: RestoreIndex.toJson,
      exitCode: RestoreIndex.exitCode
    })
).pipe(
  Command.withDescription(
    `Restore the index after a loss: list the snapshots, restore the one chosen (--snapshot, or the last before --before; refusing over existing indices unless --replace), write what came after it from the backup archive, and verify by counting ids per hour against the archive. A second run changes nothing. ${Output.exitCodesHelp}`
  ),
  Command.withExamples([
    { command: "spillway restore --backend aws", description: "List the snapshots of cs-automated" },
    {
      command: "spillway restore --backend aws --before 2026-11-24T10:40:00Z --replace",
      description: "Restore the last snapshot before the loss, then the archive since"
    }
  ])
)

/** Listing snapshots reads neither the archive nor writes to the sink. */
const unused = {
  archive: Archive.Archive.of({
    bucket: "none",
    write: () => Effect.die(new Error("not used when listing")),
    list: () => Effect.die(new Error("not used when listing")),
    read: () => Effect.die(new Error("not used when listing"))
  }),
  sink: DocumentSink.DocumentSink.of({
    name: "none",
    write: () => Effect.die(new Error("not used when listing"))
  })
}

const rehearsal = (options: RestoreIndex.Options) =>
  RecoveryCommand.rehearse("restore", Rehearsal.restoreSpan, Rehearsal.restore, (world, progress) =>
    Rehearsal.whileTimePasses(
      RestoreIndex.run(world, options, progress).pipe(
        Effect.provideService(Archive.Archive, world.pipeline.archive),
        Effect.provideService(DocumentSink.DocumentSink, world.pipeline.index.sink),
        Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 100_000 }))
      )
    )
  )
