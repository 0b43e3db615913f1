/**
 * A scenario's traffic: the records its client fleet makes and the ledger of what the collector
 * did with each. About 1% of the records are invalid (refused by the collector's schema), a
 * scenario's `poisonRate` carry a string where the index maps a number, and about 0.5% of the
 * time a client that timed out sends again a record the collector had in fact accepted.
 *
 * Every draw (the tick's jitter, each record's kind and fields, the duplicates) comes from the
 * run's seeded `Random`, in a fixed order, so a seed always gives the same traffic.
 */
import type { Collect } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { Clock, Effect, Random } from "effect"
import type { Scenario } from "../Scenario.js"
import { refused, type SimulationError } from "./error.js"
import * as Fleet from "./fleet.js"
import { secondOf } from "./harness.js"
import { PerSecond } from "./stats.js"

const apiKey = MemoryPipeline.defaultApiKeys[0].key
const tickMillis = 250
const invalidRate = 0.01
const duplicateRate = 0.005

export type Kind = "valid" | "invalid" | "poison"

export interface Made {
  readonly id: string
  readonly kind: Kind
  readonly body: Readonly<Record<string, unknown>>
}

/** What the producer did, record by record. */
export interface Ledger {
  readonly made: Array<Made>
  readonly accepted: Set<string>
  readonly rejected: Set<string>
  readonly sent: PerSecond
  readonly acceptedPerSecond: PerSecond
  readonly rejectedPerSecond: PerSecond
  parked: number
  duplicatesSent: number
  clientResends: number
  invalidAccepted: number
  validRejected: number
  rejectedWithoutReason: number
}

export const emptyLedger = (): Ledger => ({
  made: [],
  accepted: new Set(),
  rejected: new Set(),
  sent: new PerSecond(),
  acceptedPerSecond: new PerSecond(),
  rejectedPerSecond: new PerSecond(),
  parked: 0,
  duplicatesSent: 0,
  clientResends: 0,
  invalidAccepted: 0,
  validRejected: 0,
  rejectedWithoutReason: 0
})

/** An integer in [min, max): `max` itself is never drawn. */
const below = (min: number, max: number): Effect.Effect<number> =>
  Random.nextIntBetween(min, max, { halfOpen: true })

const pick = <A>(items: ReadonlyArray<A>): Effect.Effect<A> =>
  Effect.map(below(0, items.length), (i) => items[i]!)

const types = ["cpu", "memory", "disk", "network"] as const

/** One record as a client would send it; invalid ones break the schema in one of the ways clients do. */
export const makeRecord = (ordinal: number, kind: Kind): Effect.Effect<Made> =>
  Effect.gen(function* () {
    const id = `rec-${ordinal}`
    const now = yield* Clock.currentTimeMillis
    // Devices stamp records a little before they reach the collector.
    const timestamp = new Date(now - (yield* below(0, 2000))).toISOString()
    const host = `host-${yield* below(0, 50)}`
    const value = Math.round((yield* Random.next) * 10_000) / 100
    const type = yield* pick(types)
    if (kind === "poison") {
      return { id, kind, body: { id, type, timestamp, payload: { host, value: "sensor offline" } } }
    }
    if (kind === "invalid") {
      const flaw = yield* below(0, 3)
      const body =
        flaw === 0
          ? { id, type, timestamp: "yesterday at noon", payload: { host, value } }
          : flaw === 1
            ? { id, type: "", timestamp, payload: { host, value } }
            : { id, type, timestamp, payload: [host, value] }
      return { id, kind, body }
    }
    return { id, kind, body: { id, type, timestamp, payload: { host, value } } }
  })

