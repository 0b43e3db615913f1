import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type * as ApiKeysModule from "../src/ApiKeys.js"
import { ApiKeys, hashKey, layer, layerPlain } from "../src/ApiKeys.js"

describe("ApiKeys", () => {
  it.effect("maps a known key to its tenant", () =>
    Effect.gen(function* () {
      const keys = yield* ApiKeys
      // A `Tenant` is the tenant's name, branded as checked.
      const acme: ApiKeysModule.Tenant = yield* keys.authorize("k-acme")
      expect(acme).toBe("acme")
      expect(yield* keys.authorize("k-globex")).toBe("globex")
    }).pipe(
      Effect.provide(
        layerPlain([
          { tenant: "acme", key: "k-acme" },
          { tenant: "globex", key: "k-globex" }
        ])
      )
    )
  )

  it.effect("refuses a missing or unknown key with a typed reason", () =>
    Effect.gen(function* () {
      const keys = yield* ApiKeys
      const missing = yield* Effect.exit(keys.authorize(undefined))
      const empty = yield* Effect.exit(keys.authorize(""))
      const unknown = yield* Effect.exit(keys.authorize("k-acmE"))
      expect(missing).toStrictEqual(Exit.fail(expect.objectContaining({ reason: "MissingKey" })))
      expect(Exit.isFailure(empty)).toBe(true)
      expect(unknown).toStrictEqual(Exit.fail(expect.objectContaining({ reason: "UnknownKey" })))
    }).pipe(Effect.provide(layer([{ tenant: "acme", sha256: hashKey("k-acme") }])))
  )
})
