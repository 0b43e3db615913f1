/**
 * How the CLI writes numbers, counts and times for people: thousands separators (`12,400`), the
 * noun in the singular or the plural as the count asks (`1 record`, `0 records`, `2 messages`),
 * and instants in ISO-8601 UTC, the form every flag takes them in. One place, so that `dev`,
 * `simulate` and the recovery commands read alike.
 */

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 })

/** `12400` → `12,400`; fractions keep one decimal (`1,234.5`). */
export const number = (n: number): string => (Number.isInteger(n) ? integer.format(n) : decimal.format(n))

/** `count(1, "record")` → `1 record`; `count(1200, "record")` → `1,200 records`. */
export const count = (n: number, singular: string, plural = `${singular}s`): string =>
  `${number(n)} ${n === 1 ? singular : plural}`

/** The noun alone, as `count` would choose it. */
export const noun = (n: number, singular: string, plural = `${singular}s`): string =>
  n === 1 ? singular : plural

/** `a`, `a and b`, `a, b and c`. */
export const list = (items: ReadonlyArray<string>): string =>
  items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`

/** An instant as ISO-8601 UTC to the second (`2026-11-24T10:00:00Z`), or to the millisecond when it has them. */
export const instant = (millis: number): string => {
  const iso = new Date(millis).toISOString()
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso
}

/** A span of real time for progress and summaries: `850 ms`, `12.4 s`, `3 min 20 s`, `2 h 05 min`. */
export const duration = (millis: number): string => {
  if (millis < 1000) return `${Math.round(millis)} ms`
  if (millis < 60_000) return `${decimal.format(millis / 1000)} s`
  const seconds = Math.round(millis / 1000)
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, "0")} s`
  const minutes = Math.round(seconds / 60)
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`
}

/** `part` of `whole` as a whole percentage, 100 % only when complete. */
export const percent = (part: number, whole: number): string =>
  whole <= 0 ? "100%" : `${part >= whole ? 100 : Math.min(99, Math.floor((part * 100) / whole))}%`
