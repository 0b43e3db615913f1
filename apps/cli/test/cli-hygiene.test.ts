/**
 * The CLI tried as a new user would, in child processes with stdout and stderr as pipes and
 * `NO_COLOR` unset (so colour would appear if anything forced it on a non-terminal):
 * - bad arguments, to every command: exit 2, stdout empty, exactly one plain line on stderr that
 *   names the full command — no stack trace, no serialized error, no ANSI code;
 * - `--help` of every command: a usage line naming the full command, every option's default (or
 *   that it is required), and for the recovery commands their exit codes;
 * - the recovery commands on `--backend memory` (their rehearsals): the summary, `--json`, exit codes.
 */
import { describe, expect, it } from "@effect/vitest"
import { run } from "./support/cliProcess.js"

/** The environment a user's shell would give: no NO_COLOR, no FORCE_COLOR. */
const plainEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  delete env.NO_COLOR
  delete env.FORCE_COLOR
  return env
}

const cli = (args: ReadonlyArray<string>) => run(args, { env: plainEnv(), timeoutMillis: 60_000 })

describe("bad arguments: one plain line, exit 2", () => {
  const cases: ReadonlyArray<{ readonly args: ReadonlyArray<string>; readonly line: string | RegExp }> = [
    {
      args: ["simulate"],
      line: /^spillway simulate: say what to run: --scenario <name> \(one of steady, .*index-lost\), --report <file> for every scenario, or --compare <seed>; spillway simulate --help lists the options$/
    },
    {
      args: ["simulate", "--scenario", "nope"],
      line: 'spillway simulate: --scenario "nope" is not one of steady, kinesis-throttling, kinesis-outage, poison-records, opensearch-rejections, black-friday, backup-outage, index-lost, clickstream-peak; spillway simulate --help lists the options'
    },
    {
      args: ["simulate", "--scenario", "steady", "--records", "0"],
      line: 'spillway simulate: --records must be 1–1,000,000, got "0"; spillway simulate --help lists the options'
    },
    {
      args: ["simulate", "--records", "many"],
      line: 'spillway simulate: --records "many" is not a whole number; spillway simulate --help lists the options'
    },
    { args: ["nope"], line: 'spillway: there is no command "nope"; spillway --help lists the options' },
    {
      args: ["dev", "--port", "99999"],
      line: 'spillway dev: --port must be 0–65535, got "99999"; spillway dev --help lists the options'
    },
    {
      args: ["restore"],
      line: "spillway restore: --backend is required; spillway restore --help lists the options"
    },
    {
      args: ["reprocess-failures", "--backend", "dynamo"],
      line: 'spillway reprocess-failures: --backend "dynamo" is not one of memory, emulators, aws; spillway reprocess-failures --help lists the options'
    },
    {
      args: ["reprocess-failures", "--backend", "memory", "--queue", "x"],
      line: /^spillway reprocess-failures: there is no option --queue( \(did you mean .*\?\))?; spillway reprocess-failures --help lists the options$/
    },
    {
      args: ["replay", "--backend", "memory", "--to", "2026-11-24T10:00:00Z"],
      line: "spillway replay: --from is required; spillway replay --help lists the options"
    },
    {
      args: ["replay", "--backend", "memory", "--from", "yesterday", "--to", "2026-11-24T10:00:00Z"],
      line: 'spillway replay: --from "yesterday" is not valid: expected an ISO-8601 time with a zone, such as 2026-11-24T10:00:00Z, or epoch milliseconds; spillway replay --help lists the options'
    },
    {
      args: [
        "replay",
        "--backend",
        "memory",
        "--from",
        "2026-11-24T10:00:00",
        "--to",
        "2026-11-24T11:00:00Z"
      ],
      line: /^spillway replay: --from "2026-11-24T10:00:00" is not valid: expected an ISO-8601 time with a zone/
    },
    {
      args: ["replay", "--backend", "memory", "--from", "1795514400", "--to", "2026-11-24T11:00:00Z"],
      line: /^spillway replay: --from "1795514400" is not valid: .*looks like epoch seconds: multiply it by 1000/
    },
    {
      args: ["restore", "--backend", "memory", "--snapshot", "a", "--before", "2026-11-24T10:00:00Z"],
      line: "spillway restore: --snapshot and --before both choose the snapshot: give one of them"
    },
    {
      args: ["restore", "--backend", "memory", "--lookback", "-5", "--before", "2026-11-24T10:00:00Z"],
      line: 'spillway restore: --lookback must be 0–1440 minutes, got "-5"; spillway restore --help lists the options'
    }
  ]
  for (const { args, line } of cases) {
    it(`spillway ${args.join(" ")}`, async () => {
      const { code, stdout, stderr } = await cli(args)
      expect(code, stderr).toBe(2)
      expect(stdout).toBe("")
      const lines = stderr.split("\n").filter((l) => l !== "")
      expect(lines, stderr).toHaveLength(1)
      if (typeof line === "string") expect(lines[0]).toBe(line)
      else expect(lines[0]).toMatch(line)
      expect(stderr).not.toContain("\x1b[")
      expect(stderr).not.toContain('"_tag"')
      expect(stderr).not.toMatch(/\bat .*\.ts:\d+/)
    })
  }
})

