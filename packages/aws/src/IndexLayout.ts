/**
 * Where telemetry documents live in OpenSearch: time-based indices behind one alias, shaped by one
 * index template.
 *
 * - **Indices by time.** A document goes to `<alias>-<yyyy.MM.dd>` (period `day`, the default),
 *   `<alias>-<yyyy.MM>` (`month`) or `<alias>-all` (`none`), by the UTC date of its `timestamp`
 *   (its `receivedAt` when it has none). The index is a function of the document alone, so a
 *   retry, a replay from the archive or a restore writes the same `_index`/`_id` and overwrites
 *   instead of adding: idempotence holds across indices. Old days are dropped by deleting whole
 *   indices (an ISM policy or a cron), never by deleting documents.
 * - **Reading.** Searches go to the alias (`GET /<alias>/_search`), which every index of the
 *   layout joins when it is created; `<alias>-*` works too.
 * - **The template** (`<alias>-template`, pattern `<alias>-*`) maps `id`, `type` and `tenant` as
 *   `keyword` (exact match, aggregations), `timestamp` and `receivedAt` as `date`, and leaves
 *   `payload` and `attributes` to dynamic mapping, so any field a client sends is searchable
 *   with the type its first value gives it. Any other top-level field is mapped dynamically too.
 * - **Mapping explosions.** Every distinct field name in `payload` becomes a mapped field, and a
 *   client that puts ids or timestamps in field names adds fields without end. The template caps
 *   an index at `totalFieldsLimit` fields (1,000 by default, OpenSearch's own default): a document
 *   that would add fields past it is refused by OpenSearch with 400 `illegal_argument_exception`
 *   ("Limit of total fields [1000] has been exceeded"), which the sink reports as `Rejected` with
 *   that reason, so it goes to the on-failure destination, not into the index, and nothing else is
 *   held back. The cure, when that happens for good reason: raise the limit, or map `payload` as
 *   `flat_object` (`payloadMapping`), one field whose leaves are searchable as keywords by path
 *   (`payload.user.id: "u-1"`) but without numeric ranges; a new daily index picks a changed
 *   template up the next day, at the latest.
 * - A value whose type conflicts with the field's mapping (a string where the first document sent
 *   a number) is refused with 400 `mapper_parsing_exception`, `Rejected` with OpenSearch's reason.
 */
import type { DocumentSink } from "@spillway/core"

export type Period = "day" | "month" | "none"
export type PayloadMapping = "dynamic" | "flat_object"

export interface Options {
  /** The alias every index joins, and the prefix of their names. @default "telemetry" */
  readonly alias?: string
  /** @default "day" */
  readonly period?: Period
  /** `index.mapping.total_fields.limit` of each index. @default 1000 */
  readonly totalFieldsLimit?: number
  /** @default "dynamic" */
  readonly payloadMapping?: PayloadMapping
  /** Primary shards per index. @default 1 (a day of telemetry rarely needs more; raise for > ~30 GB a day) */
  readonly shards?: number
  /** Replicas per shard; unset leaves the domain's default (1), set 0 on a single node. */
  readonly replicas?: number
}

export interface Layout {
  readonly alias: string
  readonly period: Period
  readonly templateName: string
  /** The pattern every index of the layout matches. */
  readonly indexPattern: string
  /** The index a document belongs in, or why it belongs in none (no valid timestamp). */
  readonly indexFor: (
    document: DocumentSink.Document
  ) => { readonly index: string } | { readonly reason: string }
  /** The body of `PUT _index_template/<templateName>`. */
  readonly template: Readonly<Record<string, unknown>>
}

/** Index names: lower case, no `\ / * ? " < > | , #`, space or `:`, not starting with `-_+`. */
const validAlias = /^[a-z0-9][a-z0-9._-]*$/

export class InvalidLayout extends Error {
  override readonly name = "InvalidLayout"
}

const pad = (n: number) => String(n).padStart(2, "0")

const dateOf = (body: Readonly<Record<string, unknown>>): Date | undefined => {
  for (const key of ["timestamp", "receivedAt"]) {
    const value = body[key]
    const millis =
      typeof value === "string" ? Date.parse(value) : typeof value === "number" ? value : Number.NaN
    if (Number.isFinite(millis)) {
      const date = new Date(millis)
      if (!Number.isNaN(date.getTime())) return date
    }
  }
  return undefined
}

const keyword = { type: "keyword" }
const date = { type: "date" }

/** A layout from options; throws `InvalidLayout` for an alias OpenSearch would refuse as an index name. */
export const make = (options: Options = {}): Layout => {
  const alias = options.alias ?? "telemetry"
  const period = options.period ?? "day"
  const totalFieldsLimit = options.totalFieldsLimit ?? 1000
  if (!validAlias.test(alias) || alias.length > 200) {
    throw new InvalidLayout(
      `index alias ${JSON.stringify(alias)} is not a valid index name: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 200 characters`
    )
  }
  if (!Number.isInteger(totalFieldsLimit) || totalFieldsLimit < 10) {
    throw new InvalidLayout(`totalFieldsLimit must be a whole number of at least 10, got ${totalFieldsLimit}`)
  }
  const open =
    options.payloadMapping === "flat_object" ? { type: "flat_object" } : { type: "object", dynamic: true }
  const settings: Record<string, unknown> = {
    "index.number_of_shards": options.shards ?? 1,
    "index.mapping.total_fields.limit": totalFieldsLimit,
    ...(options.replicas === undefined ? {} : { "index.number_of_replicas": options.replicas })
  }
  return {
    alias,
    period,
    templateName: `${alias}-template`,
    indexPattern: `${alias}-*`,
    indexFor: (document) => {
      if (period === "none") return { index: `${alias}-all` }
      const when = dateOf(document.body)
      if (when === undefined) {
        return { reason: "the document has no valid timestamp or receivedAt to choose its daily index by" }
      }
      const month = `${when.getUTCFullYear()}.${pad(when.getUTCMonth() + 1)}`
      return {
        index: period === "month" ? `${alias}-${month}` : `${alias}-${month}.${pad(when.getUTCDate())}`
      }
    },
    template: {
      index_patterns: [`${alias}-*`],
      // Above the default 0, so a broader template of the user's does not win on these indices.
      priority: 200,
      template: {
        settings,
        aliases: { [alias]: {} },
        mappings: {
          properties: {
            id: keyword,
            type: keyword,
            tenant: keyword,
            timestamp: date,
            receivedAt: date,
            payload: open,
            attributes: open
          }
        }
      },
      _meta: { managed_by: "spillway" }
    }
  }
}
