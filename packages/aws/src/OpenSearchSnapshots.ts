/**
 * Index snapshots and restores through `OpenSearchClient` (signed like every other request):
 * the first step of disaster recovery, before `Restore` writes from the archive what came after
 * the snapshot (docs/aws-behaviour.md §6.7).
 *
 * - Amazon OpenSearch Service takes a snapshot every hour into the repository `cs-automated`
 *   (`cs-automated-enc` on encrypted domains) and keeps 336 of them; they can be listed and
 *   restored, not taken or deleted by hand. A manual repository (S3, registered with an IAM role;
 *   `fs` on a self-managed node, inside its `path.repo`) takes snapshots on demand.
 * - A snapshot holds what was indexed (and refreshed into segments) when it **started**:
 *   `startedAt` is the point a restore goes back to, and the archive restore must begin a little
 *   before it (the processing lag), never after.
 * - `restore` refuses, as OpenSearch does, while an open index of a name it would restore exists:
 *   `IndexExists` names them. Deleting them (`deleteIndices`) loses what they hold; what was
 *   written into them after the loss is in the archive, and `Restore` writes it again.
 * - Everything is keyed by name, so a step run twice ends the same way: registering a repository
 *   again with the same settings, restoring over deleted indices again.
 */
import { Effect, Schema } from "effect"
import {
  OpenSearchClient,
  type Request as OpenSearchClientRequest,
  type OpenSearchRequestError
} from "./OpenSearchClient.js"

export const SnapshotErrorReason = Schema.Literals([
  "RepositoryMissing",
  "SnapshotMissing",
  "IndexExists",
  "Failed",
  "Unavailable",
  "AccessDenied",
  "InvalidRequest"
])
export type SnapshotErrorReason = typeof SnapshotErrorReason.Type

