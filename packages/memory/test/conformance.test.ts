/**
 * The in-memory backends against the shared conformance suites (`@spillway/testing`), on
 * `TestClock`: the same tests the AWS backends pass against kinesalite, fauxqs and the loopback
 * `_bulk` and `PutRecordBatch` servers.
 */
import { FallbackQueue } from "@spillway/core"
import { Conformance } from "@spillway/testing"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryIndex from "../src/MemoryIndex.js"
import * as MemoryMetricsIntake from "../src/MemoryMetricsIntake.js"
import * as MemoryQueue from "../src/MemoryQueue.js"
import * as MemoryStream from "../src/MemoryStream.js"

const retentionHours = 24

Conformance.recordStreamSuite({
  name: "MemoryStream",
  clock: "test",
  layer: () =>
    MemoryStream.layerMemory({
      shardCount: 2,
      retentionHours,
      // The per-shard budget is a fault of its own (tested in MemoryStream.test.ts); here it must
      // not throttle the suite's bursts, which all happen in the same simulated second.
      recordsPerSecondPerShard: 1_000_000,
      bytesPerSecondPerShard: 1024 * 1024 * 1024
    }),
  faults: Effect.map(MemoryStream.MemoryStream, (stream) => ({
    failEntries: (inject) => stream.injectEntryFailures((entry) => inject(entry)),
    failPuts: (reason) => (reason === "Throttled" ? stream.startThrottling() : stream.startOutage()),
    // Retention is time: every record written so far is older than the retention an hour from now.
    trimWritten: TestClock.adjust(`${retentionHours + 1} hours`),
    clear: stream.clearFaults
  }))
})

Conformance.fallbackQueueSuite({
  name: "MemoryQueue",
  clock: "test",
  layer: (queue) =>
    MemoryQueue.layerMemory({
      limits: { ...FallbackQueue.defaultLimits, maxMessageBytes: queue.maxMessageBytes }
    }),
  faults: Effect.map(MemoryQueue.MemoryQueue, (handle) => ({
    failSends: (inject) => handle.failSends(inject),
    outage: handle.startOutage(),
    clear: Effect.andThen(handle.endOutage, handle.failSends(undefined))
  }))
})

Conformance.documentSinkSuite({
  name: "MemoryIndex",
  clock: "test",
  layer: () => MemoryIndex.layerMemory(),
  stored: MemoryIndex.MemoryIndex.use((index) =>
    Effect.map(index.documents, (documents) => documents.map(({ id, source }) => ({ id, body: source })))
  ),
  requests: MemoryIndex.MemoryIndex.use((index) => Effect.map(index.stats, (stats) => stats.requests)),
  // OpenSearch keeps `_id` for itself: a document setting it is refused with 400.
  refusedDocument: (id) => ({ id, body: { _id: "mine" } }),
  faults: Effect.map(MemoryIndex.MemoryIndex, (index) => ({
    retryNext: index.rejectNext,
    outage: index.startOutage(),
    clear: Effect.andThen(index.endOutage, index.rejectNext(0))
  }))
})

Conformance.metricsSinkSuite({
  name: "MemoryMetricsIntake",
  clock: "test",
  layer: () => MemoryMetricsIntake.layerMemory(),
  accepted: MemoryMetricsIntake.MemoryMetricsIntake.use((intake) => intake.points),
  faults: Effect.map(MemoryMetricsIntake.MemoryMetricsIntake, (intake) => ({
    failNext: (count, reason, retryAfterMillis) =>
      intake.failNext(count, reason, reason === "Throttled" ? { retryAfterMillis } : {}),
    clear: intake.clearFaults
  }))
})
