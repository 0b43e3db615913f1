/**
 * The local collector's settings. The HTTP contract itself is `CollectorHttp` in `@spillway/core`
 * (the Lambda collector serves the same one); `spillway dev` only chooses its own limits here.
 *
 * Locally one `--max-body-bytes` bounds the body raw and decompressed, 1 MiB unless told
 * otherwise: stricter than the deployment (`CollectorHttp.defaultMaxBodyBytes`, 4 MiB raw;
 * `defaultMaxDecodedBytes`, 10 MiB decompressed), so what a client gets accepted locally is also
 * accepted deployed.
 */
import { CollectorHttp } from "@spillway/core"

export const defaultMaxBodyBytes = 1024 * 1024

export const { telemetryPath } = CollectorHttp

/**
 * Origins a browser may post from locally: pages served from this machine (any port), never
 * another site — a page on the web cannot make a visitor's browser post to their local collector.
 */
export const localOrigins: ReadonlyArray<string> = [
  "http://localhost",
  "http://localhost:*",
  "http://127.0.0.1",
  "http://127.0.0.1:*"
]
