/**
 * `spillway dev`'s read API (`/local/…`), used as a user uses it: `spillway dev --no-demo` in a
 * child process, records posted to its collector with two keys (tenants `demo` and `local`), then
 * read back over HTTP once indexed — by id (unicode, `/` and `%` in the id), and searched by type,
 * tenant, time window, limit, newest first. Bad parameters answer 400 naming the parameter,
 * unknown ids and paths 404, other methods 405. That `--backend emulators` has no read API is
 * checked in dev-emulators.opensearch.test.ts, which runs a real node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Run, start as spawnCli, waitFor } from "./support/cliProcess.js"

const start = (args: ReadonlyArray<string>): Run => spawnCli(["dev", ...args])

/** SIGTERM, then SIGKILL if it has not exited after `ms`. */
const stop = async (run: Run | undefined, ms = 45_000) => {
  if (run === undefined || run.child.exitCode !== null) return
  run.child.kill("SIGTERM")
  const timer = setTimeout(() => run.child.kill("SIGKILL"), ms)
  await run.exit
  clearTimeout(timer)
}

const t0 = Date.parse("2026-11-24T10:00:00.000Z")
const iso = (millis: number) => new Date(millis).toISOString()
const minutes = (n: number) => n * 60_000

const unicodeId = "température/ü 🌡️ 100%"

// Tenant demo (the demo key): five cpu records a minute apart, one cpu record written in +02:00
// (10:02:30Z, between cpu-demo-2 and cpu-demo-3 as an instant, after all of them as a string),
// 25 mem records an hour earlier, one gpu record with a unicode id.
const demoRecords = [
  ...Array.from({ length: 5 }, (_, i) => ({
    id: `cpu-demo-${i}`,
    type: "cpu",
    timestamp: iso(t0 + minutes(i)),
    host: "web-1",
    payload: { value: i }
  })),
  { id: "cpu-offset", type: "cpu", timestamp: "2026-11-24T12:02:30+02:00", payload: { value: 99 } },
  ...Array.from({ length: 25 }, (_, i) => ({
    id: `mem-${String(i).padStart(2, "0")}`,
    type: "mem",
    timestamp: iso(t0 - minutes(60) + i * 1000),
    payload: { used: i }
  })),
  { id: unicodeId, type: "gpu", timestamp: iso(t0), payload: { celsius: 71.5 } }
]
// Tenant local (`--api-key my-key`): three cpu records, timestamps as epoch milliseconds, at the
// same instants as cpu-demo-0..2 (ties are ordered by id).
const localRecords = Array.from({ length: 3 }, (_, i) => ({
  id: `cpu-local-${i}`,
  type: "cpu",
  timestamp: t0 + minutes(i),
  payload: { value: 10 + i }
}))
const total = demoRecords.length + localRecords.length

interface Stored {
  readonly id: string
  readonly version: number
  readonly source: Record<string, unknown>
}
interface SearchBody {
  readonly total: number
  readonly documents: ReadonlyArray<Stored>
}

/** Any answer: a document, a search result, an error (or the collector's health). */
interface Answer extends Partial<Stored>, Partial<SearchBody> {
  readonly error?: { readonly code: string; readonly message: string; readonly parameter?: string }
  readonly ok?: boolean
}

