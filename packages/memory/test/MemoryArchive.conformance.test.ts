/**
 * `MemoryArchive` against the shared `Archive` conformance suite, on `TestClock`, both
 * compressions, with outages through `startOutage`/`endOutage`: the same tests `FirehoseArchive`
 * passes against fauxqs S3.
 */
import { Archive } from "@spillway/core"
import { Conformance } from "@spillway/testing"
import { Context, Effect, Layer } from "effect"
import * as MemoryArchive from "../src/MemoryArchive.js"

const { ArchiveFaults } = Conformance

Conformance.archiveSuite({
  name: "MemoryArchive",
  clock: "test",
  layer: (layout) =>
    Layer.effectContext(
      Effect.map(MemoryArchive.make({ ...layout, bucket: "conformance" }), (archive) =>
        Context.make(Archive.Archive, archive).pipe(
          Context.add(
            ArchiveFaults,
            ArchiveFaults.of({ outage: archive.startOutage(), clear: archive.endOutage })
          )
        )
      )
    ),
  faults: ArchiveFaults
})
