/**
 * A fake of the Node.js Lambda `Context` object (the handler's second argument), for calling
 * handlers in tests. `getRemainingTimeInMillis` counts down to a deadline on Effect's `Clock`, so
 * under `TestClock` the time left moves only when the test moves it, as a handler's budget
 * (`Schedules.sinkWriteBudget`) expects; it never goes below 0.
 *
 * The shape is the one `@types/aws-lambda` declares and the runtime passes, deprecated
 * `done`/`fail`/`succeed` included (they record what they were called with).
 */
import { type Clock, Duration, Effect } from "effect"

export interface CognitoIdentity {
  readonly cognitoIdentityId: string
  readonly cognitoIdentityPoolId: string
}

/** The Node.js Lambda runtime's `Context`. */
export interface LambdaContext {
  callbackWaitsForEmptyEventLoop: boolean
  readonly functionName: string
  readonly functionVersion: string
  readonly invokedFunctionArn: string
  /** A string, as the runtime passes it. */
  readonly memoryLimitInMB: string
  readonly awsRequestId: string
  readonly logGroupName: string
  readonly logStreamName: string
  readonly identity?: CognitoIdentity | undefined
  readonly clientContext?: unknown
  readonly getRemainingTimeInMillis: () => number
  /** @deprecated as in the runtime; recorded in `FakeContext.calls`. */
  readonly done: (error?: Error, result?: unknown) => void
  /** @deprecated as in the runtime; recorded in `FakeContext.calls`. */
  readonly fail: (error: Error | string) => void
  /** @deprecated as in the runtime; recorded in `FakeContext.calls`. */
  readonly succeed: (result: unknown) => void
}

/** The fake context and what its deprecated callbacks were called with. */
export interface FakeContext extends LambdaContext {
  readonly calls: ReadonlyArray<{
    readonly method: "done" | "fail" | "succeed"
    readonly args: ReadonlyArray<unknown>
  }>
}

export interface Options {
  /** @default "spillway-processor" */
  readonly functionName?: string
  /** @default "$LATEST" */
  readonly functionVersion?: string
  /** @default "eu-west-1" */
  readonly region?: string
  /** @default "123456789012" */
  readonly accountId?: string
  /** @default 1024 */
  readonly memoryLimitInMB?: number
  /** @default "00000000-0000-4000-8000-000000000001" */
  readonly awsRequestId?: string
  /** Epoch milliseconds at which the invocation times out; wins over `timeout`. */
  readonly deadline?: number
  /** The function's timeout, counted from now. @default 3 seconds (Lambda's default) */
  readonly timeout?: Duration.Input
}

/** A context whose deadline is `options.deadline`, or `timeout` from the current `Clock` time. */
export const make = (options: Options = {}): Effect.Effect<FakeContext> =>
  Effect.map(Effect.clockWith(Effect.succeed), (clock: Clock.Clock) => {
    const functionName = options.functionName ?? "spillway-processor"
    const region = options.region ?? "eu-west-1"
    const accountId = options.accountId ?? "123456789012"
    const deadline =
      options.deadline ?? clock.currentTimeMillisUnsafe() + Duration.toMillis(options.timeout ?? "3 seconds")
    const calls: Array<{ method: "done" | "fail" | "succeed"; args: ReadonlyArray<unknown> }> = []
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName,
      functionVersion: options.functionVersion ?? "$LATEST",
      invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${functionName}`,
      memoryLimitInMB: String(options.memoryLimitInMB ?? 1024),
      awsRequestId: options.awsRequestId ?? "00000000-0000-4000-8000-000000000001",
      logGroupName: `/aws/lambda/${functionName}`,
      logStreamName: "2026/11/24/[$LATEST]0123456789abcdef0123456789abcdef",
      getRemainingTimeInMillis: () => Math.max(0, deadline - clock.currentTimeMillisUnsafe()),
      done: (...args) => void calls.push({ method: "done", args }),
      fail: (...args) => void calls.push({ method: "fail", args }),
      succeed: (...args) => void calls.push({ method: "succeed", args }),
      calls
    }
  })
