/**
 * The `DocumentSink` conformance suite: the contract every sink keeps — ours (the in-memory index,
 * OpenSearch, Firehose) and a user's — written once. A sink proves itself by running
 * `documentSinkSuite` with a layer that builds it fresh and empty for each test.
 *
 * Covered, always: one answer per document, in request order; an id written again answered
 * `Written`; an empty write answered with an empty answer; 2,000 documents in one write; ids
 * outside ASCII (NFC and NFD spellings are different ids). Each further capability a sink offers
 * registers the checks that need it, and only those:
 * - `stored` (read back what the sink holds): each body kept under its id, an id written again
 *   leaving one document, every one of 2,000 and every unicode id kept exactly — not registered
 *   for a sink that cannot be read (Firehose delivers to S3, and at least once).
 * - `requests` (how many calls reached the backend): an empty write makes none.
 * - `refusedDocument` (a document the sink refuses on its own): answered `Rejected` in place,
 *   the rest of the write written, and (with `stored`) the refused ones not kept.
 * - `faults` (`retryNext`, `outage`): documents turned away for now answered `Retryable` in
 *   place and written when sent again; a write during an outage failing whole as a retryable
 *   `DocumentSinkError` naming the sink.
 */
import { describe, expect } from "@effect/vitest"
import { DocumentSink } from "@spillway/core"
import { Context, Effect } from "effect"
import { register, registerWithFaults, type SuiteOptions } from "./Suite.js"

