/**
 * `spillway simulate`: every scenario loses nothing, runs are reproducible from their seed, the
 * `--json` output keeps its contract, and each scenario shows the behaviour it is named for.
 *
 * Each scenario runs once (3,000 records) and its report is shared by the tests that read it.
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Scenario, Simulation, type Report as SimulationReport } from "@spillway/simulator"
import { Console, Effect, Layer, Result, Schema } from "effect"
import { Command } from "effect/cli"
import { TestClock } from "effect/testing"
import * as CliOutput from "../src/cliOutput.js"
import { simulateCommand } from "../src/simulate/command.js"
import { renderTable } from "../src/simulate/reportTable.js"
import { captureConsole } from "./harness.js"

const { runScenario, SimulationError } = Simulation
const { scenarioNames } = Scenario
type Report = SimulationReport.Report
type ScenarioName = Scenario.ScenarioName

const options = { seed: 1, records: 3000 }

const reports = new Map<ScenarioName, Promise<Report>>()
const reportOf = (name: ScenarioName): Effect.Effect<Report> =>
  Effect.promise(() => {
    let report = reports.get(name)
    if (report === undefined) {
      report = Effect.runPromise(runScenario(name, options))
      reports.set(name, report)
    }
    return report
  })

const sum = (report: Report, key: "accepted" | "indexed" | "rejected") =>
  report.timeline.reduce((n, second) => n + second[key], 0)

/** The `--json` contract, written out on its own rather than borrowed from the engine's schema. */
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const NonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
const JsonReport = Schema.fromJsonString(
  Schema.Struct({
    scenario: Schema.Literals(scenarioNames),
    seed: Schema.Int,
    records: Schema.Struct({
      sent: Count,
      accepted: Count,
      rejected: Count,
      indexed: Count,
      duplicatesSkipped: Count,
      onFailure: Count,
      lost: Count
    }),
    retries: Count,
    delayMs: Schema.Struct({
      avg: NonNegative,
      p50: NonNegative,
      p99: NonNegative,
      max: NonNegative
    }),
    simulatedSeconds: Count,
    fallbackParked: Count,
    timeline: Schema.Array(
      Schema.Struct({
        second: Count,
        sent: Count,
        indexed: Count,
        delayAvgMs: NonNegative,
        delayP99Ms: NonNegative,
        fallbackDepth: Count
      })
    )
  })
)

// Mounted under a root command as in `main.ts`, with its output presenter, so arguments read and
// refusals print as they do on the command line.
const cli = Command.runWith(Command.make("spillway").pipe(Command.withSubcommands([simulateCommand])), {
  version: "test"
})
const runCli = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { console, stdout, stderr } = captureConsole()
    const exit = yield* cli(args).pipe(
      Effect.provideService(Console.Console, console),
      Effect.provide(Layer.merge(NodeServices.layer, CliOutput.presenter)),
      Effect.exit
    )
    return { exit, stdout: stdout.join("\n"), stderr: stderr.join("\n") }
  })

