/**
 * The Kinesis Data Streams SDK client as a scoped service (see `ClientConfig` for region, endpoint,
 * HTTP handler and the retry policy every client shares).
 */
import * as Kinesis from "@aws-sdk/client-kinesis"
import { type Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import { scopedClient } from "./internal/scopedClient.js"

export class KinesisClient extends Context.Service<KinesisClient, Kinesis.KinesisClient>()(
  "spillway/aws/KinesisClient"
) {}

export const make = (
  options: ClientConfig.ClientOptions
): Effect.Effect<Kinesis.KinesisClient, never, Scope.Scope> =>
  scopedClient(() => new Kinesis.KinesisClient(ClientConfig.sdkClientConfig(options)))

export const layer = (options: ClientConfig.ClientOptions): Layer.Layer<KinesisClient> =>
  Layer.effect(KinesisClient, make(options))

/** Region and endpoint from `Config` (`AWS_REGION`, `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`). */
export const layerConfig = (
  overrides: Partial<ClientConfig.ClientOptions> = {}
): Layer.Layer<KinesisClient, Config.ConfigError> =>
  Layer.effect(
    KinesisClient,
    Effect.flatMap(ClientConfig.clientOptions("KINESIS"), (options) => make({ ...options, ...overrides }))
  )
