/**
 * The SQS SDK client as a scoped service (see `ClientConfig` for region, endpoint,
 * HTTP handler and the retry policy every client shares).
 */
import * as Sqs from "@aws-sdk/client-sqs"
import { type Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import { scopedClient } from "./internal/scopedClient.js"

export class SqsClient extends Context.Service<SqsClient, Sqs.SQSClient>()("spillway/aws/SqsClient") {}

export const make = (options: ClientConfig.ClientOptions): Effect.Effect<Sqs.SQSClient, never, Scope.Scope> =>
  scopedClient(
    () =>
      new Sqs.SQSClient({
        ...ClientConfig.sdkClientConfig(options),
        // By default the client sends each request to the host in its QueueUrl, which bypasses a
        // configured endpoint (emulators hand out URLs on hosts that do not resolve). The queue URL
        // and the regional endpoint agree on AWS, so the configured endpoint is always right.
        useQueueUrlAsEndpoint: false
      })
  )

export const layer = (options: ClientConfig.ClientOptions): Layer.Layer<SqsClient> =>
  Layer.effect(SqsClient, make(options))

/** Region and endpoint from `Config` (`AWS_REGION`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`). */
export const layerConfig = (
  overrides: Partial<ClientConfig.ClientOptions> = {}
): Layer.Layer<SqsClient, Config.ConfigError> =>
  Layer.effect(
    SqsClient,
    Effect.flatMap(ClientConfig.clientOptions("SQS"), (options) => make({ ...options, ...overrides }))
  )
