import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  type Document,
  DocumentSinkError,
  fanOut,
  type Service,
  type WriteOutcome
} from "../src/DocumentSink.js"

const scripted = (name: string, answer: (d: Document) => WriteOutcome): Service => ({
  name,
  write: (docs) => Effect.succeed(docs.map(answer))
})
const docs: Array<Document> = ["a", "b", "c"].map((id) => ({ id, body: { id } }))

describe("DocumentSink.fanOut", () => {
  it.effect("gives each document the worst outcome across sinks", () =>
    Effect.gen(function* () {
      const sink = fanOut([
        scripted("search", (d) =>
          d.id === "b" ? { _tag: "Retryable", reason: "429" } : { _tag: "Written" }
        ),
        scripted("archive", (d) => (d.id === "c" ? { _tag: "Rejected", reason: "400" } : { _tag: "Written" }))
      ])
      expect(sink.name).toBe("search+archive")
      expect((yield* sink.write(docs)).map((o) => o._tag)).toEqual(["Written", "Retryable", "Rejected"])
    })
  )

  it.effect("turns a sink's whole-call failure into per-document outcomes by retryability", () =>
    Effect.gen(function* () {
      const down: Service = {
        name: "down",
        write: () =>
          Effect.fail(new DocumentSinkError({ sink: "down", reason: "Unavailable", message: "503" }))
      }
      const denied: Service = {
        name: "denied",
        write: () =>
          Effect.fail(new DocumentSinkError({ sink: "denied", reason: "AccessDenied", message: "403" }))
      }
      const ok = scripted("ok", () => ({ _tag: "Written" }))
      expect((yield* fanOut([ok, down]).write(docs)).map((o) => o._tag)).toEqual([
        "Retryable",
        "Retryable",
        "Retryable"
      ])
      expect((yield* fanOut([down, denied]).write(docs)).map((o) => o._tag)).toEqual([
        "Rejected",
        "Rejected",
        "Rejected"
      ])
    })
  )
})
