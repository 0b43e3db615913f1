/**
 * `FirehoseArchive` against the shared `Archive` conformance suite, on fauxqs S3, both
 * compressions: the same tests `MemoryArchive` passes in memory. Each test gets a fresh bucket
 * behind its own `FaultProxy`, whose outage answers every S3 call 503 before it reaches fauxqs (so
 * nothing is stored).
 */

import { afterAll, beforeAll } from "@effect/vitest"
import { Archive } from "@spillway/core"
import { Conformance } from "@spillway/testing"
import { Context, Effect, Layer } from "effect"
import * as FirehoseArchive from "../src/FirehoseArchive.js"
import * as S3Client from "../src/S3Client.js"
import { credentials, type Fauxqs, region, startFauxqsServer, uniqueName } from "./support/emulators.js"
import * as FaultProxy from "./support/FaultProxy.js"

let fauxqs: Fauxqs

beforeAll(async () => {
  fauxqs = await startFauxqsServer()
})

afterAll(async () => {
  await fauxqs?.stop()
})

const serviceUnavailable: FaultProxy.Action = {
  _tag: "Respond",
  status: 503,
  body: { __type: "ServiceUnavailable", message: "Service Unavailable (injected by the fault proxy)" }
}

const { ArchiveFaults } = Conformance

Conformance.archiveSuite({
  name: "FirehoseArchive on fauxqs S3",
  clock: "live",
  layer: (layout) =>
    Layer.effectContext(
      Effect.gen(function* () {
        const proxy = yield* FaultProxy.scoped(fauxqs.endpoint)
        let outage = false
        proxy.setInterceptor(() => (outage ? serviceUnavailable : FaultProxy.forward))
        const client = yield* S3Client.make({
          region,
          credentials,
          endpoint: proxy.endpoint,
          forcePathStyle: true
        })
        const bucket = uniqueName("archive").toLowerCase()
        fauxqs.createBucket(bucket)
        const archive = yield* FirehoseArchive.make({ ...layout, bucket }).pipe(
          Effect.provideService(S3Client.S3Client, client)
        )
        return Context.make(Archive.Archive, archive).pipe(
          Context.add(
            ArchiveFaults,
            ArchiveFaults.of({
              outage: Effect.sync(() => {
                outage = true
              }),
              clear: Effect.sync(() => {
                outage = false
              })
            })
          )
        )
      })
    ),
  faults: ArchiveFaults,
  timeout: 15_000
})
