/**
 * `Moto.start`: a missing or broken `moto_server` is refused with what to install, and a real one
 * answers on 127.0.0.1 on a port it picked until its scope closes.
 */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as Moto from "../src/Moto.js"

const startFailure = (options: Moto.Options) =>
  Effect.flip(Effect.scoped(Moto.start(options))).pipe(Effect.provide(NodeServices.layer))

/** An executable script that prints `output` to stderr and exits with `code`, as a broken install does. */
const fakeServer = (output: string, code: number) => {
  const file = join(mkdtempSync(join(tmpdir(), "fake-moto-")), "moto_server")
  writeFileSync(file, `#!/bin/sh\ncat >&2 <<'EOF'\n${output}\nEOF\nexit ${code}\n`)
  chmodSync(file, 0o755)
  return file
}

describe("Moto.start", () => {
  it.live("names what to install when moto_server does not exist", () =>
    Effect.gen(function* () {
      const error = yield* startFailure({ command: "/nonexistent/bin/moto_server" })
      expect(error._tag).toBe("EmulatorError")
      expect(error.message).toBe(`/nonexistent/bin/moto_server was not found: ${Moto.installHint}`)
      expect(error.message).toContain("pip install 'moto[server]'")
    })
  )

  it.live("a name with nothing behind it (a pyenv shim, exit 127) is refused with the same advice", () =>
    Effect.gen(function* () {
      const shim = fakeServer("pyenv: moto_server: command not found", 127)
      const error = yield* startFailure({ command: shim })
      expect(error.message).toContain(`${shim} exited with 127 before it answered; ${Moto.installHint}`)
      expect(error.message).toContain("pyenv: moto_server: command not found")
    })
  )

  it.live("a server that exits while starting is refused with its output", () =>
    Effect.gen(function* () {
      const broken = fakeServer("ModuleNotFoundError: No module named 'flask'", 1)
      const error = yield* startFailure({ command: broken })
      expect(error.message).toContain(`${broken} exited with 1 before it answered:`)
      expect(error.message).toContain("No module named 'flask'")
      expect(error.message).not.toContain("pip install")
    })
  )

  it.live("answers on 127.0.0.1 on a port it picked, resets, and stops when its scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const moto = yield* Moto.start().pipe(Scope.provide(scope), Effect.provide(NodeServices.layer))
      expect(moto.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(moto.client).toEqual({
        region: "us-east-1",
        endpoint: moto.endpoint,
        credentials: { accessKeyId: "test", secretAccessKey: "test" }
      })
      const status = yield* Effect.promise(() =>
        fetch(`${moto.endpoint}/moto-api/`).then(async (r) => {
          await r.arrayBuffer()
          return r.status
        })
      )
      expect(status).toBe(200)
      yield* moto.reset
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.promise(() =>
        fetch(`${moto.endpoint}/moto-api/`).then(
          () => "answered",
          () => "refused"
        )
      )
      expect(after).toBe("refused")
    })
  )
})
