/**
 * Reading an error thrown by an AWS SDK v3 client without trusting its class: the error name the
 * service sent (`__type` / `x-amzn-query-error`), the HTTP status when there was a response at all,
 * and a message short enough for a log line. Every backend maps these three facts to its own typed
 * `reason`, so the mapping tables stay next to the service they describe.
 */

export interface AwsFailure {
  /** The service's error code (`ProvisionedThroughputExceededException`, `QueueDoesNotExist`, ...). */
  readonly name: string
  /** HTTP status of the response; `undefined` when no response arrived (socket, DNS, timeout). */
  readonly status: number | undefined
  readonly message: string
}

// Kinesis validation messages quote every entry of a rejected call; a log line needs the start.
const maxMessageLength = 400

const truncate = (text: string): string =>
  text.length > maxMessageLength ? `${text.slice(0, maxMessageLength)}…` : text

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

export const inspect = (error: unknown): AwsFailure => {
  const name = field(error, "name")
  const message = field(error, "message")
  const status = field(field(error, "$metadata"), "httpStatusCode")
  const code = field(error, "code")
  return {
    name: typeof name === "string" && name.length > 0 ? name : typeof code === "string" ? code : "Error",
    status: typeof status === "number" ? status : undefined,
    message: truncate(typeof message === "string" ? message : String(error))
  }
}

/** `"Name: message"`, the form every backend error message takes (as the memory backends write them). */
export const describe = (failure: AwsFailure): string =>
  failure.message.length > 0 ? `${failure.name}: ${failure.message}` : failure.name

/** No HTTP response: the request may or may not have reached the service. */
export const isConnectionLevel = (failure: AwsFailure): boolean => failure.status === undefined

/** Credentials could not be found or loaded: a configuration problem, not an outage. */
export const isCredentialsFailure = (failure: AwsFailure): boolean =>
  failure.name === "CredentialsProviderError"

/** Codes every AWS JSON service uses for "your signature or credentials are refused". */
export const authErrorNames: ReadonlySet<string> = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "ExpiredToken",
  "ExpiredTokenException",
  "RequestExpired",
  "InvalidSecurity",
  "CredentialsProviderError"
])
