/**
 * The S3 SDK client as a scoped service (see `ClientConfig` for region, endpoint, HTTP handler and
 * the retry policy every client shares).
 */
import * as S3 from "@aws-sdk/client-s3"
import { Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import { scopedClient } from "./internal/scopedClient.js"

export class S3Client extends Context.Service<S3Client, S3.S3Client>()("spillway/aws/S3Client") {}

export interface Options extends ClientConfig.ClientOptions {
  /**
   * Path-style URLs (`https://host/bucket/key`). Emulators need them; AWS prefers virtual-hosted
   * style. @default false
   */
  readonly forcePathStyle?: boolean
}

export const make = (options: Options): Effect.Effect<S3.S3Client, never, Scope.Scope> =>
  scopedClient(
    () =>
      new S3.S3Client({
        ...ClientConfig.sdkClientConfig(options),
        forcePathStyle: options.forcePathStyle ?? false
      })
  )

export const layer = (options: Options): Layer.Layer<S3Client> => Layer.effect(S3Client, make(options))

/**
 * Region and endpoint from `Config` (`AWS_REGION`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`);
 * path style from `AWS_S3_FORCE_PATH_STYLE` (default false).
 */
export const layerConfig = (overrides: Partial<Options> = {}): Layer.Layer<S3Client, Config.ConfigError> =>
  Layer.effect(
    S3Client,
    Effect.flatMap(
      Config.all([
        ClientConfig.clientOptions("S3"),
        Config.Boolean("AWS_S3_FORCE_PATH_STYLE").pipe(Config.withDefault(false))
      ]),
      ([options, forcePathStyle]) => make({ ...options, forcePathStyle, ...overrides })
    )
  )
