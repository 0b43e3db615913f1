/**
 * The OpenSearch client as a scoped service, signing every request with AWS SigV4 (service `es`
 * for a managed domain, `aoss` for a Serverless collection; docs/aws-behaviour.md §6.8) unless `auth: "none"`
 * is asked for (a local cluster).
 *
 * The client's own retries are off (`maxRetries: 0`): its transport would resend 502/503/504 and
 * connection failures on its own schedule, and `Schedules.sinkWrite` is where Spillway decides how
 * long a sink write may keep trying (it must fit the processor's Lambda timeout).
 */
import { defaultProvider } from "@aws-sdk/credential-provider-node"
import { Client } from "@opensearch-project/opensearch"
import { AwsSigv4Signer } from "@opensearch-project/opensearch/aws"
import { Config, Context, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"

export class OpenSearchClient extends Context.Service<OpenSearchClient, Client>()(
  "spillway/aws/OpenSearchClient"
) {}

export interface Options {
  /** The domain or collection endpoint, e.g. `https://search-telemetry-abc.eu-west-1.es.amazonaws.com`. */
  readonly node: string
  readonly region: string
  /** `es` for a managed domain, `aoss` for OpenSearch Serverless. @default "es" */
  readonly service?: "es" | "aoss"
  /** `none` sends unsigned requests (local clusters only). @default "sigv4" */
  readonly auth?: "sigv4" | "none"
  /** @default the SDK's default provider chain */
  readonly credentials?: ClientConfig.Credentials | ClientConfig.CredentialsProvider
  /** Time allowed for one request. @default 30000 */
  readonly requestTimeoutMillis?: number
}

const credentialsProvider = (
  credentials: Options["credentials"]
): (() => Promise<{
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
  expiration?: Date
}>) => {
  if (typeof credentials === "function") return credentials
  if (credentials !== undefined) return () => Promise.resolve(credentials)
  return defaultProvider()
}

export const make = (options: Options): Effect.Effect<Client, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(
      () =>
        new Client({
          ...(options.auth === "none"
            ? {}
            : AwsSigv4Signer({
                region: options.region,
                service: options.service ?? "es",
                getCredentials: credentialsProvider(options.credentials)
              })),
          node: options.node,
          maxRetries: 0,
          requestTimeout: options.requestTimeoutMillis ?? 30_000
        })
    ),
    (client) => Effect.promise(() => client.close())
  )

export const layer = (options: Options): Layer.Layer<OpenSearchClient> =>
  Layer.effect(OpenSearchClient, make(options))

/**
 * From `Config`: `OPENSEARCH_ENDPOINT`, `OPENSEARCH_SERVICE` (`es` or `aoss`, default `es`),
 * `OPENSEARCH_AUTH` (`sigv4`, or `none` for a local cluster without the security plugin; default
 * `sigv4`), `AWS_REGION`.
 */
export const layerConfig = (
  overrides: Partial<Options> = {}
): Layer.Layer<OpenSearchClient, Config.ConfigError> =>
  Layer.effect(
    OpenSearchClient,
    Effect.flatMap(
      Config.all({
        node: ClientConfig.httpUrl("OPENSEARCH_ENDPOINT"),
        region: ClientConfig.region,
        service: Config.Literals(["es", "aoss"], "OPENSEARCH_SERVICE").pipe(Config.withDefault("es")),
        auth: Config.Literals(["sigv4", "none"], "OPENSEARCH_AUTH").pipe(Config.withDefault("sigv4"))
      }),
      (options) => make({ ...options, ...overrides })
    )
  )