describe("every scenario", () => {
  for (const name of scenarioNames) {
    it.effect(
      `${name}: every accepted record is indexed or reported as poison; nothing is lost`,
      () =>
        Effect.gen(function* () {
          const report = yield* reportOf(name)
          const r = report.records
          expect(r.lost).toBe(0)
          expect(report.integrity).toEqual({
            writtenMoreThanOnce: 0,
            invalidAccepted: 0,
            validRejected: 0,
            rejectedWithoutReason: 0,
            unexpectedDocuments: 0,
            unexplainedDelays: 0,
            deadLettered: 0,
            missingFromBackup: 0,
            lostIds: []
          })
          // The backup, read back from the archive, holds every accepted record.
          expect(report.backup.archived).toBe(r.accepted)
          expect(report.backup.objects).toBeGreaterThan(1)
          expect(r.sent).toBe(options.records)
          expect(r.accepted + r.rejected).toBe(r.sent)
          expect(r.indexed + r.onFailure + r.lost).toBe(r.accepted)
          // The producer's mix really happened: about 1% invalid, and some client duplicates,
          // each of them skipped by the processor rather than written twice.
          expect(r.rejected).toBeGreaterThan(options.records * 0.003)
          expect(report.duplicatesSent).toBeGreaterThan(0)
          expect(r.duplicatesSkipped).toBeGreaterThanOrEqual(report.duplicatesSent)
          // The timeline accounts for every record and every write.
          expect(sum(report, "accepted")).toBe(r.accepted)
          expect(sum(report, "rejected")).toBe(r.rejected)
          expect(sum(report, "indexed")).toBe(r.indexed)
          expect(report.timeline).toHaveLength(report.simulatedSeconds)
          expect(report.delayMs.p50).toBeLessThanOrEqual(report.delayMs.p99)
          expect(report.delayMs.p99).toBeLessThanOrEqual(report.delayMs.max)
          expect(report.delayMs.p50).toBeGreaterThan(0)
        }),
      60_000
    )
  }
})

describe("reproducibility", () => {
  it.effect(
    "the same seed gives the same report, byte for byte",
    () =>
      Effect.gen(function* () {
        const first = yield* reportOf("kinesis-throttling")
        const again = yield* runScenario("kinesis-throttling", options)
        expect(JSON.stringify(again)).toBe(JSON.stringify(first))
      }),
    60_000
  )

  it.effect(
    "VirtualTime gives the same reports as Effect's stock TestClock, byte for byte",
    () =>
      Effect.gen(function* () {
        // The scenarios with the most fibers and sleeps: outages, retries, a restore.
        for (const name of ["kinesis-outage", "index-lost"] as const) {
          const small = { seed: 3, records: 1500 }
          const fast = yield* runScenario(name, small)
          const stock = yield* runScenario(name, small, Effect.provide(TestClock.layer()))
          expect(JSON.stringify(fast), name).toBe(JSON.stringify(stock))
        }
      }),
    120_000
  )

  it.effect(
    "a different seed gives a different run",
    () =>
      Effect.gen(function* () {
        const first = yield* reportOf("kinesis-throttling")
        const other = yield* runScenario("kinesis-throttling", { ...options, seed: 2 })
        expect(other.seed).toBe(2)
        expect(JSON.stringify({ ...other, seed: 1 })).not.toBe(JSON.stringify(first))
        expect(other.records.lost).toBe(0)
      }),
    60_000
  )
})

