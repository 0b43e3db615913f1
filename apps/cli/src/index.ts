/**
 * @spillway/cli: the `spillway` command (`dev`: the local pipeline; `simulate`: failure scenarios on
 * simulated time; `reprocess-failures`, `replay`, `restore`: recovery, as an operator runs it), and
 * the collector's HTTP contract, which any transport — the local server
 * here, the Lambda collector — can answer with.
 */
export * as CollectorHttp from "./collector/http.js"
export * as CollectorServer from "./collector/server.js"
