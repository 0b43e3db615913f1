/**
 * The disaster drill on a real OpenSearch node: the pipeline (memory stream, processor and
 * Firehose backup, writing through `OpenSearchSink` into daily indices) takes traffic; a snapshot
 * is taken into an `fs` repository; more traffic; the indices are deleted while traffic goes on;
 * then recovery — the last snapshot before the loss is restored (`OpenSearchSnapshots`), and
 * `Restore` writes from the archive what came after it. The index ends with the same ids and the
 * same sources as the live pipeline wrote, and running the recovery again changes nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Archive, DedupCache, DocumentSink, Restore } from "@spillway/core"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { MemoryPipeline } from "@spillway/memory"
import { Harness } from "@spillway/testing"
import { Clock, Effect, Layer } from "effect"
import * as OpenSearchClient from "../src/OpenSearchClient.js"
import * as OpenSearchSink from "../src/OpenSearchSink.js"
import * as OpenSearchSnapshots from "../src/OpenSearchSnapshots.js"

const ns = testNamespace(import.meta.filename)
const alias = `${ns}-drill`
const repository = `${ns}-repo`

const client = OpenSearchClient.layer({ node: node().url, region: "us-east-1", auth: "none" })

/** Every document under the alias, id → `_source`, after a refresh. */
const indexed = Effect.promise(async () => {
  const url = node().url
  const refreshed = await fetch(`${url}/${alias}/_refresh`, { method: "POST" })
  if (refreshed.status === 404) return new Map<string, unknown>()
  const response = await fetch(`${url}/${alias}/_search`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ size: 10_000, query: { match_all: {} } })
  })
  const body = (await response.json()) as { hits: { hits: Array<{ _id: string; _source: unknown }> } }
  return new Map(body.hits.hits.map((hit) => [hit._id, hit._source]))
})

/** Records over two UTC days, so the drill spans two daily indices. */
const records = (n: number, prefix: string) =>
  Harness.records(n, prefix).map((r, i) => ({
    ...r,
    timestamp: i % 2 === 0 ? "2026-11-23T23:00:00.000Z" : "2026-11-24T01:00:00.000Z",
    payload: { value: i, host: `host-${i % 7}` }
  }))

