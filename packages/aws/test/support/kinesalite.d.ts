/** The part of kinesalite's CommonJS API the tests use (it ships no types). */
declare module "kinesalite" {
  import type { Server } from "node:http"

  interface KinesaliteOptions {
    /** Milliseconds a stream stays CREATING. @default 500 */
    readonly createStreamMs?: number
    readonly deleteStreamMs?: number
    readonly updateStreamMs?: number
    readonly shardLimit?: number
    /** LevelDB directory; in memory when omitted. */
    readonly path?: string
  }

  function kinesalite(options?: KinesaliteOptions): Server
  export default kinesalite
}
