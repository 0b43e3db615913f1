import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as PartialRetry from "../src/PartialRetry.js"

type Outcome = "ok" | "retry" | "refused" | "no answer"

class CallError {
  readonly _tag = "CallError"
  constructor(readonly isRetryable: boolean) {}
}

/** A batch API scripted call by call: each call answers (or fails) as the next script entry says. */
const scripted = (
  script: ReadonlyArray<(pending: ReadonlyArray<string>) => ReadonlyArray<Outcome> | CallError>
) => {
  const calls: Array<ReadonlyArray<string>> = []
  const send = (pending: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      calls.push(pending)
      const answer = script[calls.length - 1]?.(pending) ?? pending.map((): Outcome => "ok")
      return answer instanceof CallError ? Effect.fail(answer) : Effect.succeed(answer)
    })
  return { calls, send }
}

const run = (
  items: ReadonlyArray<string>,
  send: (pending: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Outcome>, CallError>,
  extra: Partial<PartialRetry.Options<string, Outcome, CallError, never>> = {}
) =>
  PartialRetry.retryPending<string, Outcome, CallError, never>({
    items,
    send,
    isSettled: (o) => o === "ok" || o === "refused",
    whenCallFails: (e) => (e.isRetryable ? "retry" : "refused"),
    whenUnanswered: "no answer",
    schedule: Schedule.recurs(3),
    ...extra
  })

describe("PartialRetry.retryPending", () => {
  it.effect("sends again only the items still pending, and keeps each item's outcome in order", () =>
    Effect.gen(function* () {
      const api = scripted([
        (p) => p.map((id): Outcome => (id === "b" ? "retry" : id === "c" ? "refused" : "ok")),
        (p) => p.map((): Outcome => "ok")
      ])
      const answered: Array<string> = []
      const retries: Array<number> = []
      const outcomes = yield* run(["a", "b", "c"], api.send, {
        onAnswered: (list) => Effect.sync(() => answered.push(...list.map((a) => `${a.item}:${a.outcome}`))),
        onRetry: (left) => Effect.sync(() => retries.push(left))
      })
      expect(outcomes).toEqual(["ok", "ok", "refused"])
      expect(api.calls).toEqual([["a", "b", "c"], ["b"]])
      expect(answered).toEqual(["a:ok", "b:retry", "c:refused", "b:ok"])
      expect(retries).toEqual([1])
    })
  )

  it.effect("retries a call that failed as a whole while the error is retryable", () =>
    Effect.gen(function* () {
      const api = scripted([() => new CallError(true), () => new CallError(true)])
      const outcomes = yield* run(["a", "b"], api.send)
      expect(outcomes).toEqual(["ok", "ok"])
      expect(api.calls).toEqual([
        ["a", "b"],
        ["a", "b"],
        ["a", "b"]
      ])
    })
  )

  it.effect("stops at a call error that retrying cannot help, giving every item its outcome", () =>
    Effect.gen(function* () {
      const api = scripted([() => new CallError(false)])
      const outcomes = yield* run(["a", "b"], api.send)
      expect(outcomes).toEqual(["refused", "refused"])
      expect(api.calls).toHaveLength(1)
    })
  )

  it.effect("treats an item the answer left out as unanswered, and sends it again", () =>
    Effect.gen(function* () {
      const api = scripted([() => ["ok"]])
      const outcomes = yield* run(["a", "b"], api.send, { isSettled: (o) => o === "ok" })
      expect(outcomes).toEqual(["ok", "ok"])
      expect(api.calls).toEqual([["a", "b"], ["b"]])
    })
  )

  it.effect("returns the last outcomes when the schedule gives up", () =>
    Effect.gen(function* () {
      const always = (p: ReadonlyArray<string>) => p.map((): Outcome => "retry")
      const api = scripted([always, always, always, always, always])
      const outcomes = yield* run(["a"], api.send)
      expect(outcomes).toEqual(["retry"])
      // The first attempt and the schedule's three recurrences.
      expect(api.calls).toHaveLength(4)
    })
  )

  it.effect("makes no call for no items", () =>
    Effect.gen(function* () {
      const api = scripted([])
      expect(yield* run([], api.send)).toEqual([])
      expect(api.calls).toHaveLength(0)
    })
  )
})
