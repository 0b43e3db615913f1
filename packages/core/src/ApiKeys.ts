/**
 * API-key authorization for the collector. Keys are kept only as SHA-256 digests, and a presented
 * key is compared with every stored digest in constant time, so neither a memory dump nor response
 * timing reveals a key.
 *
 * `authorize` is the only way to get a `Tenant`, and the collect stage asks for one, so a record
 * cannot be collected without its key having been checked — and checking it once is enough.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Context, Effect, Layer, Schema } from "effect"

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.Literals(["MissingKey", "UnknownKey"])
}) {
  get isRetryable(): boolean {
    return false
  }
  override get message(): string {
    return this.reason === "MissingKey" ? "missing API key (x-api-key header)" : "unknown API key"
  }
}

declare const authorized: unique symbol

/**
 * A tenant whose API key was checked: a string (its name) that only `authorize` produces, since
 * the brand's symbol is not exported.
 */
export type Tenant = string & { readonly [authorized]: true }

export interface Service {
  /** The tenant the key belongs to. */
  readonly authorize: (key: string | undefined) => Effect.Effect<Tenant, Unauthorized>
}

export class ApiKeys extends Context.Service<ApiKeys, Service>()("spillway/ApiKeys") {}

/** A stored key: the tenant and the hex SHA-256 digest of the key. */
export interface HashedKey {
  readonly tenant: string
  readonly sha256: string
}

export const hashKey = (key: string): string => createHash("sha256").update(key, "utf8").digest("hex")

export const make = (keys: ReadonlyArray<HashedKey>): Service => {
  // The one place a tenant is branded as authorized: the name of a stored key.
  const stored = keys.map((k) => ({ tenant: k.tenant as Tenant, digest: Buffer.from(k.sha256, "hex") }))
  return ApiKeys.of({
    authorize: (key) => {
      if (key === undefined || key.length === 0)
        return Effect.fail(new Unauthorized({ reason: "MissingKey" }))
      const digest = createHash("sha256").update(key, "utf8").digest()
      let tenant: Tenant | undefined
      // Compare with every key, not stopping at a match, so the time taken does not depend on which key matched.
      for (const k of stored) {
        if (k.digest.length === digest.length && timingSafeEqual(k.digest, digest) && tenant === undefined) {
          tenant = k.tenant
        }
      }
      return tenant === undefined
        ? Effect.fail(new Unauthorized({ reason: "UnknownKey" }))
        : Effect.succeed(tenant)
    }
  })
}

export const layer = (keys: ReadonlyArray<HashedKey>): Layer.Layer<ApiKeys> =>
  Layer.succeed(ApiKeys, make(keys))

/** For local runs and tests: plain keys, hashed on the way in. */
export const layerPlain = (
  keys: ReadonlyArray<{ readonly tenant: string; readonly key: string }>
): Layer.Layer<ApiKeys> => layer(keys.map((k) => ({ tenant: k.tenant, sha256: hashKey(k.key) })))
