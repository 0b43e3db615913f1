/**
 * The Amazon Data Firehose SDK client as a scoped service (see `ClientConfig` for region, endpoint,
 * HTTP handler and the retry policy every client shares).
 */
import * as Firehose from "@aws-sdk/client-firehose"
import { type Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import { scopedClient } from "./internal/scopedClient.js"

export class FirehoseClient extends Context.Service<FirehoseClient, Firehose.FirehoseClient>()(
  "spillway/aws/FirehoseClient"
) {}

export const make = (
  options: ClientConfig.ClientOptions
): Effect.Effect<Firehose.FirehoseClient, never, Scope.Scope> =>
  scopedClient(() => new Firehose.FirehoseClient(ClientConfig.sdkClientConfig(options)))

export const layer = (options: ClientConfig.ClientOptions): Layer.Layer<FirehoseClient> =>
  Layer.effect(FirehoseClient, make(options))

/** Region and endpoint from `Config` (`AWS_REGION`, `AWS_ENDPOINT_URL_FIREHOSE`, `AWS_ENDPOINT_URL`). */
export const layerConfig = (
  overrides: Partial<ClientConfig.ClientOptions> = {}
): Layer.Layer<FirehoseClient, Config.ConfigError> =>
  Layer.effect(
    FirehoseClient,
    Effect.flatMap(ClientConfig.clientOptions("FIREHOSE"), (options) => make({ ...options, ...overrides }))
  )
