/**
 * The deployed code end to end: the built bundles (`buildBundles`, as `npm run build` builds
 * them), each run by AWS's runtime client in a child process against a test Runtime API
 * (`LambdaProcess`), carry records from an HTTP request to a real OpenSearch node:
 *
 *   API Gateway HTTP API event → collector bundle → Kinesis (kinesalite behind a FaultProxy that
 *   refuses a fixed third of the entries with ProvisionedThroughputExceeded) | SQS fallback queue
 *   (fauxqs) → redriver bundle → Kinesis → processor bundle (Lambda's Kinesis event source mapping
 *   emulated by `KinesisEventSource`: bisect, partial batch response, 3 retries, on-failure
 *   records to an SQS queue on fauxqs) → OpenSearch; the on-failure queue → failure-reprocessor
 *   bundle → OpenSearch. API keys come from a Secrets Manager secret on moto.
 *
 * What it shows:
 * - every valid record is indexed exactly once: the alias holds exactly the ids sent, each
 *   document as sent, and the count equals the number of ids;
 * - the processor's first batch is killed mid-batch (SIGKILL at the Runtime API deadline, as
 *   Lambda kills a timed-out sandbox) after its first `_bulk` reached OpenSearch and before the
 *   process read the answer; the mapping bisects and retries it on a fresh process, and those
 *   documents are written twice (`_version` 2) but stored once, the rest of the batch once;
 * - a poison record (a string in `payload.value`, which the index maps as `long`: OpenSearch's own
 *   400 `mapper_parsing_exception`) is reported alone by the processor and ends, after the retries,
 *   as one on-failure record whose range starts at it, while everything else is indexed;
 * - the failure reprocessor keeps that message while the mapping still refuses the record, and
 *   once the mapping is fixed indexes the record and reports the message done.
 *
 * The fix, a choice: `payload.value` gets `ignore_malformed: true` on the live indices
 * (`PUT <alias>/_mapping`, allowed on an existing field), so the poison document is stored with its
 * `_source` as sent while its unparseable value is left out of the field's index; no index is
 * deleted and nothing already indexed is touched. (A new index template would only shape indices
 * created later, and the processor puts its own template back at each cold start.)
 *
 * How the kill is brought about: a short timeout alone does not do it, because the processor
 * keeps to its deadline (it stops starting slices, and cuts off the one running, `DEADLINE_MARGIN_MS`
 * before it) and answers a partial batch response in time. What Lambda kills is a function that
 * overruns its deadline anyway — an event loop that stalls, a call outside the deadline's reach —
 * and the test stands for that by freezing the process (SIGSTOP) right after the node answered its
 * first `_bulk`, for one invocation given a 6 s timeout. The Runtime API's deadline then passes,
 * and `LambdaProcess` kills it as Lambda does.
 *
 * Signing: the bundles sign their requests with SigV4 (service `es`) as deployed (the default
 * `OPENSEARCH_AUTH=sigv4`), with the runtime's placeholder credentials; the test node runs
 * without the security plugin and ignores the signature. The proxy in front of the node checks
 * that every request the processor sent was signed.
 *
 * The bundles are built into a folder of this file's own, not `apps/lambdas/dist`: bundles-build
 * rebuilds `dist` in the same run, and a cold start must not find its bundle half written.
 * Waits are bounded and poll a state (the mapping idle, a queue empty); nothing is timed.
 */
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { CreateSecretCommand } from "@aws-sdk/client-secrets-manager"
import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient
} from "@aws-sdk/client-sqs"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  KinesisClient,
  KinesisRecordStream,
  KinesisShardSource,
  SecretsManagerClient,
  SqsClient,
  SqsFailureDestination
} from "@spillway/aws"
import { ApiKeys, type LambdaEvents, OnFailure } from "@spillway/core"
import { Emulators, FaultProxy, Moto } from "@spillway/emulators"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { KinesisEventSource, MemoryPipeline } from "@spillway/memory"
import { Effect, Schema } from "effect"
import { buildBundles, discoverFunctions } from "../scripts/bundles.js"
import * as LambdaProcess from "./support/LambdaProcess.js"

const ns = testNamespace(import.meta.filename)
/** The alias the processor writes behind; its daily index and template carry the namespace too. */
const alias = ns
const { region } = Emulators
const apiKey = "e2e-key"
const tenant = "acme"

