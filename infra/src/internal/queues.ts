/**
 * An SQS queue the pipeline keeps data (or the record of lost data) in, with its dead-letter
 * queue: encrypted (SQS-managed keys, so producers and consumers need no KMS grant), TLS only,
 * kept the longest SQS allows (14 days, the dead-letter queue too: a standard queue keeps a
 * message's first enqueue time, so a shorter DLQ retention could expire it on arrival), and a
 * visibility timeout of six times the consuming function's timeout, as Lambda recommends for an
 * SQS event source (a batch that is retried, or throttled, is not sent twice meanwhile). A queue
 * no function consumes (the clickstream path's on-failure queues, read by a person) keeps SQS's
 * default visibility timeout.
 */
import { Duration, type RemovalPolicy } from "aws-cdk-lib"
import * as sqs from "aws-cdk-lib/aws-sqs"
import type { Construct } from "constructs"
import { integerIn } from "./checks.js"

export interface QueueWithDlqProps {
  /**
   * The timeout of the function its event source mapping invokes.
   * @default no function consumes it (a person reads it): SQS's default visibility timeout, 30 s
   */
  readonly consumerTimeout?: Duration
  /** Receives before SQS moves a message to the dead-letter queue. */
  readonly maxReceiveCount: number
  readonly removalPolicy: RemovalPolicy
  /** The queue's largest message. @default SQS's default (1 MiB for queues created since August 2025) */
  readonly maxMessageSizeBytes?: number
}

export interface QueueWithDlq {
  readonly queue: sqs.Queue
  readonly deadLetterQueue: sqs.Queue
}

/** The longest an SQS queue keeps a message. */
export const maxRetention = Duration.days(14)

export const queueWithDlq = (scope: Construct, id: string, props: QueueWithDlqProps): QueueWithDlq => {
  const maxReceiveCount = integerIn(
    scope,
    `${id} maxReceiveCount`,
    props.maxReceiveCount,
    1,
    1000,
    "SQS redrive policy limits"
  )
  const common = {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: maxRetention,
    removalPolicy: props.removalPolicy
  }
  const deadLetterQueue = new sqs.Queue(scope, `${id}DeadLetters`, common)
  const queue = new sqs.Queue(scope, id, {
    ...common,
    ...(props.consumerTimeout === undefined
      ? {}
      : { visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6) }),
    ...(props.maxMessageSizeBytes === undefined ? {} : { maxMessageSizeBytes: props.maxMessageSizeBytes }),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount }
  })
  return { queue, deadLetterQueue }
}
