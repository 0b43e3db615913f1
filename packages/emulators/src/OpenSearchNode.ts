/**
 * A real OpenSearch node on this machine, for the tests and for `spillway dev --backend emulators`:
 * the engine itself, not an emulation of it, so bulk item statuses, dynamic mapping, templates,
 * 429s under indexing pressure, 413s and snapshots answer as a domain's do.
 *
 * - `fetch` brings the minimal distribution Maven Central publishes
 *   (`org.opensearch.distribution.integ-test-zip:opensearch`, a zip: server, `bin/`, `config/`,
 *   the netty4 transport; no JDK, no security plugin, so plain HTTP without auth) through Maven
 *   into a cache outside the repository, once per version; later runs start from the cache.
 * - `start` runs a single node on 127.0.0.1 on ports the OS picks, with a small heap, its own
 *   config, data, logs and snapshot folders (`path.repo`) in a temporary folder, and answers when
 *   the cluster is yellow; closing the scope stops the node (SIGTERM to its process group, SIGKILL
 *   after 10 s) and removes the folder.
 *
 * Version: 2.19.6 by default, the newest 2.x, on Java 17 (the machine's default JDK). 2.19 is the
 * newest line of the engine version most Amazon OpenSearch Service domains run, and it needs no
 * second JDK; 3.x needs Java 21 or newer and can be chosen with `SPILLWAY_OPENSEARCH_VERSION`
 * (with `SPILLWAY_OPENSEARCH_JAVA_HOME` pointing at such a JDK when the default is older). 2.x
 * installs a SecurityManager, which Java 24 removed: a 2.x node is never started on Java 24+.
 *
 * OpenSearch refuses to run as root, and no setting overrides that. Run as root (CI), the node runs
 * as the unprivileged system user `spillway-opensearch` (created on first use; another with
 * `SPILLWAY_OPENSEARCH_USER`) through `runuser`, and its folders belong to that user. Run as root,
 * the cache defaults to `/var/cache/spillway` (the user must be able to read it; a root home is
 * not readable by others); otherwise `$XDG_CACHE_HOME/spillway` or `~/.cache/spillway`.
 *
 * Processes are spawned through Effect's `ChildProcessSpawner` (provided on Node by
 * `@effect/platform-node`), which ties the node's process group to the scope.
 */
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect, Option, Schedule, Scope, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { EmulatorError } from "./Emulators.js"

export const defaultVersion = "2.19.6"
const artifact = "org.opensearch.distribution.integ-test-zip:opensearch"
const dependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

export interface Options {
  /** Engine version. @default `SPILLWAY_OPENSEARCH_VERSION`, else "2.19.6" */
  readonly version?: string
  /** A JDK the version runs on. @default `SPILLWAY_OPENSEARCH_JAVA_HOME`, `JAVA_HOME`, or one found under /usr/lib/jvm */
  readonly javaHome?: string
  /** Where distributions are kept between runs. @default `SPILLWAY_CACHE_DIR`, else see the module header */
  readonly cacheDir?: string
  /** `-Xms`/`-Xmx`. @default "512m" */
  readonly heap?: string
  /** More node settings, passed as `-E<key>=<value>` (e.g. `indexing_pressure.memory.limit`). */
  readonly settings?: Readonly<Record<string, string | number | boolean>>
}

export interface Node {
  /** `http://127.0.0.1:<port>`, plain HTTP, no authentication. */
  readonly url: string
  readonly version: string
  /** The node's `path.repo`: an `fs` snapshot repository must have its location inside it. */
  readonly repoPath: string
  /** Milliseconds from spawning the process to a yellow cluster. */
  readonly startMillis: number
  /** The last lines the node logged (for a failure's message). */
  readonly logTail: Effect.Effect<string>
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0

/** Where distributions are cached (see the module header). */
export const cacheDir = (options: Options = {}): string =>
  options.cacheDir ??
  process.env.SPILLWAY_CACHE_DIR ??
  (isRoot()
    ? "/var/cache/spillway"
    : path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "spillway"))

const versionOf = (options: Options) =>
  options.version ?? process.env.SPILLWAY_OPENSEARCH_VERSION ?? defaultVersion

const majorOf = (version: string) => Number.parseInt(version.split(".")[0] ?? "", 10)