const functions = ["collector", "redriver", "processor", "failure-reprocessor"] as const
let bundlesDir = ""

beforeAll(async () => {
  bundlesDir = mkdtempSync(join(tmpdir(), "spillway-e2e-bundles-"))
  await buildBundles(
    discoverFunctions().filter((fn) => (functions as ReadonlyArray<string>).includes(fn.name)),
    { outdir: bundlesDir }
  )
}, 120_000)
afterAll(() => rmSync(bundlesDir, { recursive: true, force: true }))

// ---- the records ------------------------------------------------------------------------------

interface Sent {
  readonly id: string
  readonly type: string
  readonly timestamp: string
  readonly payload: Readonly<Record<string, unknown>>
}

/** One UTC day for every record: one daily index, where the first values map `payload.value` as `long`. */
const record = (id: string, n: number, value: unknown = n): Sent => ({
  id,
  type: "cpu",
  timestamp: `2026-11-24T10:${String(Math.floor(n / 60) % 60).padStart(2, "0")}:${String(n % 60).padStart(2, "0")}.000Z`,
  payload: { value, host: `web-${n % 5}` }
})

/** A fixed third of the ids, by hash (Kinesis spreads keys over shards by MD5 too, so both shards get some). */
const isHot = (id: string) => createHash("md5").update(id).digest()[0]! % 3 === 0

const poisonId = "e2e-poison"
const poisonValue = "not a number"

// ---- Lambda's side of the functions -------------------------------------------------------------

/** An API Gateway HTTP API (payload format 2.0) event for `POST /v1/telemetry`; gzip bodies arrive base64. */
const httpApiEvent = (records: ReadonlyArray<Sent>, options: { readonly gzip?: boolean } = {}) => {
  const json = JSON.stringify(records)
  const now = new Date()
  return {
    version: "2.0",
    routeKey: "POST /v1/telemetry",
    rawPath: "/v1/telemetry",
    rawQueryString: "",
    headers: {
      "content-type": "application/json",
      "x-api-key": apiKey,
      host: "e2e0api.execute-api.us-east-1.amazonaws.com",
      ...(options.gzip === true ? { "content-encoding": "gzip" } : {})
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "e2e0api",
      domainName: "e2e0api.execute-api.us-east-1.amazonaws.com",
      domainPrefix: "e2e0api",
      http: {
        method: "POST",
        path: "/v1/telemetry",
        protocol: "HTTP/1.1",
        sourceIp: "203.0.113.7",
        userAgent: "spillway-e2e"
      },
      requestId: `req-${now.getTime()}`,
      routeKey: "POST /v1/telemetry",
      stage: "$default",
      time: now.toISOString(),
      timeEpoch: now.getTime()
    },
    body: options.gzip === true ? gzipSync(json).toString("base64") : json,
    isBase64Encoded: options.gzip === true
  }
}

/** The SQS event record Lambda's SQS mapping builds for a received message. */
const sqsEventRecord = (message: Message, queueArn: string): LambdaEvents.SqsEventRecord => {
  const attributes: Partial<Record<string, string>> = message.Attributes ?? {}
  const body = message.Body ?? ""
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body,
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? "000000000000",
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now())
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? createHash("md5").update(body).digest("hex"),
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region
  }
}

const receive = (sqs: SQSClient, queueUrl: string, visibilityTimeoutSeconds: number) =>
  Effect.promise(() =>
    sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ["All"],
        VisibilityTimeout: visibilityTimeoutSeconds,
        WaitTimeSeconds: 0
      })
    )
  ).pipe(Effect.map((output) => output.Messages ?? []))

const deleteMessage = (sqs: SQSClient, queueUrl: string, message: Message) =>
  Effect.promise(() =>
    sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }))
  )

/** A bundle under the runtime client for the life of the scope. */
const lambda = (name: (typeof functions)[number], env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      LambdaProcess.start({ bundleDir: join(bundlesDir, name), region, timeoutSeconds: 15, env })
    ),
    (fn) => Effect.promise(() => fn.close())
  )

const failedIds = (invocation: LambdaProcess.Invocation): Array<string> => {
  expect(invocation.kind, JSON.stringify(invocation.body)).toBe("response")
  return (invocation.body as LambdaEvents.BatchResponse).batchItemFailures.map((f) => f.itemIdentifier)
}

