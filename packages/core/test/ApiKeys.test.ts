import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import type * as ApiKeysModule from "../src/ApiKeys.js"
import { ApiKeys, hashKey, KeyStoreUnavailable, layer, layerPlain, Unauthorized } from "../src/ApiKeys.js"

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

  it("tells a refused key (not retryable) from a store that could not be read (retryable), and both travel", () => {
    const unknown = new Unauthorized({ reason: "UnknownKey" })
    const unreadable = new KeyStoreUnavailable({
      reason: "Unavailable",
      message: "GetSecretValue: no answer"
    })
    expect(unknown.isRetryable).toBe(false)
    expect(unreadable.isRetryable).toBe(true)
    expect(unreadable.message).toBe("GetSecretValue: no answer")
    // Schema errors: they serialize (CLI output, logs as JSON) and decode back to the same error.
    const encoded = Schema.encodeSync(KeyStoreUnavailable)(unreadable)
    expect(encoded).toEqual({
      _tag: "KeyStoreUnavailable",
      reason: "Unavailable",
      message: "GetSecretValue: no answer"
    })
    const decoded = Schema.decodeUnknownSync(KeyStoreUnavailable)(encoded)
    expect(decoded).toBeInstanceOf(KeyStoreUnavailable)
    expect(decoded.isRetryable).toBe(true)
  })
})