describe("--help", () => {
  for (const command of ["dev", "simulate", "reprocess-failures", "replay", "restore"]) {
    it(`spillway ${command} --help: the full command, every option's default, no colour in a pipe`, async () => {
      const { code, stdout } = await cli([command, "--help"])
      expect(code).toBe(0)
      expect(stdout).not.toContain("\x1b[")
      expect(stdout).toMatch(new RegExp(`^USAGE\\n {2}spillway ${command} \\[flags\\]$`, "m"))
      const flags = stdout.slice(stdout.indexOf("\nFLAGS\n") + 7, stdout.indexOf("\nGLOBAL FLAGS\n"))
      const rows = flags.split("\n").filter((row) => row.startsWith("  --"))
      expect(rows.length).toBeGreaterThan(2)
      for (const row of rows) expect(row).toMatch(/\((default: [^)]+|[^)]*required[^)]*)\)/)
      if (command !== "dev" && command !== "simulate") {
        expect(stdout).toContain("Exit codes: 0 done; 1 partial")
        expect(stdout).toContain("2 bad input — nothing was done")
      }
    })
  }

  it("spillway --help lists every command and the exit codes", async () => {
    const { code, stdout } = await cli(["--help"])
    expect(code).toBe(0)
    for (const command of ["dev", "simulate", "reprocess-failures", "replay", "restore"]) {
      expect(stdout).toMatch(new RegExp(`^ {2}${command} `, "m"))
    }
    expect(stdout).toContain("Exit codes: 0 done, 1 something is left (listed), 2 bad input (nothing done).")
  })
})

describe("the recovery commands on --backend memory (rehearsals)", () => {
  it("reprocess-failures: reprocesses what the stream still holds, lists what retention took, exit 1", async () => {
    const { code, stdout, stderr } = await cli(["reprocess-failures", "--backend", "memory", "--json"])
    expect(code, stderr).toBe(1)
    expect(stderr).toMatch(/^rehearsal \(memory, simulated time\): 600 records sent/m)
    const result = JSON.parse(stdout)
    expect(result.reprocessed.length).toBeGreaterThan(0)
    expect(result.kept.length).toBeGreaterThan(0)
    expect(result.kept.every((k: { lostToRetention: boolean }) => k.lostToRetention)).toBe(true)
    expect(result.left).toBe(result.kept.length)
    expect(stderr).toContain("rehearsal: the index now holds")
    const text = await cli(["reprocess-failures", "--backend", "memory"])
    expect(text.stdout).toMatch(
      /^ {2}LOST to retention: \d+ ranges?, [\d,]+ records; the stream no longer holds them/m
    )
    expect(text.stdout).toMatch(/^partial \(exit 1\): \d+ messages? left, \d+ ranges? lost to retention$/m)
    expect(text.stdout + text.stderr).not.toContain("\x1b[")
  })

  it("replay: the dry run counts the ids the index lacks; the replay brings them in", async () => {
    const start = Math.floor((Date.now() - 3 * 3_600_000) / 3_600_000) * 3_600_000
    const window = [
      "--from",
      new Date(start + 3_600_000).toISOString(),
      "--to",
      new Date(start + 7_199_000).toISOString()
    ]
    const dry = await cli(["replay", "--backend", "memory", ...window, "--dry-run", "--json"])
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({ records: 1200, distinctIds: 1200, missingFromIndex: 1200 })
    const replayed = await cli(["replay", "--backend", "memory", ...window])
    expect(replayed.code, replayed.stderr).toBe(0)
    expect(replayed.stdout).toContain("  put        1,200 by this run, 1,200 by every run of this window")
    expect(replayed.stderr).toContain("rehearsal: the index now holds 1,200 documents")
  })

  it("restore: lists the snapshots, refuses over the live index without --replace, restores with it", async () => {
    const listed = await cli(["restore", "--backend", "memory"])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toMatch(/^restore \(memory\): 2 snapshots in the in-memory index, oldest first:$/m)
    const lostAt = listed.stderr.match(/Try --before (\S+)\./)?.[1]
    expect(lostAt).toBeDefined()
    const refused = await cli(["restore", "--backend", "memory", "--before", lostAt!])
    expect(refused.code).toBe(2)
    expect(refused.stderr.trim().split("\n").at(-1)).toMatch(
      /^spillway restore: 1 index of snapshot snapshot-\S+-2 exists \(telemetry\): restoring deletes it first\. Give --replace/
    )
    const restored = await cli(["restore", "--backend", "memory", "--before", lostAt!, "--replace", "--json"])
    expect(restored.code, restored.stderr).toBe(0)
    expect(JSON.parse(restored.stdout)).toMatchObject({
      exitCode: 0,
      snapshotStep: "restored",
      verification: { missing: 0 },
      archive: { failed: [], unreadable: [] }
    })
  })
})