// ---- the faults -------------------------------------------------------------------------------

/**
 * PutRecords through the FaultProxy while `on`: hot entries are refused per entry with
 * ProvisionedThroughputExceeded inside a 200 (removed from the request first, so they are not
 * stored, as on AWS), the others stored.
 */
const throttling = () => {
  const state = { on: true, refused: new Set<string>() }
  const interceptor: FaultProxy.Interceptor = ({ operation, body }) => {
    if (operation !== "PutRecords" || !state.on) return FaultProxy.forward
    const request = body as { readonly Records: ReadonlyArray<{ readonly PartitionKey: string }> }
    const refused = request.Records.map((entry) => isHot(entry.PartitionKey))
    if (!refused.includes(true)) return FaultProxy.forward
    request.Records.forEach((entry, i) => {
      if (refused[i]) state.refused.add(entry.PartitionKey)
    })
    const merge = (answer: unknown) => {
      const stored = (answer as { readonly Records?: ReadonlyArray<unknown> }).Records ?? []
      let next = 0
      return {
        FailedRecordCount: refused.filter(Boolean).length,
        Records: refused.map((isRefused) =>
          isRefused
            ? {
                ErrorCode: "ProvisionedThroughputExceededException",
                ErrorMessage: "Rate exceeded for shard in stream under account 000000000000."
              }
            : stored[next++]
        )
      }
    }
    const kept = request.Records.filter((_, i) => !refused[i])
    return kept.length === 0
      ? { _tag: "Respond", status: 200, body: merge({ Records: [] }) }
      : { _tag: "Rewrite", body: { ...request, Records: kept }, response: merge }
  }
  return { state, interceptor }
}

interface SinkRequest {
  readonly method: string
  readonly path: string
  /** Carries a SigV4 `Authorization` for service `es` in the test region. */
  readonly signed: boolean
}

const sigv4 = new RegExp(`^AWS4-HMAC-SHA256 Credential=[^/]+/\\d{8}/${region}/es/aws4_request, `)
const hopByHop = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"])
const forwardable = (headers: IncomingHttpHeaders, length: number) => {
  const result: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) result[name] = value
  }
  result["content-length"] = String(length)
  return result
}

const readAll = (stream: NodeJS.ReadableStream): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    stream.on("data", (chunk: Buffer) => chunks.push(chunk))
    stream.on("end", () => resolve(Buffer.concat(chunks)))
    stream.on("error", reject)
  })

/** Sends a request on to `upstream` and reads the whole answer. */
const relay = (
  upstream: URL,
  req: { readonly method: string; readonly path: string; readonly headers: IncomingHttpHeaders },
  body: Buffer
) =>
  new Promise<{ readonly status: number; readonly headers: IncomingHttpHeaders; readonly payload: Buffer }>(
    (resolve, reject) => {
      const forward = httpRequest(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.path,
          headers: { ...forwardable(req.headers, body.length), host: upstream.host }
        },
        (answer) =>
          readAll(answer).then(
            (payload) => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, payload }),
            reject
          )
      )
      forward.on("error", reject)
      forward.end(body)
    }
  )

/** The `_id`s of a `_bulk` body (NDJSON: an action line, then the document). */
const bulkIds = (body: Buffer): Array<string> =>
  body
    .toString("utf8")
    .split("\n")
    .filter((line) => line.startsWith('{"index"'))
    .map((line) => (JSON.parse(line) as { index: { _id: string } }).index._id)

/**
 * A loopback proxy in front of the OpenSearch node, for the processor: it records every request,
 * and once armed with a pid, stops that process (SIGSTOP) when the node has answered the next
 * `_bulk`, before the answer is passed on. The documents of that request are in the index; the
 * process never learns it, and stays stopped until the Runtime API's deadline gets it killed.
 */
