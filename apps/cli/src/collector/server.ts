/**
 * The collector contract (`CollectorHttp` in `@spillway/core`) served by a Node HTTP server
 * through `effect/http` and `@effect/platform-node`'s `NodeHttpServer`: this module only turns a
 * Node request into a `CollectorHttp.Request` and a `CollectorHttp.Response` back into bytes.
 *
 * The body is read off the socket as it arrives and counted: at the contract's limit the collector
 * stops keeping it and answers 413, so an oversized body costs bandwidth but never memory. The
 * rest of that body is drained and discarded rather than the connection reset, because a reset
 * with unread bytes in the socket can destroy the 413 before the client reads it; once the 413 is
 * sent, `NodeHttpServer` keeps draining up to 256 KiB more and then ends the connection
 * gracefully (FIN, not RST), so a client that never stops sending cannot hold it forever.
 *
 * Given `localRoutes` (`spillway dev`'s read API on memory backends), the server sends every
 * path under their prefix to them instead; without them those paths reach the collector, which
 * answers 404 as for any unknown path.
 */
import { createServer, type IncomingMessage } from "node:http"
import type { Http2ServerRequest } from "node:http2"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { type ApiKeys, CollectorHttp, type FallbackQueue, type RecordStream } from "@spillway/core"
import { Effect, Layer, type Scope } from "effect"
import { type HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"

/** Reads the whole body, or stops at `limit` bytes, discarding the rest. */
const readBody =
  (source: IncomingMessage | Http2ServerRequest): CollectorHttp.BodyReader =>
  (limit) =>
    Effect.callback((resume) => {
      const chunks: Array<Buffer> = []
      let total = 0
      const stop = () => {
        source.off("data", onData)
        source.off("end", onEnd)
        source.off("error", onError)
        source.off("close", onClose)
      }
      const onData = (chunk: Buffer) => {
        total += chunk.byteLength
        if (total <= limit) {
          chunks.push(chunk)
          return
        }
        stop()
        source.resume()
        resume(Effect.fail(new CollectorHttp.BodyTooLarge({ limit })))
      }
      const onEnd = () => {
        stop()
        resume(Effect.succeed(Buffer.concat(chunks)))
      }
      const onError = (e: Error) => {
        stop()
        resume(Effect.fail(new CollectorHttp.BodyUnreadable({ message: e.message })))
      }
      const onClose = () => {
        stop()
        resume(Effect.fail(new CollectorHttp.BodyUnreadable({ message: "the connection closed mid-body" })))
      }
      source.on("data", onData)
      source.once("end", onEnd)
      source.once("error", onError)
      source.once("close", onClose)
      return Effect.sync(stop)
    })

export const fromServerRequest = (request: HttpServerRequest.HttpServerRequest): CollectorHttp.Request => ({
  method: request.method,
  path: request.url,
  headers: request.headers,
  body: readBody(NodeHttpServerRequest.toIncomingMessage(request))
})

/** A JSON answer: the collector's (`CollectorHttp.Response`) or one of the local routes'. */
export interface JsonResponse {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>
  /** Serialized as JSON; absent, an empty body. */
  readonly body: unknown
}

export const toServerResponse = (response: JsonResponse): HttpServerResponse.HttpServerResponse => {
  const { "content-type": contentType, ...headers } = response.headers
  if (response.body === undefined) return HttpServerResponse.empty({ status: response.status, headers })
  return HttpServerResponse.text(JSON.stringify(response.body), {
    status: response.status,
    headers,
    contentType: contentType ?? "application/json; charset=utf-8"
  })
}

export interface Config extends CollectorHttp.Options {
  /** @default "127.0.0.1" */
  readonly host?: string
  /** 0 picks a free port. */
  readonly port: number
  /** Called with every answer of the collector, e.g. to count accepted records. */
  readonly onResponse?: (response: CollectorHttp.Response) => Effect.Effect<void>
  /** Routes served next to the collector, under their own prefix (the dev read API). @default none */
  readonly localRoutes?: LocalRoutes | undefined
}

/** Routes served on the collector's port for every path equal to `prefix` or under `prefix/`. */
export interface LocalRoutes {
  readonly prefix: string
  /** Answers one request; never fails. `path` keeps its query string, still percent-encoded. */
  readonly handle: (request: {
    readonly method: string
    readonly path: string
  }) => Effect.Effect<JsonResponse>
}

const isUnder = (prefix: string, url: string): boolean => {
  const query = url.indexOf("?")
  const path = query === -1 ? url : url.slice(0, query)
  return path === prefix || path.startsWith(`${prefix}/`)
}

export interface Listening {
  readonly host: string
  readonly port: number
  readonly url: string
}

/** What the collector function's layer provides: the key store, the stream and the fallback queue. */
export type Services = ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue

/** Listens until the scope closes; closing stops accepting and waits for requests in progress. */
export const serve = <E>(
  config: Config,
  collector: Layer.Layer<Services, E>
): Effect.Effect<Listening, HttpServerError.ServeError | E, Scope.Scope> =>
  Effect.gen(function* () {
    // The collector function's services, built once for every request, as its runtime would be.
    const context = yield* Layer.build(collector)
    const host = config.host ?? "127.0.0.1"
    const server = yield* NodeHttpServer.make(() => createServer(), { host, port: config.port })
    const onResponse = config.onResponse ?? (() => Effect.void)
    const local = config.localRoutes
    const app = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (local !== undefined && isUnder(local.prefix, request.url)) {
        return toServerResponse(yield* local.handle({ method: request.method, path: request.url }))
      }
      return yield* CollectorHttp.handle(fromServerRequest(request), config).pipe(
        Effect.tap(onResponse),
        Effect.map(toServerResponse),
        Effect.provideContext(context)
      )
    })
    yield* server.serve(app)
    const address = server.address
    const port = address._tag === "UnixPathAddress" ? config.port : address.port
    return { host, port, url: `http://${host}:${port}` }
  })