export class SnapshotError extends Schema.TaggedError<SnapshotError>()("SnapshotError", {
  reason: SnapshotErrorReason,
  message: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export interface Snapshot {
  readonly repository: string
  readonly name: string
  /** `SUCCESS`, `PARTIAL`, `FAILED`, `IN_PROGRESS`. Only `SUCCESS` is fit to restore from. */
  readonly state: string
  /** Epoch ms: what was indexed before this is in the snapshot. */
  readonly startedAt: number
  readonly endedAt: number | undefined
  readonly indices: ReadonlyArray<string>
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

const errorOf = (error: OpenSearchRequestError, context: string): SnapshotError => {
  const status = error.statusCode
  const body = error.body
  const type = String(field(field(body, "error"), "type") ?? "")
  const cause = field(field(field(body, "error"), "caused_by"), "reason")
  const reason =
    String(field(field(body, "error"), "reason") ?? error.message) +
    (typeof cause === "string" ? ` (${cause})` : "")
  const message =
    `${context}: ${typeof status === "number" ? `${status} ` : ""}${type === "" ? "" : `${type}: `}${reason}`.slice(
      0,
      600
    )
  const make = (r: SnapshotErrorReason) => new SnapshotError({ reason: r, message, cause: error })
  if (type === "repository_missing_exception") return make("RepositoryMissing")
  // A restore of an unknown snapshot answers 500 snapshot_restore_exception, not a 404.
  if (type === "snapshot_missing_exception" || /snapshot does not exist/.test(reason))
    return make("SnapshotMissing")
  if (type === "snapshot_restore_exception" && /open index with same name already exists/.test(reason)) {
    return make("IndexExists")
  }
  // A repository that cannot be created (a location outside `path.repo`, a bucket the role
  // cannot reach) answers 500, but retrying cannot help: the settings are wrong.
  if (type === "repository_exception" || type === "repository_verification_exception") {
    return make("InvalidRequest")
  }
  if (typeof status !== "number" || status === 429 || status >= 500) return make("Unavailable")
  if (status === 401 || status === 403) return make("AccessDenied")
  if (status === 404) return make(/snapshot/i.test(type) ? "SnapshotMissing" : "InvalidRequest")
  return make("InvalidRequest")
}

const request = (
  context: string,
  params: {
    readonly method: OpenSearchClientRequest["method"]
    readonly path: string
    readonly body?: unknown
    readonly querystring?: OpenSearchClientRequest["querystring"]
  }
): Effect.Effect<unknown, SnapshotError, OpenSearchClient> =>
  Effect.flatMap(OpenSearchClient, (client) =>
    client
      .request({
        method: params.method,
        path: params.path,
        ...(params.body === undefined ? {} : { body: params.body }),
        ...(params.querystring === undefined ? {} : { querystring: params.querystring }),
        timeoutMillis: 600_000
      })
      .pipe(Effect.mapError((error) => errorOf(error, context)))
  ).pipe(Effect.map((response) => response.body))

const segment = (name: string) => encodeURIComponent(name)

/**
 * Registers (or re-registers with the same settings) a shared-filesystem repository; the location
 * must lie inside the node's `path.repo`. For a self-managed node: Amazon OpenSearch Service
 * domains use an S3 repository registered with an IAM role (see the AWS guide), or `cs-automated`.
 */
export const registerFsRepository = (repository: string, location: string) =>
  request(`cannot register the snapshot repository ${repository}`, {
    method: "PUT",
    path: `/_snapshot/${segment(repository)}`,
    body: { type: "fs", settings: { location } }
  }).pipe(Effect.asVoid)

/** Takes a snapshot of `indices` (patterns allowed) and waits until it is done. */
export const take = (
  repository: string,
  name: string,
  options: { readonly indices: ReadonlyArray<string> }
) =>
  request(`cannot take the snapshot ${repository}/${name}`, {
    method: "PUT",
    path: `/_snapshot/${segment(repository)}/${segment(name)}`,
    querystring: { wait_for_completion: true },
    body: { indices: options.indices.join(","), include_global_state: false, ignore_unavailable: true }
  }).pipe(
    Effect.flatMap((body) => {
      const snapshot = toSnapshot(repository, field(body, "snapshot"))
      return snapshot.state === "SUCCESS"
        ? Effect.succeed(snapshot)
        : Effect.fail(
            new SnapshotError({
              reason: "Failed",
              message: `snapshot ${repository}/${name} ended ${snapshot.state}`
            })
          )
    })
  )

const toSnapshot = (repository: string, raw: unknown): Snapshot => {
  const ended = field(raw, "end_time_in_millis")
  return {
    repository,
    name: String(field(raw, "snapshot") ?? ""),
    state: String(field(raw, "state") ?? "UNKNOWN"),
    startedAt: Number(field(raw, "start_time_in_millis") ?? 0),
    endedAt: typeof ended === "number" && ended > 0 ? ended : undefined,
    indices: (field(raw, "indices") as ReadonlyArray<string> | undefined) ?? []
  }
}

/** Every snapshot the repository holds, oldest first. */
export const list = (repository: string) =>
  request(`cannot list the snapshots of ${repository}`, {
    method: "GET",
    path: `/_snapshot/${segment(repository)}/_all`
  }).pipe(
    Effect.map((body) =>
      ((field(body, "snapshots") as ReadonlyArray<unknown> | undefined) ?? [])
        .map((raw) => toSnapshot(repository, raw))
        .sort((a, b) => a.startedAt - b.startedAt)
    )
  )

/**
 * The last successful snapshot that started before `time` (the loss): the one to restore. A later
 * one was taken after the loss and holds only what came since.
 */
export const lastBefore = (repository: string, time: number) =>
  Effect.flatMap(list(repository), (snapshots) => {
    const chosen = snapshots.filter((s) => s.state === "SUCCESS" && s.startedAt < time).at(-1)
    return chosen === undefined
      ? Effect.fail(
          new SnapshotError({
            reason: "SnapshotMissing",
            message: `no successful snapshot in ${repository} started before ${new Date(time).toISOString()}`
          })
        )
      : Effect.succeed(chosen)
  })

/** Open indices matching `pattern` (an alias's indices: `telemetry-*`). */
export const indices = (pattern: string) =>
  request(`cannot list the indices ${pattern}`, {
    method: "GET",
    path: `/_cat/indices/${segment(pattern)}`,
    querystring: { format: "json", h: "index,status", expand_wildcards: "open" }
  }).pipe(
    Effect.map((body) =>
      ((body as ReadonlyArray<{ readonly index?: string; readonly status?: string }> | undefined) ?? [])
        .filter((row) => row.status === "open" && row.index !== undefined)
        .map((row) => row.index!)
        .sort()
    )
  )

/** Deletes the named indices (by name, never a pattern: a pattern could take more than meant). */
export const deleteIndices = (names: ReadonlyArray<string>) =>
  names.length === 0
    ? Effect.void
    : request(`cannot delete the indices ${names.join(", ")}`, {
        method: "DELETE",
        path: `/${names.map(segment).join(",")}`,
        querystring: { ignore_unavailable: true }
      }).pipe(Effect.asVoid)

export interface RestoreResult {
  readonly snapshot: string
  readonly indices: ReadonlyArray<string>
  readonly shards: { readonly total: number; readonly failed: number }
}

/**
 * Restores `indices` (patterns allowed) of a snapshot, with their aliases, and waits until it is
 * done. Fails `IndexExists` while an open index of the same name exists.
 */
export const restore = (
  repository: string,
  snapshot: string,
  options: { readonly indices: ReadonlyArray<string> }
) =>
  request(`cannot restore ${repository}/${snapshot}`, {
    method: "POST",
    path: `/_snapshot/${segment(repository)}/${segment(snapshot)}/_restore`,
    querystring: { wait_for_completion: true },
    body: {
      indices: options.indices.join(","),
      include_aliases: true,
      include_global_state: false,
      ignore_unavailable: true
    }
  }).pipe(
    Effect.flatMap((body) => {
      const raw = field(body, "snapshot")
      const shards = field(raw, "shards")
      const result: RestoreResult = {
        snapshot: String(field(raw, "snapshot") ?? snapshot),
        indices: (field(raw, "indices") as ReadonlyArray<string> | undefined) ?? [],
        shards: { total: Number(field(shards, "total") ?? 0), failed: Number(field(shards, "failed") ?? 0) }
      }
      return result.shards.failed > 0
        ? Effect.fail(
            new SnapshotError({
              reason: "Failed",
              message: `restore of ${repository}/${snapshot}: ${result.shards.failed} of ${result.shards.total} shards failed`
            })
          )
        : Effect.succeed(result)
    })
  )