/** Books, per record of `request`, what the collector answered. */
const book = (ledger: Ledger, request: ReadonlyArray<Made>, result: Collect.CollectResult): void => {
  const second = secondOf(result.receivedAt)
  const rejected = new Map(result.rejected.map((r) => [r.index, r.reason]))
  const unavailable = new Set(result.unavailable.map((u) => u.index))
  ledger.sent.add(second, request.length)
  ledger.parked += result.parked
  request.forEach((record, index) => {
    const reason = rejected.get(index)
    if (reason !== undefined) {
      if (reason.length === 0) ledger.rejectedWithoutReason++
      if (record.kind !== "invalid") ledger.validRejected++
      if (!ledger.rejected.has(record.id)) {
        ledger.rejected.add(record.id)
        ledger.rejectedPerSecond.add(second)
      }
    } else if (!unavailable.has(index)) {
      if (record.kind === "invalid") ledger.invalidAccepted++
      if (!ledger.accepted.has(record.id)) {
        ledger.accepted.add(record.id)
        ledger.acceptedPerSecond.add(second)
      }
    }
  })
}

/** Sends one request and books the answer; answers the records the collector could not take. */
export const send = (
  pipeline: MemoryPipeline.Pipeline,
  ledger: Ledger,
  scenario: string,
  request: ReadonlyArray<Made>
): Effect.Effect<ReadonlyArray<Made>, SimulationError> =>
  Effect.gen(function* () {
    const result = yield* pipeline
      .collect(
        apiKey,
        request.map((r) => r.body)
      )
      .pipe(Effect.mapError(refused(scenario)))
    book(ledger, request, result)
    const unavailable = new Set(result.unavailable.map((u) => u.index))
    return request.filter((_, index) => unavailable.has(index))
  })

/** The phase a record falls in, by its ordinal: boundaries by record count, after the warm-up record. */
const phaseFinder = (scenario: Scenario, total: number) => {
  const ends: Array<number> = []
  let cumulative = 0
  for (const phase of scenario.phases) {
    cumulative += phase.share
    ends.push(1 + Math.round(cumulative * (total - 1)))
  }
  return (made: number) =>
    scenario.phases[
      Math.max(
        0,
        ends.findIndex((end) => made < end)
      )
    ] ?? scenario.phases[0]!
}

/** Draws this tick's new records at the current phase's rate, jittered ±20%, with the duplicates. */
const freshRecords = (ledger: Ledger, scenario: Scenario, total: number) => {
  const phaseOf = phaseFinder(scenario, total)
  let quota = 0
  return Effect.gen(function* () {
    const jitter = 0.8 + 0.4 * (yield* Random.next)
    quota += ((phaseOf(ledger.made.length).recordsPerSecond * tickMillis) / 1000) * jitter
    const fresh = Math.min(Math.floor(quota), total - ledger.made.length)
    quota -= fresh
    const items: Array<Made> = []
    for (let i = 0; i < fresh; i++) {
      const roll = yield* Random.next
      const kind: Kind =
        roll < invalidRate ? "invalid" : roll < invalidRate + scenario.poisonRate ? "poison" : "valid"
      const record = yield* makeRecord(ledger.made.length, kind)
      ledger.made.push(record)
      items.push(record)
      // A client that timed out re-sends a record the collector had in fact accepted.
      if ((yield* Random.next) < duplicateRate) {
        const earlier = ledger.made[yield* below(0, ledger.made.length)]!
        if (earlier.kind === "valid" && ledger.accepted.has(earlier.id)) {
          ledger.duplicatesSent++
          items.push(earlier)
        }
      }
    }
    return items
  })
}

/** The scenario's client fleet: requests of up to 100 records every tick, at the current phase's rate. */
export const produce = (
  pipeline: MemoryPipeline.Pipeline,
  ledger: Ledger,
  scenario: Scenario,
  total: number
): Effect.Effect<void, SimulationError> =>
  Fleet.run({
    tickMillis,
    more: () => ledger.made.length < total,
    fresh: freshRecords(ledger, scenario, total),
    send: (request) => send(pipeline, ledger, scenario.name, request),
    onResend: (records) => {
      ledger.clientResends += records
    }
  })
