/**
 * The one way an SDK client comes to life in Spillway: created when its layer is built and
 * destroyed (sockets closed) when the layer's scope closes, so a Lambda's `ManagedRuntime.dispose`
 * or a test's scope leaves no open handles behind.
 */
import { Effect, type Scope } from "effect"

export const scopedClient = <C extends { destroy(): void }>(
  create: () => C
): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(create), (client) => Effect.sync(() => client.destroy()))
