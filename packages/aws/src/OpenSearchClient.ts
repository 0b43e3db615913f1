/**
 * OpenSearch's REST API as a scoped service: one `request` that sends a JSON or NDJSON body and
 * answers the status and the parsed body, signing every request with AWS SigV4 (service `es` for a
 * managed domain, `aoss` for a Serverless collection; docs/aws-behaviour.md §6.8) unless
 * `auth: "none"` is asked for (a local cluster).
 *
 * Built from the AWS SDK's own parts, the ones every SDK client in a bundle already carries: the
 * SigV4 signer (`@smithy/signature-v4`), the SDK's Node HTTP handler (keep-alive agent, timeouts,
 * abort) and the default credential chain. Spillway sends five kinds of request (`_bulk`, index
 * templates, snapshots, counts, searches); the OpenSearch JavaScript client added ~250 KiB to
 * every bundle that wrote to OpenSearch (a quarter of the processor), for its transport alone.
 *
 * There are no retries here: `Schedules.sinkWrite` is where Spillway decides how long a write may
 * keep trying (it must fit the processor's Lambda timeout). Any status of 400 or more fails with
 * `OpenSearchRequestError` (reason `Status`, with OpenSearch's `error.type`), unless the request
 * lists it in `accept` (a 404 that answers an existence check).
 */