const sinkProxy = (target: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const upstream = new URL(target)
      const requests: Array<SinkRequest> = []
      let stopPid: number | undefined
      let stoppedAfter: ReadonlyArray<string> | undefined
      const sockets = new Set<Socket>()
      const server = createServer(async (req, res) => {
        const path = req.url ?? "/"
        try {
          const body = await readAll(req)
          const method = req.method ?? "GET"
          requests.push({ method, path, signed: sigv4.test(String(req.headers.authorization ?? "")) })
          const answer = await relay(upstream, { method, path, headers: req.headers }, body)
          if (stopPid !== undefined && /\/_bulk(\?|$)/.test(path)) {
            const pid = stopPid
            stopPid = undefined
            try {
              process.kill(pid, "SIGSTOP")
              stoppedAfter = bulkIds(body)
            } catch {
              // No such process: nothing is stopped, and the test says the batch was not killed.
            }
          }
          res.writeHead(answer.status, forwardable(answer.headers, answer.payload.length))
          res.end(answer.payload)
        } catch (error) {
          if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" })
          res.end(`sink proxy: ${String(error)}`)
        }
      })
      server.on("connection", (socket) => {
        // A client killed while its answer is on the way must not fail the proxy.
        socket.on("error", () => {})
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      return {
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests,
        stopAtNextBulk: (pid: number | undefined) => {
          stopPid = pid
        },
        stoppedAfter: () => stoppedAfter,
        close: () =>
          new Promise<void>((resolve) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resolve())
          })
      }
    }),
    (proxy) => Effect.promise(() => proxy.close())
  )

// ---- OpenSearch, asked directly ------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: OpenSearch's JSON answers, only read by assertions that fail on a wrong shape
type Json = any
const http = (method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${node().url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as Json }
  })

interface Indexed {
  readonly id: string
  readonly index: string
  readonly version: number
  readonly source: Json
}

/** Every document under the alias after a refresh, and the alias's `_count`. */
const indexed = Effect.gen(function* () {
  yield* http("POST", `/${alias}/_refresh?ignore_unavailable=true`)
  const count = yield* http("GET", `/${alias}/_count?ignore_unavailable=true`)
  const found = yield* http("POST", `/${alias}/_search?ignore_unavailable=true`, {
    size: 10_000,
    version: true,
    query: { match_all: {} }
  })
  expect(found.status, JSON.stringify(found.body)).toBe(200)
  const documents = (found.body.hits.hits as Array<Json>).map(
    (hit): Indexed => ({ id: hit._id, index: hit._index, version: hit._version, source: hit._source })
  )
  return { count: count.body.count as number, documents }
})

/** Exactly `expected` under the alias: each id once, each document as sent, and nothing else. */
const expectIndexedOnce = (expected: ReadonlyArray<Sent>) =>
  Effect.gen(function* () {
    const { count, documents } = yield* indexed
    const ids = documents.map((d) => d.id).sort()
    expect(ids).toEqual(expected.map((s) => s.id).sort())
    expect(count).toBe(expected.length)
    const sent = new Map(expected.map((s) => [s.id, s]))
    for (const document of documents) {
      const original = sent.get(document.id)!
      expect(document.index).toBe(`${alias}-2026.11.24`)
      expect(document.source).toMatchObject({
        id: original.id,
        type: original.type,
        tenant,
        timestamp: original.timestamp,
        payload: original.payload
      })
    }
    return new Map(documents.map((d) => [d.id, d]))
  })

/** Polls `check` until it holds twice in a row (a stale read must not end a wait); fails after `ms`. */
const eventually = (what: string, check: Effect.Effect<boolean>, ms: number) =>
  Effect.gen(function* () {
    const until = Date.now() + ms
    let inARow = 0
    while (inARow < 2) {
      if (Date.now() > until) return yield* Effect.die(new Error(`${what}: not within ${ms} ms`))
      inARow = (yield* check) ? inARow + 1 : 0
      yield* Effect.sleep("100 millis")
    }
  })

// ---- the test -----------------------------------------------------------------------------------