/** How a test makes the sink fail. Every hook lasts until `clear`. */
export interface SinkFaultsService {
  /**
   * The next `count` documents the backend receives, in the order it receives them, are answered
   * as turned away for now (a 429, a throttled record) and not stored; later ones as usual.
   */
  readonly retryNext: (count: number) => Effect.Effect<void>
  /** Every write fails as a whole, retryably, as during an outage (503s). */
  readonly outage: Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

/** A key for layers that build the hooks next to the sink: pass it as is, `faults: SinkFaults`. */
export class SinkFaults extends Context.Service<SinkFaults, SinkFaultsService>()(
  "spillway/conformance/SinkFaults"
) {}

type Read<A, R> = Effect.Effect<A, unknown, DocumentSink.DocumentSink | R>

/** `layer` builds a fresh, empty sink under `DocumentSink`. */
export interface DocumentSinkSuiteOptions<R = never>
  extends SuiteOptions<void, DocumentSink.DocumentSink, SinkFaultsService, R> {
  /** Every document the sink holds, as it holds it (one per id). */
  readonly stored?: Read<ReadonlyArray<DocumentSink.Document>, R> | undefined
  /** How many calls (requests) have reached the backend so far. */
  readonly requests?: Read<number, R> | undefined
  /** A document with this id that the sink refuses on its own: retrying it as is cannot help. */
  readonly refusedDocument?: ((id: string) => DocumentSink.Document) | undefined
}

const document = (id: string, n: number): DocumentSink.Document => ({
  id,
  body: { n, type: "cpu", text: `é ✓ 日本語 ${n}`, nested: { list: [n, n + 1], flag: n % 2 === 0 } }
})

const documents = (count: number, prefix = "doc") =>
  Array.from({ length: count }, (_, i) => document(`${prefix}-${i}`, i))

const tags = (outcomes: ReadonlyArray<DocumentSink.WriteOutcome>) => outcomes.map((o) => o._tag)
const allWritten = (count: number) => Array.from({ length: count }, () => "Written")

/** Ids outside ASCII; "é" composed (NFC) and decomposed (NFD) are different ids. */
const unicodeIds = [
  "caf\u00e9",
  "cafe\u0301",
  "日本語-id",
  "emoji-🚀-🧪",
  "ελληνικά",
  "עברית-rtl",
  'with space and "quotes"',
  "path/like\\id?&=#",
  "z".repeat(200)
]

const byId = (stored: ReadonlyArray<DocumentSink.Document>) => new Map(stored.map((d) => [d.id, d.body]))

const write = (batch: ReadonlyArray<DocumentSink.Document>) =>
  Effect.flatMap(DocumentSink.DocumentSink, (sink) => sink.write(batch))

/** Runs the suite against one sink. */
export const documentSinkSuite = <R = never>(options: DocumentSinkSuiteOptions<R>): void => {
  type Body = Effect.Effect<void, unknown, DocumentSink.DocumentSink | R>
  const test = register(options)
  const run = (title: string, body: () => Body) => test(title, body, undefined)
  const testWithFaults = registerWithFaults(options)
  const runWithFaults = (title: string, body: (faults: SinkFaultsService) => Body) =>
    testWithFaults(title, body, undefined)
  const { stored, requests, refusedDocument } = options

  describe(`DocumentSink conformance: ${options.name}`, () => {
    run("answers once per document, in request order, each Written", () =>
      Effect.gen(function* () {
        expect(tags(yield* write(documents(25)))).toEqual(allWritten(25))
      })
    )

    run("answers Written when an id is written again, with the same body or a new one", () =>
      Effect.gen(function* () {
        const first = document("again", 1)
        expect(tags(yield* write([first]))).toEqual(["Written"])
        expect(tags(yield* write([first]))).toEqual(["Written"])
        expect(tags(yield* write([document("again", 2), document("other", 3)]))).toEqual([
          "Written",
          "Written"
        ])
      })
    )

    run("answers an empty write with an empty answer", () =>
      Effect.gen(function* () {
        expect(yield* write([])).toEqual([])
      })
    )

    run("answers each of 2,000 documents in one write", () =>
      Effect.gen(function* () {
        expect(tags(yield* write(documents(2000, "large")))).toEqual(allWritten(2000))
      })
    )

    run("takes ids outside ASCII", () =>
      Effect.gen(function* () {
        const batch = unicodeIds.map((id, n) => document(id, n))
        expect(tags(yield* write(batch))).toEqual(allWritten(batch.length))
      })
    )

    if (stored !== undefined) storedChecks(run, stored)

    if (requests !== undefined) {
      run("makes no call for an empty write", () =>
        Effect.gen(function* () {
          yield* write(documents(2))
          const before = yield* requests
          expect(yield* write([])).toEqual([])
          expect(yield* requests).toBe(before)
        })
      )
    }

    if (refusedDocument !== undefined) {
      const batch = Array.from({ length: 9 }, (_, i) =>
        i % 3 === 1 ? refusedDocument(`refused-${i}`) : document(`kept-${i}`, i)
      )
      const expected = batch.map((d) => (d.id.startsWith("refused-") ? "Rejected" : "Written"))
      run("answers a document it refuses Rejected in place, and writes the others of the write", () =>
        Effect.gen(function* () {
          const outcomes = yield* write(batch)
          expect(tags(outcomes)).toEqual(expected)
          for (const o of outcomes) if (o._tag === "Rejected") expect(o.reason.length).toBeGreaterThan(0)
        })
      )
      if (stored !== undefined) {
        run("keeps none of the documents it refused", () =>
          Effect.gen(function* () {
            yield* write(batch)
            expect([...byId(yield* stored).keys()].sort()).toEqual(
              batch.filter((d) => !d.id.startsWith("refused-")).map((d) => d.id)
            )
          })
        )
      }
    }

    faultChecks(runWithFaults, stored)
  })
}

type Run<R> = (title: string, body: () => Effect.Effect<void, unknown, DocumentSink.DocumentSink | R>) => void

const storedChecks = <R>(run: Run<R>, stored: Read<ReadonlyArray<DocumentSink.Document>, R>): void => {
  run("keeps each body under its id, as written", () =>
    Effect.gen(function* () {
      const batch = documents(25)
      yield* write(batch)
      const kept = yield* stored
      expect(kept).toHaveLength(25)
      expect(byId(kept)).toEqual(byId(batch))
    })
  )

  run("keeps one document for an id written twice", () =>
    Effect.gen(function* () {
      const first = document("twice", 1)
      yield* write([first])
      yield* write([first])
      expect(yield* stored).toEqual([first])
      // A new body for the same id: still one document, holding one of the two bodies.
      const second = document("twice", 2)
      expect(tags(yield* write([second]))).toEqual(["Written"])
      const kept = yield* stored
      expect(kept).toHaveLength(1)
      expect([first, second]).toContainEqual(kept[0])
    })
  )

  run("keeps every one of 2,000 documents written in one write", () =>
    Effect.gen(function* () {
      const batch = documents(2000, "large")
      yield* write(batch)
      expect(byId(yield* stored)).toEqual(byId(batch))
    })
  )

  run("keeps ids outside ASCII exactly as written, NFC and NFD apart", () =>
    Effect.gen(function* () {
      const batch = unicodeIds.map((id, n) => document(id, n))
      yield* write(batch)
      const kept = byId(yield* stored)
      expect([...kept.keys()].sort()).toEqual([...unicodeIds].sort())
      expect(kept.get("caf\u00e9")).toEqual(batch[0]?.body)
      expect(kept.get("cafe\u0301")).toEqual(batch[1]?.body)
    })
  )
}

type RunWithFaults<R> = (
  title: string,
  body: (faults: SinkFaultsService) => Effect.Effect<void, unknown, DocumentSink.DocumentSink | R>
) => void

const faultChecks = <R>(
  runWithFaults: RunWithFaults<R>,
  stored: Read<ReadonlyArray<DocumentSink.Document>, R> | undefined
): void => {
  runWithFaults(
    "answers documents turned away for now Retryable in place; sent again, they are written",
    (faults) =>
      Effect.gen(function* () {
        const batch = documents(10, "busy")
        yield* faults.retryNext(3)
        const outcomes = yield* write(batch)
        expect(tags(outcomes)).toEqual([...Array.from({ length: 3 }, () => "Retryable"), ...allWritten(7)])
        for (const o of outcomes) if (o._tag === "Retryable") expect(o.reason.length).toBeGreaterThan(0)
        if (stored !== undefined) {
          expect([...byId(yield* stored).keys()].sort()).toEqual(
            batch
              .slice(3)
              .map((d) => d.id)
              .sort()
          )
        }
        yield* faults.clear
        expect(tags(yield* write(batch.slice(0, 3)))).toEqual(allWritten(3))
        if (stored !== undefined) expect(byId(yield* stored)).toEqual(byId(batch))
      })
  )

  runWithFaults("fails a write during an outage whole, retryable, naming the sink; works after", (faults) =>
    Effect.gen(function* () {
      const sink = yield* DocumentSink.DocumentSink
      yield* faults.outage
      const error = yield* Effect.flip(sink.write(documents(3, "outage")))
      expect(error._tag).toBe("DocumentSinkError")
      expect(error.isRetryable).toBe(true)
      expect(["Throttled", "Unavailable"]).toContain(error.reason)
      expect(error.sink).toBe(sink.name)
      if (stored !== undefined) expect(yield* stored).toEqual([])
      yield* faults.clear
      expect(tags(yield* sink.write(documents(3, "outage")))).toEqual(allWritten(3))
    })
  )
}