import { createHash } from "node:crypto"
import { defaultProvider } from "@aws-sdk/credential-provider-node"
import { Sha256 } from "@smithy/core/checksum"
import { HttpRequest } from "@smithy/core/transport"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { SignatureV4 } from "@smithy/signature-v4"
import { Config, Context, Data, Effect, Layer, type Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"

export interface Request {
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "DELETE"
  /** The path, each variable segment already URI-encoded (`/_snapshot/${encodeURIComponent(name)}`). */
  readonly path: string
  readonly querystring?: Readonly<Record<string, string | number | boolean | undefined>>
  /** A JSON body: serialized with `JSON.stringify`. */
  readonly body?: unknown
  /** An NDJSON body (`_bulk`), sent as it is with `content-type: application/x-ndjson`. */
  readonly ndjson?: string
  /** Time allowed for this request, in ms. @default the client's `requestTimeoutMillis` */
  readonly timeoutMillis?: number
  /** Statuses of 400 or more that answer instead of failing (404 for "is there one?"). */
  readonly accept?: ReadonlyArray<number>
}

export interface Response {
  readonly statusCode: number
  /** The body parsed as JSON; the text when it is not JSON; `undefined` when empty. */
  readonly body: unknown
}

export type ErrorReason =
  /** OpenSearch answered a status of 400 or more. */
  | "Status"
  /** No answer: the connection could not be made, was reset, or the request was cut off. */
  | "Connection"
  /** No answer within the time allowed. */
  | "Timeout"
  /** No credentials to sign with (the default chain found none, or a provider failed). */
  | "Credentials"

export class OpenSearchRequestError extends Data.TaggedError("OpenSearchRequestError")<{
  readonly reason: ErrorReason
  readonly method: string
  readonly path: string
  readonly message: string
  readonly statusCode?: number
  /** OpenSearch's `error.type` (`cluster_block_exception`, `snapshot_missing_exception`, …). */
  readonly errorType?: string
  readonly body?: unknown
  readonly cause?: unknown
}> {}

export interface Service {
  /** The endpoint requests go to, without a trailing slash. */
  readonly node: string
  readonly request: (request: Request) => Effect.Effect<Response, OpenSearchRequestError>
}

export class OpenSearchClient extends Context.Service<OpenSearchClient, Service>()(
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

const credentialsProvider = (credentials: Options["credentials"]): ClientConfig.CredentialsProvider => {
  if (typeof credentials === "function") return credentials
  if (credentials !== undefined) return () => Promise.resolve(credentials)
  return defaultProvider()
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

const parse = (text: string): unknown => {
  if (text.length === 0) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const readBody = (stream: unknown): Promise<string> =>
  new Promise((resolve, reject) => {
    const body = stream as NodeJS.ReadableStream | undefined
    if (body === undefined || typeof body.on !== "function") return resolve("")
    const chunks: Array<Buffer> = []
    body.on("data", (chunk: Buffer) => chunks.push(chunk))
    body.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    body.on("error", reject)
  })

/** What a failed status says, in one line: `404 index_not_found_exception: no such index [x]`. */
const statusMessage = (statusCode: number, body: unknown): { message: string; errorType?: string } => {
  const error = field(body, "error")
  const type = field(error, "type")
  const reason = field(error, "reason")
  if (typeof type === "string") {
    return { message: `${statusCode} ${type}: ${typeof reason === "string" ? reason : ""}`, errorType: type }
  }
  const text = typeof body === "string" ? body : body === undefined ? "" : JSON.stringify(body)
  return { message: `${statusCode} ${typeof error === "string" ? error : text}`.slice(0, 400) }
}

export const make = (options: Options): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(
        () =>
          new NodeHttpHandler({
            requestTimeout: options.requestTimeoutMillis ?? 30_000,
            connectionTimeout: 10_000,
            throwOnRequestTimeout: true
          })
      ),
      (handler) => Effect.sync(() => handler.destroy())
    ),
    (handler): Service => {
      const endpoint = new URL(options.node)
      const node = options.node.replace(/\/+$/, "")
      const basePath = endpoint.pathname.replace(/\/+$/, "")
      const signer =
        options.auth === "none"
          ? undefined
          : new SignatureV4({
              service: options.service ?? "es",
              region: options.region,
              credentials: credentialsProvider(options.credentials),
              sha256: Sha256
            })

      const send = async (request: Request, signal: AbortSignal): Promise<Response> => {
        const payload =
          request.ndjson ?? (request.body === undefined ? undefined : JSON.stringify(request.body))
        const query: Record<string, string> = {}
        for (const [key, value] of Object.entries(request.querystring ?? {})) {
          if (value !== undefined) query[key] = String(value)
        }
        const headers: Record<string, string> = {
          host: endpoint.host,
          accept: "application/json",
          // Serverless requires the payload's hash as a header; a managed domain accepts it.
          "x-amz-content-sha256": createHash("sha256")
            .update(payload ?? "", "utf8")
            .digest("hex")
        }
        if (payload !== undefined) {
          headers["content-type"] = request.ndjson !== undefined ? "application/x-ndjson" : "application/json"
          headers["content-length"] = String(Buffer.byteLength(payload, "utf8"))
        }
        const unsigned = new HttpRequest({
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          ...(endpoint.port === "" ? {} : { port: Number(endpoint.port) }),
          method: request.method,
          path: `${basePath}${request.path}`,
          query,
          headers,
          ...(payload === undefined ? {} : { body: payload })
        })
        const signed = signer === undefined ? unsigned : await signer.sign(unsigned)
        const { response } = await handler.handle(signed as HttpRequest, {
          abortSignal: signal,
          ...(request.timeoutMillis === undefined ? {} : { requestTimeout: request.timeoutMillis })
        })
        const text = request.method === "HEAD" ? "" : await readBody(response.body)
        return { statusCode: response.statusCode, body: parse(text) }
      }

      const request = (params: Request): Effect.Effect<Response, OpenSearchRequestError> =>
        Effect.tryPromise({
          try: (signal) => send(params, signal),
          catch: (cause) => {
            const name = String(field(cause, "name") ?? "Error")
            const message = String(field(cause, "message") ?? cause)
            const reason: ErrorReason =
              name === "TimeoutError"
                ? "Timeout"
                : name === "CredentialsProviderError" || /credential/i.test(message)
                  ? "Credentials"
                  : "Connection"
            return new OpenSearchRequestError({
              reason,
              method: params.method,
              path: params.path,
              message: `${params.method} ${params.path}: ${name}: ${message}`,
              cause
            })
          }
        }).pipe(
          Effect.flatMap((response) => {
            if (response.statusCode < 400 || params.accept?.includes(response.statusCode)) {
              return Effect.succeed(response)
            }
            const { message, errorType } = statusMessage(response.statusCode, response.body)
            return Effect.fail(
              new OpenSearchRequestError({
                reason: "Status",
                method: params.method,
                path: params.path,
                message: `${params.method} ${params.path}: ${message}`,
                statusCode: response.statusCode,
                body: response.body,
                ...(errorType === undefined ? {} : { errorType })
              })
            )
          })
        )

      return { node, request }
    }
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
