/**
 * The emulators a test file runs against, started once before its tests (vitest `beforeAll`) and
 * stopped after them (`afterAll`): `const servers = serversForFile("kinesalite", "fauxqs")`, then
 * `servers.kinesalite.endpoint` inside a test. `moto` is moto's server (a Python process; Secrets
 * Manager and SSM), one per file, as each file runs in its own worker.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Emulators, Moto } from "@spillway/emulators"
import { Effect, Exit, Scope } from "effect"

interface Servers {
  readonly kinesalite: Emulators.Kinesalite
  readonly fauxqs: Emulators.Fauxqs
  readonly moto: Moto.Moto
}

export const serversForFile = <const Name extends keyof Servers>(
  ...names: ReadonlyArray<Name>
): Pick<Servers, Name> => {
  const scope = Scope.makeUnsafe()
  const started: { kinesalite?: Emulators.Kinesalite; fauxqs?: Emulators.Fauxqs; moto?: Moto.Moto } = {}
  beforeAll(() =>
    Effect.runPromise(
      Effect.forEach(
        names,
        (name) =>
          name === "kinesalite"
            ? Effect.map(Emulators.kinesalite, (server) => {
                started.kinesalite = server
              })
            : name === "fauxqs"
              ? Effect.map(Emulators.fauxqs, (server) => {
                  started.fauxqs = server
                })
              : Effect.map(Moto.startOnNode(), (server) => {
                  started.moto = server
                }),
        { concurrency: "unbounded", discard: true }
      ).pipe(Scope.provide(scope))
    )
  )
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const get = <K extends keyof Servers>(name: K): Servers[K] => {
    const server = started[name]
    if (server === undefined)
      throw new Error(`${name} is not started: serversForFile("${name}") runs in beforeAll`)
    return server as Servers[K]
  }
  return {
    get kinesalite() {
      return get("kinesalite")
    },
    get fauxqs() {
      return get("fauxqs")
    },
    get moto() {
      return get("moto")
    }
  } as Pick<Servers, Name>
}