describe("what each scenario exercises", () => {
  it.effect(
    "poison-records: the poison records reach on-failure and the replay report, and none is lost",
    () =>
      Effect.gen(function* () {
        const report = yield* reportOf("poison-records")
        expect(report.records.onFailure).toBeGreaterThan(0)
        expect(report.records.lost).toBe(0)
        expect(report.faults.processorBatchesDiscarded).toBeGreaterThan(0)
        expect(report.faults.indexParseErrors).toBeGreaterThan(0)
        expect(report.replay.failed).toBeGreaterThanOrEqual(report.records.onFailure)
        // The other records of the discarded batches were written already: the replay skips them.
        expect(report.replay.skipped).toBeGreaterThan(0)
        expect(report.replay.written).toBe(0)
      })
  )

  it.effect("scenarios without poison send nothing to on-failure", () =>
    Effect.gen(function* () {
      for (const name of scenarioNames.filter((n) => n !== "poison-records")) {
        expect((yield* reportOf(name)).records.onFailure, name).toBe(0)
      }
    })
  )

  it.effect("throttling, outage and black-friday: records went through the fallback queue", () =>
    Effect.gen(function* () {
      for (const name of ["kinesis-throttling", "kinesis-outage", "black-friday"] as const) {
        const report = yield* reportOf(name)
        expect(report.fallbackParked, name).toBeGreaterThan(0)
        expect(report.fallbackMaxDepth, name).toBeGreaterThan(0)
        expect(report.timeline.at(-1)?.fallbackDepth, name).toBe(0)
      }
      expect((yield* reportOf("steady")).fallbackParked).toBe(0)
      expect((yield* reportOf("kinesis-throttling")).faults.streamInjectedEntryFailures).toBeGreaterThan(0)
      expect((yield* reportOf("kinesis-outage")).faults.streamRejectedCalls).toBeGreaterThan(0)
    })
  )

  it.effect("black-friday: the spike meets the per-shard limit and p99 delay is above steady's", () =>
    Effect.gen(function* () {
      const spike = yield* reportOf("black-friday")
      const steady = yield* reportOf("steady")
      expect(spike.faults.streamThrottledEntries).toBeGreaterThan(0)
      expect(steady.faults.streamThrottledEntries).toBe(0)
      expect(spike.delayMs.p99).toBeGreaterThan(steady.delayMs.p99)
    })
  )

  it.effect("opensearch-rejections: 429s are retried until every record is indexed", () =>
    Effect.gen(function* () {
      const report = yield* reportOf("opensearch-rejections")
      expect(report.faults.indexRejections).toBeGreaterThan(0)
      expect(report.retriesBy.sinkWrites).toBeGreaterThan(0)
      expect(report.retries).toBeGreaterThanOrEqual(report.retriesBy.sinkWrites)
      expect(report.records.indexed).toBe(report.records.accepted)
      expect((yield* reportOf("steady")).retries).toBe(0)
    })
  )

  it.effect(
    "backup-outage: deliveries are refused and retried, the archive ends complete, the index does not notice",
    () =>
      Effect.gen(function* () {
        const outage = yield* reportOf("backup-outage")
        const steady = yield* reportOf("steady")
        expect(outage.backup.deliveryErrors).toBeGreaterThan(0)
        expect(steady.backup.deliveryErrors).toBe(0)
        expect(outage.integrity.missingFromBackup).toBe(0)
        expect(outage.backup.archived).toBe(outage.records.accepted)
        // The processor never waits on the backup: the delay to the index is steady's.
        expect(outage.delayMs.p99).toBeLessThanOrEqual(steady.delayMs.p99 + 500)
        expect(outage.retries).toBe(0)
      })
  )

  it.effect("index-lost: the loss is real, and the snapshot plus the archive bring every record back", () =>
    Effect.gen(function* () {
      const report = yield* reportOf("index-lost")
      const recovery = report.recovery
      expect(recovery).toBeDefined()
      if (recovery === undefined) return
      // The deletion cost the index records it had written.
      expect(recovery.missingBeforeRestore).toBeGreaterThan(report.records.accepted * 0.3)
      // Three automated snapshots, one after the loss; the operator restored the last one before it.
      expect(recovery.snapshotsTaken).toBe(3)
      expect(recovery.snapshot).toMatch(/-2$/)
      expect(recovery.snapshotDocuments).toBeGreaterThan(0)
      // Only what came after that snapshot (taken at 40% of the traffic) was written again.
      expect(recovery.rewritten).toBeGreaterThan(report.records.accepted * 0.4)
      expect(recovery.rewritten).toBeLessThan(report.records.accepted * 0.8)
      expect(recovery.failed).toBe(0)
      expect(recovery.unreadableObjects).toBe(0)
      expect(report.records.lost).toBe(0)
      expect(report.records.indexed).toBe(report.records.accepted)
      // The restore's writes are not the pipeline's: no document counts as written twice.
      expect(report.integrity.writtenMoreThanOnce).toBe(0)
      for (const name of scenarioNames.filter((n) => n !== "index-lost")) {
        expect((yield* reportOf(name)).recovery, name).toBeUndefined()
      }
    })
  )

  it.effect("kinesis-outage: the delay shows the outage, steady's does not", () =>
    Effect.gen(function* () {
      const outage = yield* reportOf("kinesis-outage")
      const steady = yield* reportOf("steady")
      // Records parked when the stream went down wait the outage out (25–60% of the traffic);
      // since the redriver holds them back seconds, not the queue's 30 s, not much longer.
      expect(outage.delayMs.max).toBeGreaterThan(0.35 * outage.trafficSeconds * 1000)
      expect(steady.delayMs.max).toBeLessThan(2_000)
    })
  )
})

