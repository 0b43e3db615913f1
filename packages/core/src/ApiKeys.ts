/**
 * API-key authorization for the collector. Keys are kept only as SHA-256 digests, and a presented
 * key is compared with every stored digest in constant time, so neither a memory dump nor response
 * timing reveals a key.
 *
 * `authorize` is the only way to get a `Tenant`, and the collect stage asks for one, so a record
 * cannot be collected without its key having been checked — and checking it once is enough.
 *
 * It fails in one of two ways, which must never be confused: `Unauthorized` says the key was
 * judged and refused (the client should stop: 401); `KeyStoreUnavailable` says the key could not
 * be judged because the stored keys could not be read (the client should send the same request
 * again later: 503). A key store read from AWS (`@spillway/aws`' `ApiKeyStore`) answers the second
 * when it has never read its keys, so a valid key is never refused for the store's fault.
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

export const KeyStoreErrorReason = Schema.Literals([
  /** No answer, a 5xx, a timeout: the store did not answer. */
  "Unavailable",
  /** The store refused the read for its request rate. */
  "Throttled",
  /** The secret or parameter does not exist (or has no current value). */
  "NotFound",
  /** Credentials, IAM or KMS refused the read (or the decryption). */
  "AccessDenied",
  /** The store refused the request for another reason (a secret scheduled for deletion, say). */
  "InvalidRequest",
  /** The value was read but is not the documented key list; the message names the entry. */
  "Malformed"
])
export type KeyStoreErrorReason = typeof KeyStoreErrorReason.Type

/**
 * The stored keys could not be read, so the presented key was not judged. Always retryable from
 * the client's side — the same request may succeed once the store answers (or is fixed) — which is
 * why the collector answers it 503 with `Retry-After`, never 401. `message` is for logs (it may
 * name the secret and the faulty entry); it is not sent to clients.
 */
export class KeyStoreUnavailable extends Schema.TaggedError<KeyStoreUnavailable>()("KeyStoreUnavailable", {
  reason: KeyStoreErrorReason,
  message: Schema.String,
  /** What the store's client threw, when it threw something (an SDK error, say). */
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return true
  }
}

/** Every way `authorize` can end without a tenant. */
export type AuthorizeError = Unauthorized | KeyStoreUnavailable

declare const authorized: unique symbol

/**
 * A tenant whose API key was checked: a string (its name) that only `authorize` produces, since
 * the brand's symbol is not exported.
 */
export type Tenant = string & { readonly [authorized]: true }

export interface Service {
  /**
   * The tenant the key belongs to; `Unauthorized` for a missing or unknown key,
   * `KeyStoreUnavailable` when the stored keys could not be read to judge it.
   */
  readonly authorize: (key: string | undefined) => Effect.Effect<Tenant, AuthorizeError>
}

export class ApiKeys extends Context.Service<ApiKeys, Service>()("spillway/ApiKeys") {}

/** A stored key: the tenant and the hex SHA-256 digest of the key. */
export interface HashedKey {
  readonly tenant: string
  readonly sha256: string
}

export const hashKey = (key: string): string => createHash("sha256").update(key, "utf8").digest("hex")

/** Keys held in memory (they are always readable: `authorize` fails only `Unauthorized`). */
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
