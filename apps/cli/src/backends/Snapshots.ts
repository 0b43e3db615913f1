/**
 * The snapshots `spillway restore` chooses from and restores, as one interface over OpenSearch
 * (`OpenSearchSnapshots` of `@spillway/aws`: a repository such as the service's hourly
 * `cs-automated`, or an `fs` repository on a self-managed node) and over the in-memory index of a
 * rehearsal (`Rehearsal.ts`). Only the layout's indices (`<alias>-*`) are ever restored or
 * deleted, by name.
 */
import { OpenSearchClient, OpenSearchSnapshots } from "@spillway/aws"
import { Data, Effect } from "effect"
import { IndexError } from "./OpenSearchIndex.js"

export interface Snapshot {
  readonly name: string
  /** `SUCCESS`, `PARTIAL`, `FAILED`, `IN_PROGRESS`: only `SUCCESS` is fit to restore from. */
  readonly state: string
  /** Epoch ms: what was indexed before this is in the snapshot. */
  readonly startedAt: number
  readonly endedAt: number | undefined
  /** The layout's indices it holds. */
  readonly indices: ReadonlyArray<string>
}

/** The store refused in a way only the operator can fix (a repository that does not exist, no access). */
export class StoreRefusal extends Data.TaggedError("StoreRefusal")<{ readonly message: string }> {}

export interface Store {
  /** `repository cs-automated`: where snapshots are listed from. */
  readonly location: string
  readonly repository: string
  /** Oldest first. */
  readonly list: Effect.Effect<ReadonlyArray<Snapshot>, IndexError | StoreRefusal>
  /** The open indices a restore of `snapshot` would collide with. */
  readonly openIndices: (snapshot: Snapshot) => Effect.Effect<ReadonlyArray<string>, IndexError>
  readonly deleteIndices: (names: ReadonlyArray<string>) => Effect.Effect<void, IndexError>
  /** Restores the layout's indices of `snapshot`, with their aliases; answers the indices restored. */
  readonly restore: (snapshot: Snapshot) => Effect.Effect<ReadonlyArray<string>, IndexError>
}

const indexError = (error: OpenSearchSnapshots.SnapshotError) =>
  new IndexError({ message: error.message, retryable: error.isRetryable })

export const openSearch = (client: OpenSearchClient.Service, repository: string, alias: string): Store => {
  const pattern = `${alias}-*`
  const ofLayout = (name: string) => name.startsWith(`${alias}-`)
  const run = <A>(
    effect: Effect.Effect<A, OpenSearchSnapshots.SnapshotError, OpenSearchClient.OpenSearchClient>
  ) =>
    effect.pipe(Effect.provideService(OpenSearchClient.OpenSearchClient, client), Effect.mapError(indexError))
  return {
    location: `repository ${repository}`,
    repository,
    list: OpenSearchSnapshots.list(repository).pipe(
      Effect.provideService(OpenSearchClient.OpenSearchClient, client),
      Effect.mapError((error) =>
        error.reason === "RepositoryMissing"
          ? new StoreRefusal({
              message: `${error.message} (give the repository with --snapshot-repository or $SNAPSHOT_REPOSITORY; the service's hourly snapshots are in cs-automated)`
            })
          : error.reason === "AccessDenied"
            ? new StoreRefusal({ message: error.message })
            : indexError(error)
      ),
      Effect.map((snapshots) =>
        snapshots.map((s) => ({
          name: s.name,
          state: s.state,
          startedAt: s.startedAt,
          endedAt: s.endedAt,
          indices: s.indices.filter(ofLayout).sort()
        }))
      )
    ),
    openIndices: (snapshot) =>
      run(OpenSearchSnapshots.indices(pattern)).pipe(
        Effect.map((open) => open.filter((name) => snapshot.indices.includes(name)))
      ),
    deleteIndices: (names) => run(OpenSearchSnapshots.deleteIndices(names.filter(ofLayout))),
    restore: (snapshot) =>
      run(OpenSearchSnapshots.restore(repository, snapshot.name, { indices: [pattern] })).pipe(
        Effect.map((result) => result.indices.filter(ofLayout).sort())
      )
  }
}