describe("the bundles end to end, on emulators and a real OpenSearch node", () => {
  it.live(
    "an HTTP request's records reach OpenSearch exactly once: throttled ones parked and redriven, a batch killed at its deadline retried, a poison record reprocessed once the mapping is fixed",
    () =>
      Effect.gen(function* () {
        // ---- AWS on loopback ----------------------------------------------------------------
        const kinesalite = yield* Emulators.kinesalite
        const throttle = throttling()
        const kinesisProxy = yield* FaultProxy.scoped(kinesalite.endpoint)
        kinesisProxy.setInterceptor(throttle.interceptor)
        const streamName = `${ns}-stream`
        const streamArn = yield* Emulators.createStream(
          yield* Emulators.kinesisClient(kinesalite.client),
          streamName,
          2
        )
        const fauxqs = yield* Emulators.fauxqs
        const fallbackDlq = yield* fauxqs.createQueue("fallback-dlq")
        const fallback = yield* fauxqs.createQueue("fallback", {
          VisibilityTimeout: "30",
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: fallbackDlq.queueArn, maxReceiveCount: 5 })
        })
        const onFailureQueue = yield* fauxqs.createQueue("on-failure")
        const sqs = yield* SqsClient.make(fauxqs.sqs)
        const moto = yield* Moto.startOnNode()
        const secretId = "spillway/api-keys"
        const secrets = yield* SecretsManagerClient.make(moto.client)
        yield* Effect.promise(() =>
          secrets.send(
            new CreateSecretCommand({
              Name: secretId,
              SecretString: JSON.stringify([{ tenant, sha256: ApiKeys.hashKey(apiKey) }])
            })
          )
        )
        const sink = yield* sinkProxy(node().url)
        yield* Effect.addFinalizer(() =>
          Effect.all([
            http("DELETE", `/${alias}-*?ignore_unavailable=true`),
            http("DELETE", `/_index_template/${alias}-template`)
          ]).pipe(Effect.ignore)
        )

        // ---- the functions, configured as deployed ------------------------------------------
        const aws = {
          STREAM_ARN: streamArn,
          AWS_ENDPOINT_URL_KINESIS: kinesisProxy.endpoint,
          AWS_ENDPOINT_URL_SQS: fauxqs.endpoint
        }
        const collector = yield* lambda("collector", {
          ...aws,
          FALLBACK_QUEUE_URL: fallback.queueUrl,
          API_KEYS_SOURCE: "secretsmanager",
          API_KEYS_SECRET_ID: secretId,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint
        })
        const redriver = yield* lambda("redriver", { ...aws, FALLBACK_QUEUE_URL: fallback.queueUrl })
        const processor = yield* lambda("processor", {
          OPENSEARCH_ENDPOINT: sink.endpoint,
          OPENSEARCH_INDEX: alias
        })
        const failureReprocessor = yield* lambda("failure-reprocessor", {
          ...aws,
          OPENSEARCH_ENDPOINT: node().url,
          OPENSEARCH_INDEX: alias
        })

        // The processor's execution environment exists before the mapping's first batch (an
        // empty event: the runtime built, nothing written), so the batch to kill has a known pid.
        const warmUp = yield* Effect.promise(() => processor.invoke({ Records: [] }))
        expect(failedIds(warmUp)).toEqual([])

        // ---- 1. the collector: what Kinesis refuses is parked, nothing is lost --------------
        const requests = [0, 1, 2].map((r) =>
          Array.from({ length: 150 }, (_, i) => record(`e2e-${r}-${i}`, r * 150 + i))
        )
        const valid = requests.flat()
        for (const [r, body] of requests.entries()) {
          const answer = yield* Effect.promise(() => collector.invoke(httpApiEvent(body, { gzip: r === 1 })))
          expect(answer.kind, JSON.stringify(answer.body)).toBe("response")
          const response = answer.body as LambdaEvents.HttpResponse
          expect(response.statusCode, response.body).toBe(202)
          expect(JSON.parse(response.body ?? "")).toEqual({ accepted: 150, rejected: [], unavailable: [] })
        }
        // The keys are the secret's: any other is refused before anything is read or stored.
        const unknownKey = httpApiEvent(requests[0]!)
        const refused = yield* Effect.promise(() =>
          collector.invoke({ ...unknownKey, headers: { ...unknownKey.headers, "x-api-key": "not-a-key" } })
        )
        expect((refused.body as LambdaEvents.HttpResponse).statusCode).toBe(401)
        const hot = valid.filter((s) => isHot(s.id)).map((s) => s.id)
        expect(hot.length).toBeGreaterThan(0)
        expect([...throttle.state.refused].sort()).toEqual([...hot].sort())
        const parked = (yield* fauxqs.messageBodies("fallback")).flatMap((body) =>
          (JSON.parse(body) as { records: Array<{ record: Sent }> }).records.map((e) => e.record.id)
        )
        expect(parked.sort()).toEqual([...hot].sort())
        throttle.state.on = false

        // ---- 2. the processor mapping; its first batch is killed past its deadline ----------
        const kinesis = yield* KinesisClient.make(kinesalite.client)
        const withKinesis = Effect.provideService(KinesisClient.KinesisClient, kinesis)
        const stream = yield* withKinesis(KinesisRecordStream.make({ streamName, streamArn }))
        const shards = yield* withKinesis(KinesisShardSource.make({ streamName, streamArn }))
        const onFailure = yield* SqsFailureDestination.make({ queueUrl: onFailureQueue.queueUrl }).pipe(
          Effect.provideService(SqsClient.SqsClient, sqs)
        )
        const invocations: Array<LambdaProcess.Invocation & { readonly records: number }> = []
        let killNext = true
        const killedTimeoutMs = 6000
        const invokeProcessor = (event: LambdaEvents.KinesisEvent) =>
          Effect.promise(async () => {
            const kill = killNext
            killNext = false
            if (kill) sink.stopAtNextBulk(warmUp.pid)
            const outcome = await processor.invoke(event, kill ? { timeoutMs: killedTimeoutMs } : {})
            sink.stopAtNextBulk(undefined)
            invocations.push({ ...outcome, records: event.Records.length })
            return outcome
          }).pipe(
            // A timeout, a crash or an error is a function error to the mapping.
            Effect.flatMap((outcome) =>
              outcome.kind === "response" ? Effect.succeed(outcome.body) : Effect.fail(outcome.body)
            )
          )
        const mapping = yield* KinesisEventSource.start(shards, invokeProcessor, {
          ...MemoryPipeline.recommendedProcessorConfig,
          // Lambda polls a shard about once a second; 100 ms keeps the bisection and retries quick.
          pollIntervalMillis: 100,
          onFailure
        })
        yield* eventually("the mapping drains the stream", mapping.isIdle, 30_000)

        const killed = invocations.filter((i) => i.kind === "timeout")
        expect(killed).toHaveLength(1)
        expect(killed[0]).toMatchObject({ pid: warmUp.pid, exit: { signal: "SIGKILL" } })
        // Mid-batch: the first slice of 100 was in OpenSearch, the rest of the batch not yet.
        const writtenBeforeKill = sink.stoppedAfter() ?? []
        expect(writtenBeforeKill).toHaveLength(100)
        expect(killed[0]!.records).toBeGreaterThan(100)
        const afterKill = invocations[invocations.indexOf(killed[0]!) + 1]
        expect(afterKill).toMatchObject({ kind: "response", coldStart: true })
        expect(afterKill?.pid).not.toBe(warmUp.pid)
        const stored = valid.filter((s) => !isHot(s.id))
        yield* expectIndexedOnce(stored)

        // ---- 3. the redriver: Lambda's SQS mapping on the fallback queue --------------------
        const redriverUntil = Date.now() + 20_000
        while ((yield* fauxqs.messageBodies("fallback")).length > 0) {
          if (Date.now() > redriverUntil) {
            return yield* Effect.die(new Error("the fallback queue did not drain within 20 s"))
          }
          const messages = yield* receive(sqs, fallback.queueUrl, 5)
          if (messages.length === 0) {
            yield* Effect.sleep("100 millis")
            continue
          }
          const answer = yield* Effect.promise(() =>
            redriver.invoke({ Records: messages.map((m) => sqsEventRecord(m, fallback.queueArn)) })
          )
          const failed = new Set(failedIds(answer))
          for (const m of messages) {
            if (!failed.has(m.MessageId ?? "")) yield* deleteMessage(sqs, fallback.queueUrl, m)
          }
        }
        expect(yield* fauxqs.messageBodies("fallback-dlq")).toEqual([])
        yield* eventually("the mapping processes the redriven records", mapping.isIdle, 30_000)
        yield* expectIndexedOnce(valid)

        // ---- 4. a poison record: OpenSearch refuses it, the mapping gives up on its range ---
        const late = Array.from({ length: 40 }, (_, i) => record(`e2e-3-${i}`, 450 + i))
        const poison = record(poisonId, 490, poisonValue)
        const withPoison = [...late.slice(0, 20), poison, ...late.slice(20)]
        const answer = yield* Effect.promise(() => collector.invoke(httpApiEvent(withPoison)))
        expect(JSON.parse((answer.body as LambdaEvents.HttpResponse).body ?? "")).toEqual({
          accepted: 41,
          rejected: [],
          unavailable: []
        })
        yield* eventually("the mapping discards the poison record's range", mapping.isIdle, 30_000)
        const everyValid = [...valid, ...late]
        yield* expectIndexedOnce(everyValid)
        // The processor named it, with OpenSearch's own reason.
        const refusals = invocations
          .flatMap((i) => i.logs)
          .filter((line) => line.json?.recordId === poisonId && line.json.level === "WARN")
        expect(refusals.length).toBeGreaterThan(0)
        expect(String(refusals[0]?.json?.message)).toContain("400 mapper_parsing_exception")

        const counters = yield* mapping.counters
        expect(counters).toMatchObject({ batchesDiscarded: 1, onFailureRecordsSent: 1, onFailureDropped: 0 })
        expect(counters.bisections).toBeGreaterThan(0)
        expect(counters.partialFailures).toBeGreaterThan(0)
        const [body, ...others] = yield* fauxqs.messageBodies("on-failure")
        expect(others).toEqual([])
        const failure = yield* Schema.decodeUnknownEffect(OnFailure.OnFailureRecordJson)(body)
        expect(failure.requestContext.condition).toBe("RetryAttemptsExhausted")
        expect(failure.KinesisBatchInfo.streamArn).toBe(streamArn)
        const range = yield* stream.readRange(failure.KinesisBatchInfo)
        expect(range.map((r) => r.partitionKey)[0]).toBe(poisonId)
        expect(range).toHaveLength(failure.KinesisBatchInfo.batchSize)
        // The rest of the range was indexed by the attempts before the mapping gave up.
        const rest = range.slice(1).map((r) => r.partitionKey)
        expect(rest.every((id) => late.some((s) => s.id === id))).toBe(true)

        // ---- 5. the failure reprocessor, before and after the mapping is fixed --------------
        const reprocess = (visibilityTimeoutSeconds: number) =>
          Effect.gen(function* () {
            let messages: Array<Message> = []
            const until = Date.now() + 10_000
            while (messages.length === 0) {
              if (Date.now() > until) {
                return yield* Effect.die(new Error("the on-failure message did not come back within 10 s"))
              }
              messages = yield* receive(sqs, onFailureQueue.queueUrl, visibilityTimeoutSeconds)
              if (messages.length === 0) yield* Effect.sleep("100 millis")
            }
            expect(messages).toHaveLength(1)
            const message = messages[0]!
            const outcome = yield* Effect.promise(() =>
              failureReprocessor.invoke({ Records: [sqsEventRecord(message, onFailureQueue.queueArn)] })
            )
            return { message, failed: failedIds(outcome) }
          })

        const beforeFix = yield* reprocess(1)
        expect(beforeFix.failed).toEqual([beforeFix.message.MessageId])

        const mapped = yield* http("GET", `/${alias}/_mapping/field/payload.value`)
        expect(mapped.body[`${alias}-2026.11.24`].mappings["payload.value"].mapping.value.type).toBe("long")
        const fix = yield* http("PUT", `/${alias}/_mapping`, {
          properties: { payload: { properties: { value: { type: "long", ignore_malformed: true } } } }
        })
        expect(fix.status, JSON.stringify(fix.body)).toBe(200)

        const afterFix = yield* reprocess(30)
        expect(afterFix.message.MessageId).toBe(beforeFix.message.MessageId)
        expect(afterFix.message.Attributes?.ApproximateReceiveCount).toBe("2")
        expect(afterFix.failed).toEqual([])
        yield* deleteMessage(sqs, onFailureQueue.queueUrl, afterFix.message)
        expect(yield* fauxqs.messageBodies("on-failure")).toEqual([])

        // ---- every record, exactly once -----------------------------------------------------
        const final = yield* expectIndexedOnce([...everyValid, poison])
        expect(final.get(poisonId)?.source.payload.value).toBe(poisonValue)
        // Written before the kill and again after it: overwritten in place, never added twice.
        for (const id of writtenBeforeKill) expect(final.get(id)?.version).toBe(2)
        // The processor's requests were signed as deployed (the node does not check them).
        expect(sink.requests.length).toBeGreaterThan(0)
        expect(sink.requests.filter((r) => !r.signed)).toEqual([])
      }),
    90_000
  )
})
