/**
 * The SSM (Parameter Store) SDK client as a scoped service (see `ClientConfig` for region,
 * endpoint, HTTP handler and the retry policy every client shares).
 */
import * as Ssm from "@aws-sdk/client-ssm"
import { type Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import { scopedClient } from "./internal/scopedClient.js"

export class SsmClient extends Context.Service<SsmClient, Ssm.SSMClient>()("spillway/aws/SsmClient") {}

export const make = (options: ClientConfig.ClientOptions): Effect.Effect<Ssm.SSMClient, never, Scope.Scope> =>
  scopedClient(() => new Ssm.SSMClient(ClientConfig.sdkClientConfig(options)))

export const layer = (options: ClientConfig.ClientOptions): Layer.Layer<SsmClient> =>
  Layer.effect(SsmClient, make(options))

/** Region and endpoint from `Config` (`AWS_REGION`, `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`). */
export const layerConfig = (
  overrides: Partial<ClientConfig.ClientOptions> = {}
): Layer.Layer<SsmClient, Config.ConfigError> =>
  Layer.effect(
    SsmClient,
    Effect.flatMap(ClientConfig.clientOptions("SSM"), (options) => make({ ...options, ...overrides }))
  )