/** Java majors a version runs on: 2.x on 11–23 (SecurityManager), 3.x on 21 and newer. */
const javaRange = (version: string): readonly [number, number] =>
  majorOf(version) >= 3 ? [21, Number.POSITIVE_INFINITY] : [11, 23]

/** The JDK's major version, read from its `release` file; undefined when it is not a JDK. */
const javaMajor = async (home: string): Promise<number | undefined> => {
  const release = await fs.readFile(path.join(home, "release"), "utf8").catch(() => undefined)
  const match = release?.match(/^JAVA_VERSION="(?:1\.)?(\d+)/m)
  return match === undefined || match === null ? undefined : Number(match[1])
}

const findJava = (options: Options, version: string): Effect.Effect<string, EmulatorError> =>
  Effect.tryPromise({
    try: async () => {
      const [low, high] = javaRange(version)
      const fits = (major: number | undefined) => major !== undefined && major >= low && major <= high
      const explicit = options.javaHome ?? process.env.SPILLWAY_OPENSEARCH_JAVA_HOME
      if (explicit !== undefined) {
        const major = await javaMajor(explicit)
        if (fits(major)) return explicit
        throw new Error(
          `the JDK at ${explicit} is ${major === undefined ? "not a JDK (no release file)" : `Java ${major}`}; OpenSearch ${version} needs Java ${low}${high === Number.POSITIVE_INFINITY ? " or newer" : `–${high}`}`
        )
      }
      const candidates = [
        ...(process.env.JAVA_HOME === undefined ? [] : [process.env.JAVA_HOME]),
        ...(await fs.readdir("/usr/lib/jvm").catch(() => [] as Array<string>)).map((d) =>
          path.join("/usr/lib/jvm", d)
        )
      ]
      const found: Array<{ readonly home: string; readonly major: number }> = []
      for (const home of candidates) {
        const major = await javaMajor(home)
        if (major !== undefined && fits(major)) found.push({ home, major })
      }
      // The oldest that fits: the Java the version was released against.
      found.sort((a, b) => a.major - b.major)
      if (found[0] !== undefined) return found[0].home
      throw new Error(
        `no JDK for OpenSearch ${version} (it needs Java ${low}${high === Number.POSITIVE_INFINITY ? " or newer" : `–${high}`}): install one (Debian: apt-get install openjdk-17-jdk-headless) or set SPILLWAY_OPENSEARCH_JAVA_HOME`
      )
    },
    catch: (cause) =>
      new EmulatorError({ message: cause instanceof Error ? cause.message : String(cause), cause })
  })

/** Runs a command to its end; fails with its output when it exits non-zero or cannot start. */
const run = (
  what: string,
  command: ChildProcess.Command
): Effect.Effect<string, EmulatorError, ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.scoped(
    Effect.gen(function* () {
      const handle = yield* ChildProcessSpawner.ChildProcessSpawner.use((spawner) => spawner.spawn(command))
      const [output, exitCode] = yield* Effect.all(
        [Stream.mkString(Stream.decodeText(handle.all)), handle.exitCode],
        { concurrency: 2 }
      )
      if (exitCode !== 0) {
        return yield* new EmulatorError({
          message: `${what} exited with ${exitCode}:\n${output.trim().split("\n").slice(-30).join("\n")}`
        })
      }
      return output
    })
  ).pipe(
    Effect.catchTag("PlatformError", (cause) =>
      Effect.fail(new EmulatorError({ message: `${what} could not run: ${cause.message}`, cause }))
    )
  )

/**
 * The distribution's home folder for `version`, fetched through Maven on first use (about 55 MB,
 * kept in Maven's local repository and unpacked into the cache).
 */
export const fetch = Effect.fn("OpenSearchNode.fetch")(function* (options: Options = {}) {
  const version = versionOf(options)
  const cache = cacheDir(options)
  const home = path.join(cache, `opensearch-${version}`)
  if (existsSync(path.join(home, "bin", "opensearch"))) return home
  const staging = `${home}.partial-${process.pid}-${Date.now()}`
  yield* Effect.tryPromise({
    try: () => fs.mkdir(staging, { recursive: true, mode: 0o755 }),
    catch: (cause) =>
      new EmulatorError({ message: `cannot create the cache folder ${staging}: ${String(cause)}`, cause })
  })
  yield* run("mvn --version", ChildProcess.make("mvn", ["--version"])).pipe(
    Effect.mapError(
      (error) =>
        new EmulatorError({
          message: `Maven is needed to fetch OpenSearch ${version} from Maven Central: install it (Debian: apt-get install maven). ${error.message}`,
          cause: error
        })
    )
  )
  yield* run(
    `mvn dependency:unpack of ${artifact}:${version}:zip`,
    ChildProcess.make(
      "mvn",
      [
        "-q",
        "-B",
        `${dependencyPlugin}:unpack`,
        `-Dartifact=${artifact}:${version}:zip`,
        `-DoutputDirectory=${staging}`
        // Without a project, the plugin writes its markers under `${project.basedir}/target` of the
        // working directory: run it in the staging folder, which is removed afterwards.
      ],
      { cwd: staging }
    )
  )
  // The zip holds one folder, `opensearch-<version>`; moving it into place is atomic, so a run
  // that fetched the same version at the same time leaves one copy and loses nothing.
  yield* Effect.tryPromise({
    try: async () => {
      await fs
        .rename(path.join(staging, `opensearch-${version}`), home)
        .catch((error: NodeJS.ErrnoException) => {
          if (!existsSync(path.join(home, "bin", "opensearch"))) throw error
        })
      await fs.rm(staging, { recursive: true, force: true })
    },
    catch: (cause) =>
      new EmulatorError({ message: `cannot move OpenSearch into ${home}: ${String(cause)}`, cause })
  })
  return home
})

/** When run as root: the unprivileged user the node runs as, created when missing. */
const nodeUser = Effect.fn("OpenSearchNode.nodeUser")(function* () {
  const user = process.env.SPILLWAY_OPENSEARCH_USER ?? "spillway-opensearch"
  const exists = yield* run("id", ChildProcess.make("id", ["-u", user])).pipe(
    Effect.as(true),
    Effect.catch(() => Effect.succeed(false))
  )
  if (!exists) {
    yield* run(
      `useradd ${user} (OpenSearch refuses to run as root)`,
      ChildProcess.make("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
    )
  }
  return user
})

const readPortsFile = (file: string) =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: () => new EmulatorError({ message: "not yet" })
  }).pipe(
    Effect.map((text) => text.trim().split("\n")[0]?.trim() ?? ""),
    Effect.filterOrFail(
      (address) => /^[\d.]+:\d+$/.test(address),
      () => new EmulatorError({ message: "not yet" })
    )
  )