describe("the command", () => {
  it.effect(
    "--json prints exactly one JSON object with the report's keys, and it is the engine's report",
    () =>
      Effect.gen(function* () {
        const { exit, stdout } = yield* runCli([
          "simulate",
          "--scenario",
          "steady",
          "--seed",
          String(options.seed),
          "--records",
          String(options.records),
          "--json"
        ])
        expect(exit._tag).toBe("Success")
        expect(stdout.split("\n")).toHaveLength(1)
        const decoded = Schema.decodeUnknownResult(JsonReport)(stdout)
        expect(Result.isSuccess(decoded) ? "decoded" : String(decoded.failure)).toBe("decoded")
        expect(stdout).toBe(JSON.stringify(yield* reportOf("steady")))
      }),
    60_000
  )

  it.effect(
    "without --json prints the table",
    () =>
      Effect.gen(function* () {
        const { exit, stdout } = yield* runCli([
          "simulate",
          "--scenario",
          "poison-records",
          "--records",
          "3000"
        ])
        expect(exit._tag).toBe("Success")
        expect(stdout).toBe(renderTable(yield* reportOf("poison-records")))
        expect(stdout).toMatch(/^ {2}lost +0$/m)
        expect(stdout).toMatch(/^ {2}on-failure \(poison\) +[1-9]/m)
      }),
    60_000
  )

  it.effect(
    "the table of index-lost, seed 3, 2,000 records: the same bytes as the pinned run",
    () =>
      Effect.gen(function* () {
        // Pinned before the simulator left the CLI (`spillway simulate --scenario index-lost --seed 3
        // --records 2000`); its JSON is pinned in packages/simulator/test/fixtures.
        const { exit, stdout } = yield* runCli([
          "simulate",
          "--scenario",
          "index-lost",
          "--seed",
          "3",
          "--records",
          "2000"
        ])
        expect(exit._tag).toBe("Success")
        expect(`${stdout}\n`).toBe(
          readFileSync(new URL("fixtures/index-lost-seed-3-records-2000.txt", import.meta.url), "utf8")
        )
      }),
    60_000
  )

  it.effect("refuses an unknown scenario and a record count out of range", () =>
    Effect.gen(function* () {
      const unknown = yield* runCli(["simulate", "--scenario", "meteor-strike", "--json"])
      expect(unknown.exit._tag).toBe("Failure")
      expect(unknown.stdout).toBe("")
      const tooFew = yield* runScenario("steady", { seed: 1, records: 0 }).pipe(Effect.flip)
      expect(tooFew).toBeInstanceOf(SimulationError)
      expect(tooFew.reason).toBe("InvalidOptions")
      const notAScenario = yield* runScenario("meteor-strike", { seed: 1, records: 10 }).pipe(Effect.flip)
      expect(notAScenario.message).toContain("black-friday")
    })
  )
})

describe("bin/spillway.js", () => {
  it.effect(
    "prints one JSON line on stdout, the same bytes as in process",
    () =>
      Effect.gen(function* () {
        const bin = fileURLToPath(new URL("../bin/spillway.js", import.meta.url))
        const args = ["simulate", "--scenario", "black-friday", "--records", "3000", "--json"]
        const { stdout } = yield* Effect.promise(() =>
          promisify(execFile)(process.execPath, [bin, ...args], { maxBuffer: 16 * 1024 * 1024 })
        )
        expect(stdout).toBe(`${JSON.stringify(yield* reportOf("black-friday"))}\n`)
      }),
    60_000
  )
})
