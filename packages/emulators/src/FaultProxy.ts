/**
 * A loopback HTTP proxy in front of an emulator, for the failures emulators never produce:
 * per-entry throttling inside a 200, whole-call 503s, expired iterators, reset connections,
 * records lost to retention. It speaks the AWS JSON protocols (the operation comes from
 * `X-Amz-Target`); an interceptor decides per request whether to forward it as is, answer it
 * itself, forward a rewritten body and rewrite the answer, or drop the connection.
 *
 * Emulators ignore signatures, so re-serialized bodies need no re-signing. Listens on 127.0.0.1
 * with a port the OS picks; `close` ends open connections too. `scoped` ties a proxy to a scope.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { Effect, type Scope } from "effect"

export interface Intercepted {
  /** `PutRecords`, `SendMessageBatch`, ...: the part of `X-Amz-Target` after the last dot. */
  readonly operation: string
  /** The parsed JSON body (`undefined` when it is not JSON). */
  readonly body: unknown
}

export type Action =
  | { readonly _tag: "Forward" }
  | {
      readonly _tag: "Respond"
      readonly status: number
      readonly body: unknown
      readonly headers?: Readonly<Record<string, string>>
    }
  | {
      readonly _tag: "Rewrite"
      readonly body: unknown
      /** Rewrites a 2xx JSON answer of the target; other answers pass through. */
      readonly response?: (body: unknown) => unknown
    }
  /** Destroys the connection without an answer, as a reset keep-alive socket does. */
  | { readonly _tag: "Reset" }

export type Interceptor = (request: Intercepted) => Action

export interface FaultProxy {
  readonly endpoint: string
  readonly setInterceptor: (interceptor: Interceptor | undefined) => void
  /** Requests seen, for one operation or all of them. */
  readonly requests: (operation?: string) => number
  readonly close: () => Promise<void>
}

export const forward: Action = { _tag: "Forward" }

const readBody = (stream: NodeJS.ReadableStream): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    stream.on("data", (chunk: Buffer) => chunks.push(chunk))
    stream.on("end", () => resolve(Buffer.concat(chunks)))
    stream.on("error", reject)
  })

const parseJson = (buffer: Buffer): unknown => {
  try {
    return buffer.length === 0 ? undefined : JSON.parse(buffer.toString("utf8"))
  } catch {
    return undefined
  }
}

const hopByHop = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"])

const outgoingHeaders = (
  headers: IncomingHttpHeaders,
  length: number
): Record<string, string | Array<string>> => {
  const result: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) result[name] = value
  }
  result["content-length"] = String(length)
  return result
}

export const start = (target: string): Promise<FaultProxy> => {
  const targetUrl = new URL(target)
  let interceptor: Interceptor | undefined
  const counts = new Map<string, number>()
  const sockets = new Set<Socket>()

  const relay = (
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const upstream = httpRequest(
        {
          hostname: targetUrl.hostname,
          port: targetUrl.port,
          method,
          path,
          headers: { ...outgoingHeaders(headers, body.length), host: targetUrl.host }
        },
        (response) => {
          readBody(response).then(
            (responseBody) =>
              resolve({ status: response.statusCode ?? 502, headers: response.headers, body: responseBody }),
            reject
          )
        }
      )
      upstream.on("error", reject)
      upstream.end(body)
    })

  const server = createServer((req, res) => {
    readBody(req)
      .then(async (raw) => {
        const target = String(req.headers["x-amz-target"] ?? "")
        const operation = target.slice(target.lastIndexOf(".") + 1)
        counts.set(operation, (counts.get(operation) ?? 0) + 1)
        const body = parseJson(raw)
        const action = interceptor?.({ operation, body }) ?? forward
        if (action._tag === "Reset") {
          req.socket.destroy()
          return
        }
        if (action._tag === "Respond") {
          const payload = Buffer.from(JSON.stringify(action.body), "utf8")
          res.writeHead(action.status, {
            "content-type": String(req.headers["content-type"] ?? "application/json"),
            "content-length": String(payload.length),
            "x-amzn-requestid": "fault-proxy",
            ...action.headers
          })
          res.end(payload)
          return
        }
        const outgoing = action._tag === "Rewrite" ? Buffer.from(JSON.stringify(action.body), "utf8") : raw
        const answer = await relay(req.method ?? "POST", req.url ?? "/", req.headers, outgoing)
        let payload = answer.body
        if (action._tag === "Rewrite" && action.response !== undefined && answer.status < 300) {
          payload = Buffer.from(JSON.stringify(action.response(parseJson(answer.body))), "utf8")
        }
        res.writeHead(answer.status, outgoingHeaders(answer.headers, payload.length))
        res.end(payload)
      })
      .catch((error: unknown) => {
        res.writeHead(502, { "content-type": "text/plain" })
        res.end(`fault proxy: ${String(error)}`)
      })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        endpoint: `http://127.0.0.1:${port}`,
        setInterceptor: (next) => {
          interceptor = next
        },
        requests: (operation) =>
          operation === undefined
            ? [...counts.values()].reduce((a, b) => a + b, 0)
            : (counts.get(operation) ?? 0),
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
      })
    })
  })
}

/** A proxy for the life of the current scope. */
export const scoped = (target: string): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(target)),
    (proxy) => Effect.promise(() => proxy.close())
  )