const clusterYellow = (url: string) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await globalThis.fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, {
        signal
      })
      const body = (await response.json()) as { status?: string; timed_out?: boolean }
      if (body.timed_out === true || (body.status !== "yellow" && body.status !== "green")) {
        throw new Error(`cluster is ${body.status}`)
      }
    },
    catch: (cause) => new EmulatorError({ message: `not ready: ${String(cause)}`, cause })
  })

/** Starts a node (fetching the distribution first when needed); stops it when the scope closes. */
export const start = Effect.fn("OpenSearchNode.start")(function* (
  options: Options = {}
): Effect.fn.Return<Node, EmulatorError, Scope.Scope | ChildProcessSpawner.ChildProcessSpawner> {
  const version = versionOf(options)
  const javaHome = yield* findJava(options, version)
  const home = yield* fetch(options)
  const scope = yield* Scope.Scope

  const dir = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => fs.mkdtemp(path.join(os.tmpdir(), "spillway-opensearch-")),
      catch: (cause) =>
        new EmulatorError({ message: `cannot create the node's folder: ${String(cause)}`, cause })
    }),
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
  )
  const folders = {
    config: path.join(dir, "config"),
    data: path.join(dir, "data"),
    logs: path.join(dir, "logs"),
    repo: path.join(dir, "snapshots"),
    tmp: path.join(dir, "tmp")
  }
  yield* Effect.tryPromise({
    try: async () => {
      await fs.cp(path.join(home, "config"), folders.config, { recursive: true })
      // The shipped jvm.options write GC logs and heap dumps relative to the distribution, which
      // the node's user may not write to: point them into this node's own folders.
      const jvmOptions = path.join(folders.config, "jvm.options")
      const text = await fs.readFile(jvmOptions, "utf8")
      await fs.writeFile(
        jvmOptions,
        text
          .replaceAll("HeapDumpPath=data", `HeapDumpPath=${folders.data}`)
          .replaceAll("logs/", `${folders.logs}/`)
      )
      for (const folder of [folders.data, folders.logs, folders.repo, folders.tmp]) await fs.mkdir(folder)
    },
    catch: (cause) =>
      new EmulatorError({ message: `cannot prepare the node's folder ${dir}: ${String(cause)}`, cause })
  })

  const user = isRoot() ? yield* nodeUser() : undefined
  if (user !== undefined) {
    yield* run(`chown of ${dir}`, ChildProcess.make("chown", ["-R", `${user}:`, dir]))
  }

  const heap = options.heap ?? "512m"
  const settings: Record<string, string | number | boolean> = {
    "discovery.type": "single-node",
    "network.host": "127.0.0.1",
    "http.port": 0,
    "transport.port": 0,
    // Writes the ports the OS picked to logs/http.ports.
    "node.portsfile": true,
    "path.data": folders.data,
    "path.logs": folders.logs,
    "path.repo": folders.repo,
    // Disks here have been nearly full: a watermark would block writes for reasons no test asks for.
    "cluster.routing.allocation.disk.threshold_enabled": false,
    "node.store.allow_mmap": false,
    "action.destructive_requires_name": false,
    ...options.settings
  }
  const env = {
    JAVA_HOME: javaHome,
    OPENSEARCH_PATH_CONF: folders.config,
    OPENSEARCH_TMPDIR: folders.tmp,
    OPENSEARCH_JAVA_OPTS: `-Xms${heap} -Xmx${heap}`
  }
  const executable = path.join(home, "bin", "opensearch")
  const args = Object.entries(settings).map(([key, value]) => `-E${key}=${value}`)
  const command =
    user === undefined
      ? ChildProcess.make(executable, args, { env, extendEnv: true })
      : ChildProcess.make(
          "runuser",
          ["-u", user, "--", "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), executable, ...args],
          { extendEnv: true }
        )

  const started = Date.now()
  // The handle is tied to the caller's scope: closing it stops the node's whole process group.
  const handle = yield* ChildProcessSpawner.ChildProcessSpawner.use((spawner) =>
    spawner.spawn(
      ChildProcess.make(command.command, command.args, {
        ...command.options,
        killSignal: "SIGTERM",
        forceKillAfter: Duration.seconds(10)
      })
    )
  ).pipe(
    Scope.provide(scope),
    Effect.mapError(
      (cause) => new EmulatorError({ message: `cannot start OpenSearch: ${cause.message}`, cause })
    )
  )
  // The node logs to stdout; keep the last lines for error messages.
  const lines: Array<string> = []
  yield* Stream.decodeText(handle.all).pipe(
    Stream.splitLines,
    Stream.runForEach((line) =>
      Effect.sync(() => {
        lines.push(line)
        if (lines.length > 200) lines.shift()
      })
    ),
    Effect.ignore,
    Effect.forkIn(scope)
  )
  const logTail = Effect.sync(() => lines.slice(-40).join("\n"))

  const exited = handle.exitCode.pipe(
    Effect.flatMap((code) =>
      Effect.flatMap(logTail, (tail) =>
        Effect.fail(
          new EmulatorError({ message: `OpenSearch ${version} exited with ${code} while starting:\n${tail}` })
        )
      )
    ),
    Effect.catchTag("PlatformError", (cause) =>
      Effect.fail(
        new EmulatorError({ message: `OpenSearch ${version} failed while starting: ${cause.message}`, cause })
      )
    )
  )
  const ready = readPortsFile(path.join(folders.logs, "http.ports")).pipe(
    Effect.map((address) => `http://${address}`),
    Effect.tap(clusterYellow),
    Effect.retry(Schedule.spaced("100 millis"))
  )
  const url = yield* Effect.raceFirst(ready, exited).pipe(
    Effect.timeoutOrElse({
      duration: "120 seconds",
      orElse: () =>
        Effect.flatMap(logTail, (tail) =>
          Effect.fail(
            new EmulatorError({ message: `OpenSearch ${version} was not ready after 120 s:\n${tail}` })
          )
        )
    })
  )
  return { url, version, repoPath: folders.repo, startMillis: Date.now() - started, logTail }
})

/** The node's URL when an existing one is given (`SPILLWAY_OPENSEARCH_URL`), else none. */
export const existingUrl = (): Option.Option<string> =>
  Option.fromNullishOr(process.env.SPILLWAY_OPENSEARCH_URL).pipe(Option.filter((url) => url.trim() !== ""))