describe("spillway dev read API (memory backends)", () => {
  let run: Run | undefined
  let base = ""
  let printedUrl = ""

  const get = async (path: string) => {
    const response = await fetch(`${base}${path}`)
    return { status: response.status, headers: response.headers, body: (await response.json()) as Answer }
  }
  const search = async (params: Record<string, string | number>) => {
    const query = new URLSearchParams(
      Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])
    )
    const { status, body } = await get(`/local/search?${query}`)
    expect(status, JSON.stringify(body)).toBe(200)
    return body as SearchBody
  }
  const ids = (body: SearchBody) => body.documents.map((d) => d.id)

  beforeAll(async () => {
    run = start(["--port", "0", "--no-demo", "--api-key", "my-key"])
    const [, collector] = await waitFor(run, /collector listening on (http:\/\/\S+)/, 60_000)
    const [, url, origin] = await waitFor(run, /read API\s+((http:\/\/[^/\s]+)\/local\/search\S*)/, 5_000)
    printedUrl = url!
    base = origin!
    const post = async (key: string, body: unknown) => {
      const response = await fetch(collector!, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": key },
        body: JSON.stringify(body)
      })
      expect(response.status).toBe(202)
      expect(await response.json()).toMatchObject({ rejected: [], unavailable: [] })
    }
    await post("demo-key", demoRecords)
    await post("my-key", localRecords)
    // Indexing follows acceptance by a moment: wait until every record is there (a bound, not a figure).
    const deadline = Date.now() + 60_000
    for (;;) {
      const seen = (await search({ limit: 1 })).total
      if (seen === total) break
      if (Date.now() > deadline) throw new Error(`only ${seen} of ${total} documents indexed`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }, 90_000)

  afterAll(() => stop(run), 60_000)

  it("prints the read API next to the collector, and the printed URL answers", async () => {
    expect(run?.output()).toMatch(
      /collector listening on .*\nread API\s+http:\/\/127\.0\.0\.1:\d+\/local\/search\?limit=5/
    )
    const response = await fetch(printedUrl)
    expect(response.status).toBe(200)
    const body = (await response.json()) as SearchBody
    expect(body.total).toBe(total)
    expect(body.documents).toHaveLength(5)
  })

  it("GET /local/documents/{id}: a record posted to the collector, as the index stores it", async () => {
    const { status, headers, body } = await get("/local/documents/cpu-demo-3")
    expect(status).toBe(200)
    expect(headers.get("content-type")).toContain("application/json")
    expect(body).toEqual({
      id: "cpu-demo-3",
      version: 1,
      source: {
        id: "cpu-demo-3",
        type: "cpu",
        timestamp: "2026-11-24T10:03:00.000Z",
        tenant: "demo",
        receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        payload: { value: 3 },
        attributes: { host: "web-1" }
      }
    })
    // Sent as epoch milliseconds with the other key: stored in ISO-8601, under tenant local.
    const local = await get("/local/documents/cpu-local-1")
    expect(local.status).toBe(200)
    expect(local.body.source).toMatchObject({ timestamp: "2026-11-24T10:01:00.000Z", tenant: "local" })
  })

  it("GET /local/documents/{id}: the id is percent-decoded (unicode, %2F, %25, a space)", async () => {
    const { status, body } = await get(`/local/documents/${encodeURIComponent(unicodeId)}`)
    expect(status).toBe(200)
    expect(body.id).toBe(unicodeId)
    expect(body.source).toMatchObject({ id: unicodeId, type: "gpu", payload: { celsius: 71.5 } })
    // Only the whole id finds it: its first segment alone is another (absent) id.
    expect((await get(`/local/documents/${encodeURIComponent("température")}`)).status).toBe(404)
  })

  it("GET /local/documents/{id}: 404 for an id not in the index, 400 for broken percent-encoding", async () => {
    const missing = await get("/local/documents/no-such-id")
    expect(missing.status).toBe(404)
    expect(missing.body).toEqual({
      error: {
        code: "DocumentNotFound",
        message: expect.stringContaining('no document with id "no-such-id"')
      }
    })
    const broken = await get("/local/documents/%E0%A4%A")
    expect(broken.status).toBe(400)
    expect(broken.body.error).toMatchObject({ code: "InvalidParameter", parameter: "id" })
    expect(broken.body.error?.message).toMatch(/^id /)
  })

  it("search by type: every match, newest first by instant, ties by id", async () => {
    const body = await search({ type: "cpu", limit: 100 })
    expect(body.total).toBe(9)
    expect(ids(body)).toEqual([
      "cpu-demo-4",
      "cpu-demo-3",
      "cpu-offset",
      "cpu-demo-2",
      "cpu-local-2",
      "cpu-demo-1",
      "cpu-local-1",
      "cpu-demo-0",
      "cpu-local-0"
    ])
    expect(body.documents.every((d) => d.source.type === "cpu")).toBe(true)
    expect(body.documents[0]).toMatchObject({
      id: "cpu-demo-4",
      version: 1,
      source: { payload: { value: 4 } }
    })
    expect(await search({ type: "disk" })).toEqual({ total: 0, documents: [] })
    // Exact: no prefix or case-insensitive match.
    expect((await search({ type: "CPU" })).total).toBe(0)
  })

  it("search by tenant, alone and with a type", async () => {
    const local = await search({ tenant: "local" })
    expect(local.total).toBe(3)
    expect(ids(local)).toEqual(["cpu-local-2", "cpu-local-1", "cpu-local-0"])
    const demoCpu = await search({ tenant: "demo", type: "cpu" })
    expect(ids(demoCpu)).toEqual([
      "cpu-demo-4",
      "cpu-demo-3",
      "cpu-offset",
      "cpu-demo-2",
      "cpu-demo-1",
      "cpu-demo-0"
    ])
    expect((await search({ tenant: "demo" })).total).toBe(demoRecords.length)
    expect((await search({ tenant: "local", type: "mem" })).total).toBe(0)
  })

  it("search by time window: from included, to excluded; ISO-8601 (any zone) or epoch ms", async () => {
    // [10:01, 10:03): 10:01 is in, 10:03 is out.
    const window = await search({ type: "cpu", from: "2026-11-24T10:01:00Z", to: t0 + minutes(3) })
    expect(window.total).toBe(5)
    expect(ids(window)).toEqual(["cpu-offset", "cpu-demo-2", "cpu-local-2", "cpu-demo-1", "cpu-local-1"])
    // The same instant as 10:02Z, written in +02:00 (URLSearchParams sends the + as %2B).
    const since = await search({ type: "cpu", from: "2026-11-24T12:02:00+02:00" })
    expect(ids(since)).toEqual(["cpu-demo-4", "cpu-demo-3", "cpu-offset", "cpu-demo-2", "cpu-local-2"])
    const before = await search({ to: iso(t0) })
    expect(before.total).toBe(25)
    expect(before.documents.every((d) => d.source.type === "mem")).toBe(true)
  })

  it("search limit: default 20, at most the limit, total still counts every match", async () => {
    const mem = await search({ type: "mem" })
    expect(mem.total).toBe(25)
    expect(mem.documents).toHaveLength(20)
    expect(mem.documents[0]?.id).toBe("mem-24")
    expect(mem.documents[19]?.id).toBe("mem-05")
    const two = await search({ type: "cpu", limit: 2 })
    expect(two).toMatchObject({ total: 9 })
    expect(ids(two)).toEqual(["cpu-demo-4", "cpu-demo-3"])
    const all = await search({ limit: 1000 })
    expect(all.total).toBe(total)
    expect(all.documents).toHaveLength(total)
  })

  it("bad search parameters: 400 naming the parameter, in plain words", async () => {
    const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
      ["limit=0", "limit", /^limit must be a whole number from 1 to 1000, got "0"$/],
      ["limit=1001", "limit", /^limit must be a whole number from 1 to 1000/],
      ["limit=ten", "limit", /^limit must be a whole number/],
      ["limit=2.5", "limit", /^limit must be a whole number/],
      [
        "from=yesterday",
        "from",
        /^from must be an ISO-8601 timestamp with a zone .* or epoch milliseconds, got "yesterday"$/
      ],
      ["to=2026-11-24T10:00:00", "to", /^to must be an ISO-8601 timestamp with a zone/],
      ["from=1795514400", "from", /^from must be epoch milliseconds .*epoch seconds, multiply it by 1000$/],
      ["from=2026-11-24T12:00:00+02:00", "from", /send a \+ in the zone as %2B/],
      [`from=${t0}&to=${t0}`, "to", /^to must be later than from/],
      ["type=", "type", /^type must not be empty$/],
      ["tenant=", "tenant", /^tenant must not be empty$/],
      ["type=cpu&type=mem", "type", /^type is given more than once/],
      [
        "tennant=demo",
        "tennant",
        /^tennant is not a search parameter: the search takes type, tenant, from, to, limit$/
      ]
    ]
    for (const [query, parameter, message] of cases) {
      const { status, body } = await get(`/local/search?${query}`)
      expect(status, query).toBe(400)
      expect(body, query).toEqual({
        error: { code: "InvalidParameter", parameter, message: expect.any(String) }
      })
      expect(body.error?.message, query).toMatch(message)
    }
  })

  it("anything else under /local is 404; a method other than GET is 405 with Allow", async () => {
    for (const path of [
      "/local",
      "/local/",
      "/local/documents",
      "/local/documents/",
      "/local/searches",
      "/local/x/y"
    ]) {
      const { status, body } = await get(path)
      expect(status, path).toBe(404)
      expect(body.error, path).toMatchObject({
        code: "NotFound",
        message: expect.stringContaining("no route for")
      })
    }
    for (const [method, path] of [
      ["POST", "/local/search"],
      ["DELETE", "/local/documents/cpu-demo-0"],
      ["PUT", `/local/documents/${encodeURIComponent(unicodeId)}`]
    ] as const) {
      const response = await fetch(`${base}${path}`, { method, body: method === "DELETE" ? null : "{}" })
      expect(response.status, `${method} ${path}`).toBe(405)
      expect(response.headers.get("allow")).toBe("GET")
      expect(await response.json()).toMatchObject({ error: { code: "MethodNotAllowed" } })
    }
    // Nothing was deleted or replaced.
    expect((await get("/local/documents/cpu-demo-0")).body.version).toBe(1)
    expect((await search({ limit: 1 })).total).toBe(total)
    // The collector's own routes are untouched.
    expect((await get("/healthz")).body).toEqual({ ok: true })
  })
})
