/**
 * S3 for this package's tests: fauxqs started once per test file (`fauxqsForFile`, in vitest's
 * `beforeAll`), a fresh bucket per test, an optional `FaultProxy` in front, and a read of what a
 * bucket holds under a prefix that trusts nothing the sink wrote: every object must be one JSON
 * line of `{ id, body }`, at the key its id gives.
 */
import { createHash } from "node:crypto"
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3"
import { afterAll, beforeAll } from "@effect/vitest"
import type { DocumentSink } from "@spillway/core"
import { Emulators, type FaultProxy } from "@spillway/emulators"
import { Effect, Exit, Scope } from "effect"

/** fauxqs for the test file; call at the top level of the file, use the result inside tests. */
export const fauxqsForFile = (): (() => Emulators.Fauxqs) => {
  const scope = Scope.makeUnsafe()
  let server: Emulators.Fauxqs | undefined
  beforeAll(() =>
    Effect.runPromise(
      Emulators.fauxqs.pipe(
        Effect.map((started) => {
          server = started
        }),
        Scope.provide(scope)
      )
    )
  )
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return () => {
    if (server === undefined) throw new Error("fauxqs is not started: fauxqsForFile() starts it in beforeAll")
    return server
  }
}

let buckets = 0
/** A bucket no other test of this file uses, created on `fauxqs`. */
export const freshBucket = (fauxqs: Emulators.Fauxqs): Effect.Effect<string> =>
  fauxqs.createBucket(`json-lines-${process.pid}-${++buckets}`).pipe(Effect.orDie)

/** Whether a request the proxy sees carries a document, which only a `PutObject` of the sink does. */
export const carriedDocument = (request: FaultProxy.Intercepted): string | undefined => {
  const body = request.body as { readonly id?: unknown; readonly body?: unknown } | undefined
  return typeof body === "object" &&
    body !== null &&
    typeof body.id === "string" &&
    typeof body.body === "object"
    ? body.id
    : undefined
}

/** An S3 error as the proxy can answer it: the status only (the SDK cannot parse its JSON body). */
export const answer = (status: number, code: string): FaultProxy.Action => ({
  _tag: "Respond",
  status,
  body: { Code: code, Message: `${code} (injected by the fault proxy)` }
})

/** Every key under `prefix`, all pages. */
export const keys = (
  client: S3Client,
  bucket: string,
  prefix: string
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.promise(async () => {
    const found: Array<string> = []
    let token: string | undefined
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ...(token === undefined ? {} : { ContinuationToken: token })
        })
      )
      for (const object of page.Contents ?? []) if (object.Key !== undefined) found.push(object.Key)
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return found
  })

const expectedKey = (prefix: string, id: string) =>
  `${prefix}${createHash("sha256").update(Buffer.from(id, "utf8")).digest("hex")}.jsonl`

/**
 * Every document the bucket holds under `prefix`, read with the plain SDK. Fails when an object
 * is not exactly one line `{"id":…,"body":{…}}\n`, or sits at a key other than its id's.
 */
export const documentsIn = (
  client: S3Client,
  bucket: string,
  prefix: string
): Effect.Effect<ReadonlyArray<DocumentSink.Document>, string> =>
  Effect.flatMap(keys(client, bucket, prefix), (found) =>
    Effect.forEach(
      found,
      (key) =>
        Effect.flatMap(
          Effect.promise(async () => {
            const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
            return { text: (await object.Body?.transformToString("utf8")) ?? "", type: object.ContentType }
          }),
          ({ text, type }) => {
            const lines = text.split("\n")
            if (lines.length !== 2 || lines[1] !== "") return Effect.fail(`${key}: not one line: ${text}`)
            const parsed = JSON.parse(lines[0]!) as DocumentSink.Document
            if (Object.keys(parsed).join(",") !== "id,body")
              return Effect.fail(`${key}: not { id, body }: ${text}`)
            if (key !== expectedKey(prefix, parsed.id))
              return Effect.fail(`${key}: not the key of ${parsed.id}`)
            if (type !== "application/x-ndjson") return Effect.fail(`${key}: content type ${type}`)
            return Effect.succeed(parsed)
          }
        ),
      { concurrency: 16 }
    )
  )
