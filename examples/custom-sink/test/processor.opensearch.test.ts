/**
 * The example's processor as deployed: `Processor.make(Pipeline.processor)` configured through
 * its environment, writing into a real OpenSearch node (the run's shared one) and into S3 on
 * fauxqs. A Kinesis event lands in both, with the same documents; a record the index refuses (a
 * string where it mapped a number) is reported alone, for the event source mapping to retry and
 * send on; the same event again is skipped by the warm dedup cache, in both sinks.
 *
 * Both the SigV4-signed OpenSearch client and the S3 client take credentials from the SDK's
 * default chain, as in Lambda; the test gives them placeholders in `process.env` (neither server
 * checks signatures).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as S3Client from "@spillway/aws/S3Client"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { Processor } from "@spillway/lambdas"
import { EventFixtures, Harness, LambdaContext } from "@spillway/testing"
import { Effect } from "effect"
import * as Pipeline from "../src/Pipeline.js"
import { documentsIn, fauxqsForFile, freshBucket } from "./support/bucket.js"

const fauxqs = fauxqsForFile()
const alias = `${testNamespace(import.meta.filename)}-lake`

const placeholders = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" } as const
const saved = new Map<string, string | undefined>()
beforeAll(() => {
  for (const [name, value] of Object.entries(placeholders)) {
    saved.set(name, process.env[name])
    process.env[name] = value
  }
})
afterAll(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
})

/** The documents under the alias, id → `_source`, after a refresh. */
const indexed = Effect.promise(async () => {
  await fetch(`${node().url}/${alias}/_refresh`, { method: "POST" })
  const response = await fetch(`${node().url}/${alias}/_search`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ size: 1000, query: { match_all: {} } })
  })
  const body = (await response.json()) as { hits: { hits: Array<{ _id: string; _source: unknown }> } }
  return new Map(body.hits.hits.map((hit) => [hit._id, hit._source]))
})

describe("the custom-sink processor on OpenSearch and S3", () => {
  it.live("writes each record to both, reports the one the index refuses, and skips what it wrote", () =>
    Effect.gen(function* () {
      const bucket = yield* freshBucket(fauxqs())
      const lines: Array<string> = []
      const handler = Processor.make(Pipeline.processor, {
        env: {
          AWS_REGION: "us-east-1",
          OPENSEARCH_ENDPOINT: node().url,
          OPENSEARCH_INDEX: alias,
          AWS_ENDPOINT_URL_S3: fauxqs().endpoint,
          AWS_S3_FORCE_PATH_STYLE: "true",
          CUSTOM_SINK_BUCKET: bucket,
          CUSTOM_SINK_PREFIX: "lake/"
        },
        shutdown: false,
        output: (line) => lines.push(line)
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
      const invoke = (event: unknown) =>
        Effect.flatMap(LambdaContext.make({ timeout: "1 minute" }), (context) =>
          Effect.promise(() => handler(event, context))
        )
      const s3 = yield* S3Client.make(fauxqs().s3)
      const inBucket = Effect.map(
        documentsIn(s3, bucket, "lake/"),
        (documents) => new Map(documents.map((d) => [d.id, d.body]))
      )

      const first = Harness.records(20, "e2e").map((r, i) => ({ ...r, payload: { value: i } }))
      expect(yield* invoke(EventFixtures.kinesisEventOfRecords(first))).toEqual({ batchItemFailures: [] })
      const index = yield* indexed
      expect([...index.keys()].sort()).toEqual(first.map((r) => r.id).sort())
      expect(yield* inBucket).toEqual(index)

      const poison = Harness.record("e2e-poison", { value: "not a number" })
      const second = EventFixtures.kinesisEventOfRecords([...first, poison], {
        firstSequenceNumber: 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_600_000n
      })
      const poisonSequence = second.Records[20]!.kinesis.sequenceNumber
      expect(yield* invoke(second)).toEqual({ batchItemFailures: [{ itemIdentifier: poisonSequence }] })
      expect((yield* indexed).has("e2e-poison")).toBe(false)
      const summary = lines
        .map((line) => JSON.parse(line) as { message?: string })
        .find((log) => log.message?.startsWith("processed 21 records"))
      expect(summary?.message).toBe(
        "processed 21 records: 0 written, 20 duplicates skipped, 1 failed, 0 unfinished"
      )
      // fanOut is not a transaction: S3 took its copy of the refused document.
      const afterPoison = yield* inBucket
      expect([...afterPoison.keys()].sort()).toEqual([...first.map((r) => r.id), "e2e-poison"].sort())
    })
  )
})