describe("disaster recovery on a real OpenSearch node", () => {
  it.live(
    "snapshot restore + archive restore bring back the same ids and sources; a second run changes nothing",
    () =>
      Effect.gen(function* () {
        const sink = yield* OpenSearchSink.make({ layout: { alias, replicas: 0 } })
        const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 4 }, extraSinks: [sink] })
        const collect = (batch: ReadonlyArray<unknown>) =>
          Effect.gen(function* () {
            // 500 at a time over 4 shards stays under a shard's 1,000 records a second.
            for (let i = 0; i < batch.length; i += 500) {
              const result = yield* pipeline.collect(Harness.apiKey, batch.slice(i, i + 500))
              expect(result.stored).toBe(Math.min(500, batch.length - i))
              yield* Harness.settle(pipeline, { clock: "live", step: "50 millis", max: "60 seconds" })
            }
          })

        // The pipeline runs on the live clock: the node stamps snapshots with the wall clock.
        // Traffic, then the snapshot (what an hourly automated snapshot would hold).
        yield* collect(records(1500, "before"))
        yield* OpenSearchSnapshots.registerFsRepository(repository, `${node().repoPath}/${ns}`)
        // Registering again with the same settings is harmless.
        yield* OpenSearchSnapshots.registerFsRepository(repository, `${node().repoPath}/${ns}`)
        const snapshotAt = yield* Clock.currentTimeMillis
        yield* Effect.sleep("5 millis")
        const snapshot = yield* OpenSearchSnapshots.take(repository, "hourly-1", { indices: [`${alias}-*`] })
        expect(snapshot.indices.slice().sort()).toEqual([`${alias}-2026.11.23`, `${alias}-2026.11.24`])
        yield* Effect.sleep("5 millis")

        // More traffic, and a client re-sending records from before the snapshot (the cache skips them).
        yield* collect(records(1000, "between"))
        yield* collect(records(10, "before"))
        const beforeLoss = yield* indexed
        expect(beforeLoss.size).toBe(2500)

        // The loss: every index of the alias deleted, while traffic goes on (the template recreates them).
        const lostAt = yield* Clock.currentTimeMillis
        yield* OpenSearchSnapshots.deleteIndices(yield* OpenSearchSnapshots.indices(`${alias}-*`))
        yield* collect(records(500, "after"))
        yield* pipeline.backup!.flush
        const afterLoss = yield* indexed
        expect(afterLoss.size).toBe(500)
        const expected = new Map([...beforeLoss, ...afterLoss])
        expect(expected.size).toBe(3000)

        // A snapshot taken after the loss holds only what came since: not the one to restore.
        yield* Effect.sleep("5 millis")
        yield* OpenSearchSnapshots.take(repository, "hourly-2", { indices: [`${alias}-*`] })
        const now = yield* Clock.currentTimeMillis

        const recover = Effect.gen(function* () {
          // Step 1: the last snapshot that started before the loss. OpenSearch restores only over
          // deleted (or closed) indices, and the live pipeline recreated them.
          const chosen = yield* OpenSearchSnapshots.lastBefore(repository, lostAt)
          expect(chosen.name).toBe("hourly-1")
          const refused = yield* Effect.flip(
            OpenSearchSnapshots.restore(repository, chosen.name, { indices: [`${alias}-*`] })
          )
          expect(refused.reason).toBe("IndexExists")
          yield* OpenSearchSnapshots.deleteIndices(yield* OpenSearchSnapshots.indices(`${alias}-*`))
          const restored = yield* OpenSearchSnapshots.restore(repository, chosen.name, {
            indices: [`${alias}-*`]
          })
          expect(restored.indices.slice().sort()).toEqual([`${alias}-2026.11.23`, `${alias}-2026.11.24`])
          expect((yield* indexed).size).toBe(1500)
          // Step 2: the archive from the snapshot on, past the dedup cache, into the real sink.
          return yield* Restore.restore({ from: snapshotAt, to: now }).pipe(
            Effect.provide(
              Layer.mergeAll(
                Layer.succeed(Archive.Archive, pipeline.archive),
                Layer.succeed(DedupCache.DedupCache, pipeline.cache),
                Layer.succeed(DocumentSink.DocumentSink, sink)
              )
            )
          )
        })

        const first = yield* recover
        expect(first).toMatchObject({
          read: 3010,
          beforeRange: 1500,
          distinct: 1500,
          written: 1500,
          failed: [],
          undecodable: [],
          unreadable: []
        })
        const recovered = yield* indexed
        expect([...recovered.keys()].sort()).toEqual([...expected.keys()].sort())
        expect(recovered).toEqual(expected)

        // Again, from the start: the same answer and the same index.
        const second = yield* recover
        expect(second).toEqual(first)
        expect(yield* indexed).toEqual(expected)
      }).pipe(Effect.provide(client)),
    120_000
  )

  it.effect("typed refusals: an unknown repository, an unknown snapshot, no snapshot before a time", () =>
    Effect.gen(function* () {
      const missingRepo = yield* Effect.flip(OpenSearchSnapshots.list(`${ns}-nope`))
      expect(missingRepo.reason).toBe("RepositoryMissing")
      yield* OpenSearchSnapshots.registerFsRepository(`${ns}-empty`, `${node().repoPath}/${ns}-empty`)
      const missingSnapshot = yield* Effect.flip(
        OpenSearchSnapshots.restore(`${ns}-empty`, "nope", { indices: [`${alias}-*`] })
      )
      expect(missingSnapshot.reason, missingSnapshot.message).toBe("SnapshotMissing")
      const none = yield* Effect.flip(OpenSearchSnapshots.lastBefore(`${ns}-empty`, Date.now()))
      expect(none.reason).toBe("SnapshotMissing")
      expect(none.message).toContain("no successful snapshot")
      const outside = yield* Effect.flip(OpenSearchSnapshots.registerFsRepository(`${ns}-outside`, "/etc"))
      expect(outside.reason).toBe("InvalidRequest")
      expect(outside.message).toContain("path.repo")
    }).pipe(Effect.provide(client))
  )
})
