/**
 * Times on the command line (`--from`, `--to`, `--before`): an ISO-8601 instant with a zone
 * (`2026-11-24T10:00:00Z`, `2026-11-24T11:00:00+01:00`) or epoch milliseconds, as the backup
 * replayer function takes them. A time without a zone is refused rather than read in the
 * machine's zone: at 3 a.m. on a server in another region, that guess would be wrong.
 */
import { Telemetry } from "@spillway/core"
import { Flag } from "effect/cli"

const withZone = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

export const describe = "an ISO-8601 time with a zone, such as 2026-11-24T10:00:00Z, or epoch milliseconds"

/** Epoch milliseconds of `text`; throws a message completing "expected …" otherwise. */
export const parse = (text: string): number => {
  if (/^\d+$/.test(text)) {
    const millis = Number(text)
    if (millis < Telemetry.minEpochMillis) {
      throw new Error(`${describe} (${text} looks like epoch seconds: multiply it by 1000)`)
    }
    return millis
  }
  const millis = withZone.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(millis)) throw new Error(describe)
  return millis
}

export const flag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withMetavar("time"),
    Flag.mapTryCatch(parse, (error) => (error instanceof Error ? error.message : describe)),
    Flag.withDescription(description)
  )
