/** The S3 spool on fauxqs: stored before `put` answers, listed oldest first, read back, removed; damage reported. */
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { describe, expect, it } from "@effect/vitest"
import type { MetricSpool } from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { Effect } from "effect"
import * as S3Client from "../src/S3Client.js"
import * as S3MetricSpool from "../src/S3MetricSpool.js"
import { serversForFile } from "./support/servers.js"
import { uniqueName } from "./support/streams.js"

const servers = serversForFile("fauxqs")
const { credentials, region } = Emulators

const entry = (metric: string, firstFailedAt: number): MetricSpool.Entry => ({
  series: [
    { metric, kind: "count", tags: ["currency:EUR"], points: [{ timestamp: 1_795_766_400, value: 3 }] }
  ],
  firstFailedAt,
  attempts: 1,
  reason: "Unavailable (503): outage",
  source: "/aws/lambda/clickstream-metrics 2026/12/02/[$LATEST]abc"
})

describe("S3MetricSpool on fauxqs", () => {
  it.live(
    "stores entries, lists the pending ones oldest first, reads them back, removes them; parked ones are not listed",
    () =>
      Effect.gen(function* () {
        const bucket = uniqueName("spool").toLowerCase()
        yield* servers.fauxqs.createBucket(bucket).pipe(Effect.orDie)
        const client = yield* S3Client.make({
          region,
          credentials,
          endpoint: servers.fauxqs.endpoint,
          forcePathStyle: true
        })
        const spool = yield* S3MetricSpool.make({ bucket, prefix: "spool/" }).pipe(
          Effect.provideService(S3Client.S3Client, client)
        )
        const first = yield* spool.put(entry("a", 1))
        yield* Effect.sleep("5 millis")
        const second = yield* spool.put(entry("b", 2))
        yield* spool.put(entry("c", 3), "parked")
        expect(first).toMatch(/^spool\/pending\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d{15}-[0-9a-f-]{36}\.json\.gz$/)
        const listed = yield* spool.list(10)
        expect(listed.map((i) => i.key)).toEqual([first, second])
        expect(listed[0]!.spooledAt).toBeLessThanOrEqual(listed[1]!.spooledAt)
        expect(yield* spool.read(second)).toEqual(entry("b", 2))
        yield* spool.remove(first)
        expect((yield* spool.list(10)).map((i) => i.key)).toEqual([second])

        yield* Effect.promise(() =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: "spool/pending/2026/12/02/00/000000000000001-x.json.gz",
              Body: "not gzip"
            })
          )
        )
        const damaged = yield* Effect.flip(
          spool.read("spool/pending/2026/12/02/00/000000000000001-x.json.gz")
        )
        expect(damaged.reason).toBe("Corrupt")
        const missing = yield* Effect.flip(spool.read("spool/pending/none.json.gz"))
        expect(missing.reason).toBe("NotFound")
      })
  )
})
