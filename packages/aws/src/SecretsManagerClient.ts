/**
 * The Secrets Manager SDK client as a scoped service (see `ClientConfig` for region, endpoint,
 * HTTP handler and the retry policy every client shares).
 */
import * as SecretsManager from "@aws-sdk/client-secrets-manager"
import { type Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import { scopedClient } from "./internal/scopedClient.js"

export class SecretsManagerClient extends Context.Service<
  SecretsManagerClient,
  SecretsManager.SecretsManagerClient
>()("spillway/aws/SecretsManagerClient") {}

export const make = (
  options: ClientConfig.ClientOptions
): Effect.Effect<SecretsManager.SecretsManagerClient, never, Scope.Scope> =>
  scopedClient(() => new SecretsManager.SecretsManagerClient(ClientConfig.sdkClientConfig(options)))

export const layer = (options: ClientConfig.ClientOptions): Layer.Layer<SecretsManagerClient> =>
  Layer.effect(SecretsManagerClient, make(options))

/** Region and endpoint from `Config` (`AWS_REGION`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`). */
export const layerConfig = (
  overrides: Partial<ClientConfig.ClientOptions> = {}
): Layer.Layer<SecretsManagerClient, Config.ConfigError> =>
  Layer.effect(
    SecretsManagerClient,
    Effect.flatMap(ClientConfig.clientOptions("SECRETS_MANAGER"), (options) =>
      make({ ...options, ...overrides })
    )
  )
