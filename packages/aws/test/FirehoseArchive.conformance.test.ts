/**
 * `FirehoseArchive` against the shared `Archive` conformance suite, on fauxqs S3, both
 * compressions: the same tests `MemoryArchive` passes in memory. Each test gets a fresh bucket
 * behind its own `FaultProxy`, whose outage answers every S3 call 503 before it reaches fauxqs (so
 * nothing is stored).
 */

import { Archive } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { Conformance } from "@spillway/testing"
import { Context, Effect, Layer } from "effect"
import * as FirehoseArchive from "../src/FirehoseArchive.js"
import * as S3Client from "../src/S3Client.js"
import { serversForFile } from "./support/servers.js"
import { uniqueName } from "./support/streams.js"

const { credentials, region } = Emulators
const servers = serversForFile("fauxqs")

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
        const proxy = yield* FaultProxy.scoped(servers.fauxqs.endpoint)
        let outage = false
        proxy.setInterceptor(() => (outage ? serviceUnavailable : FaultProxy.forward))
        const client = yield* S3Client.make({
          region,
          credentials,
          endpoint: proxy.endpoint,
          forcePathStyle: true
        })
        const bucket = uniqueName("archive").toLowerCase()
        yield* servers.fauxqs.createBucket(bucket).pipe(Effect.orDie)
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
