/**
 * What the recovery commands (`replay`, `restore`, `reprocess-failures`) share around their own
 * options and steps:
 *
 * - their flags: `--backend` first, then the command's own, `--json`, and the connection flags
 *   (`Connection.flags`) it reads, in the order its help lists them;
 * - how each runs: its options checked (refusals before anything is touched), then on `memory` its
 *   rehearsal, on `emulators` or `aws` the target's environment in a scope with the credentials
 *   checked first; then the summary or `--json` and the exit code (`Output.emit`), a line on what
 *   an interrupted run kept, and any other failure as one line (`Output.failures`).
 */
import { Clock, Console, Effect, type Scope } from "effect"
import { type Command, Flag } from "effect/cli"
import type { TestClock } from "effect/testing"
import * as Connection from "./Connection.js"
import * as Output from "./Output.js"
import * as Progress from "./Progress.js"
import * as Rehearsal from "./Rehearsal.js"

/** A switch: off unless given, with no `--no-` form. The description ends with its default. */
export const switchFlag = (name: string, description: string) =>
  Flag.Boolean(name).pipe(Flag.withoutNegation, Flag.withDefault(false), Flag.withDescription(description))

/** A whole number shown as `<metavar>`; a value that is not `valid` is refused with `refusal` (exit 2). */
export const intFlag = (name: string, metavar: string, valid: (n: number) => boolean, refusal: string) =>
  Flag.Int(name).pipe(
    Flag.withMetavar(metavar),
    Flag.filter(valid, () => refusal)
  )

/**
 * The connection flags of each service a command may work with; `--region` and `--endpoint-url`
 * go with every one.
 */
export const serviceFlags = {
  stream: ["kinesisEndpoint", "stream"],
  failureQueue: ["sqsEndpoint", "failureQueue"],
  archive: ["s3Endpoint", "archiveBucket", "firehoseStream", "archivePrefix", "archiveCompression"],
  index: ["opensearchEndpoint", "opensearchIndex"],
  snapshots: ["snapshotRepository"]
} as const satisfies Readonly<Record<string, ReadonlyArray<keyof typeof Connection.flags>>>

export type Service = keyof typeof serviceFlags

/** The connection flags a command working with `S` takes. */
export type ConnectionFlags<S extends Service> = Pick<
  typeof Connection.flags,
  "region" | "endpointUrl" | (typeof serviceFlags)[S][number]
>

export type Flags<Own extends Command.Command.Config, S extends Service> = {
  readonly backend: typeof Connection.backendFlag
} & Own & { readonly json: typeof Output.jsonFlag } & ConnectionFlags<S>

/**
 * A recovery command's flags: `--backend`, its `own`, `--json`, then the connection flags of the
 * `services` it works with, in `Connection.flags`' order (the help lists them so).
 */
export const flags = <const Own extends Command.Command.Config, S extends Service>(
  own: Own,
  services: ReadonlyArray<S>
): Flags<Own, S> => {
  const taken = new Set<string>(["region", "endpointUrl", ...services.flatMap((s) => serviceFlags[s])])
  const connection = Object.fromEntries(
    Object.entries(Connection.flags).filter(([key]) => taken.has(key))
  ) as ConnectionFlags<S>
  return { backend: Connection.backendFlag, ...own, json: Output.jsonFlag, ...connection }
}

/** What every recovery command's flags give: the backend, `--json`, and the connection settings. */
export interface Given extends Connection.FlagValues {
  readonly backend: Connection.Backend
  readonly json: boolean
}

export interface Run<Options, Outcome, E1, R1, E2, E3, R3> {
  /** `spillway <name>`: what refusals and failures name. */
  readonly command: string
  /** The command's own name, before its progress lines. */
  readonly name: string
  readonly flags: Given
  /** What an interrupted run kept, and how to go on. */
  readonly whatIsKept: string
  /** The flags checked together (refusing before anything is touched), as the run's options. */
  readonly options: Effect.Effect<Options, E1, R1>
  /** `--backend memory`. */
  readonly rehearsal: (options: Options) => Effect.Effect<Outcome, E2>
  /** `--backend emulators | aws`, in a scope, once the target's credentials are checked. */
  readonly onTarget: (
    target: Connection.Target,
    options: Options,
    progress: Progress.Progress
  ) => Effect.Effect<Outcome, E3, R3>
  readonly format: (outcome: Outcome, backend: Connection.Backend) => string
  readonly toJson: (outcome: Outcome, backend: Connection.Backend) => unknown
  readonly exitCode: (outcome: Outcome) => number
}

/** A recovery command's handler, from its checks to its exit code. */
export const run = <Options, Outcome, E1, R1, E2, E3, R3>(spec: Run<Options, Outcome, E1, R1, E2, E3, R3>) =>
  Effect.gen(function* () {
    const { command, flags } = spec
    const options = yield* spec.options
    const progress = yield* Progress.make({ command: spec.name })
    const outcome =
      flags.backend === "memory"
        ? yield* spec.rehearsal(options)
        : yield* Effect.scoped(
            Effect.gen(function* () {
              const t = Connection.target(command, flags.backend as "emulators" | "aws", flags)
              yield* Connection.checkCredentials(t)
              return yield* spec.onTarget(t, options, progress)
            })
          )
    yield* Output.emit({
      json: flags.json,
      summary: () => spec.format(outcome, flags.backend),
      value: () => spec.toJson(outcome, flags.backend),
      exitCode: spec.exitCode(outcome)
    })
  }).pipe(Output.onInterrupt(spec.command, spec.whatIsKept), Output.failures(spec.command))

/**
 * A rehearsal on simulated time from `span` before now (a whole minute, so that its times read
 * easily): the world `setUp` makes, its story on stderr, then `body` with a progress of its own.
 */
export const rehearse = <W extends { readonly story: ReadonlyArray<string> }, A, E>(
  name: string,
  span: number,
  setUp: (now: number) => Effect.Effect<W, never, Scope.Scope | TestClock.TestClock>,
  body: (world: W, progress: Progress.Progress) => Effect.Effect<A, E, Scope.Scope | TestClock.TestClock>
): Effect.Effect<A, E> =>
  Effect.gen(function* () {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 60_000) * 60_000
    return yield* Rehearsal.onSimulatedTime(
      now - span,
      Effect.gen(function* () {
        const world = yield* setUp(now)
        for (const line of world.story) yield* Console.error(line)
        const progress = yield* Progress.make({ command: name })
        return yield* body(world, progress)
      })
    )
  })
