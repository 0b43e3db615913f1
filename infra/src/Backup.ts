/**
 * Backup: Amazon Data Firehose reads the stream into an S3 archive in the layout the backup
 * replayer (and `Restore`) read (`ARCHIVE_PREFIX` + `YYYY/MM/dd/HH/`, UTC, one record per line),
 * and the backup replayer puts an archived window back into the stream.
 *
 * Guarantees:
 * - every record Firehose delivers ends with a newline (the `AppendDelimiterToRecord` processor):
 *   the archive's objects are newline-delimited JSON, which is how `Archive.decodeObject` splits
 *   them; without it Firehose concatenates records.
 * - objects are filed under the hour of their oldest record, in UTC, and gzipped by default
 *   (names end in `.gz`, which is how the replayer knows to gunzip); delivery failures go under a
 *   separate `delivery-errors/` prefix the replayer never lists.
 * - SSE-KMS with a key of its own (rotated yearly, S3 Bucket Keys on: one KMS call per bucket key,
 *   not per object); TLS only; no public access; versioned, so an overwritten or deleted object
 *   can be recovered for 30 days.
 * - lifecycle: Standard-IA, then Glacier Instant Retrieval, then deleted — never a storage class
 *   that needs a restore before it can be read, so any hour in retention can be replayed at once.
 * - the replayer's role may list the archive's prefix, read its objects, decrypt with its key and
 *   put records into the stream; nothing else.
 */
import { Duration, type RemovalPolicy, Size, Stack } from "aws-cdk-lib"
import * as iam from "aws-cdk-lib/aws-iam"
import type * as kinesis from "aws-cdk-lib/aws-kinesis"
import * as firehose from "aws-cdk-lib/aws-kinesisfirehose"
import * as kms from "aws-cdk-lib/aws-kms"
import * as logs from "aws-cdk-lib/aws-logs"
import * as s3 from "aws-cdk-lib/aws-s3"
import { Construct } from "constructs"
import { durationIn, ensure, integerIn } from "./internal/checks.js"
import { acknowledge } from "./internal/nag.js"
import { output } from "./internal/outputs.js"
import { type FunctionDefaults, SpillwayFunction } from "./SpillwayFunction.js"

export interface BackupSettings {
  /** `ARCHIVE_PREFIX`: where the hour prefixes start, empty or ending in '/'. @default "archive/" */
  readonly prefix?: string
  /** `ARCHIVE_COMPRESSION`: how Firehose writes the objects. @default "GZIP" */
  readonly compression?: "GZIP" | "UNCOMPRESSED"
  /** How long Firehose buffers before writing an object, 0–900 s (records younger than this are not in S3 yet). @default Duration.seconds(60) */
  readonly bufferingInterval?: Duration
  /** How much Firehose buffers before writing an object, 1–128 MiB (before compression). @default 16 */
  readonly bufferingSizeMiB?: number
  /** Age at which objects move to Standard-IA (30 days at least). @default Duration.days(30) */
  readonly infrequentAccessAfter?: Duration
  /** Age at which objects move to Glacier Instant Retrieval (after Standard-IA). @default Duration.days(90) */
  readonly glacierInstantRetrievalAfter?: Duration
  /** Age at which objects are deleted (after the transitions): how far back a replay can reach. @default Duration.days(365) */
  readonly expireAfter?: Duration
  /** The backup replayer's timeout (it stops at a checkpoint before it and answers `next`). @default Duration.minutes(5) */
  readonly replayerTimeout?: Duration
}

export interface BackupProps extends BackupSettings {
  readonly stream: kinesis.IStream
  readonly functions: FunctionDefaults
  readonly removalPolicy: RemovalPolicy
  /** How long Firehose's delivery error logs are kept. */
  readonly logRetention: logs.RetentionDays
}

/** Where Firehose puts what it could not deliver or process; never under the archive's prefix. */
export const deliveryErrorsPrefix = "delivery-errors/"

export class Backup extends Construct {
  readonly bucket: s3.Bucket
  readonly key: kms.Key
  readonly deliveryStream: firehose.DeliveryStream
  readonly replayer: SpillwayFunction
  readonly prefix: string

  constructor(scope: Construct, id: string, props: BackupProps) {
    super(scope, id)
    const prefix = props.prefix ?? "archive/"
    ensure(
      this,
      "prefix",
      /^([A-Za-z0-9!_.*'()-]+\/)*$/.test(prefix) && !prefix.startsWith(deliveryErrorsPrefix),
      `must be empty or folders ending in '/' (S3-safe characters), outside ${deliveryErrorsPrefix}, got ${JSON.stringify(prefix)}`
    )
    this.prefix = prefix
    const compression = props.compression ?? "GZIP"
    const bufferingInterval = durationIn(
      this,
      "bufferingInterval",
      props.bufferingInterval ?? Duration.seconds(60),
      Duration.seconds(0),
      Duration.seconds(900),
      "Firehose's limits"
    )
    const bufferingSize = integerIn(
      this,
      "bufferingSizeMiB",
      props.bufferingSizeMiB ?? 16,
      1,
      128,
      "Firehose's limits"
    )
    const toIa = props.infrequentAccessAfter ?? Duration.days(30)
    const toGlacierIr = props.glacierInstantRetrievalAfter ?? Duration.days(90)
    const expire = props.expireAfter ?? Duration.days(365)
    durationIn(
      this,
      "infrequentAccessAfter",
      toIa,
      Duration.days(30),
      Duration.days(36_500),
      "S3's minimum for Standard-IA"
    )
    ensure(
      this,
      "glacierInstantRetrievalAfter",
      toGlacierIr.toDays() >= toIa.toDays() + 30,
      `(${toGlacierIr.toHumanString()}) must be at least 30 days after infrequentAccessAfter (${toIa.toHumanString()}): S3 lifecycle rules keep objects 30 days in Standard-IA before the next transition`
    )
    ensure(
      this,
      "expireAfter",
      expire.toDays() > toGlacierIr.toDays(),
      `(${expire.toHumanString()}) must come after glacierInstantRetrievalAfter (${toGlacierIr.toHumanString()})`
    )

    this.key = new kms.Key(this, "Key", {
      description: "Spillway backup archive (S3 SSE-KMS)",
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy
    })
    this.bucket = new s3.Bucket(this, "Archive", {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy: props.removalPolicy,
      lifecycleRules: [
        {
          id: "archive-tiers",
          transitions: [
            { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: toIa },
            { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: toGlacierIr }
          ],
          expiration: expire,
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1)
        }
      ]
    })
    acknowledge(
      this.bucket,
      "S1",
      "The archive is written only by the delivery stream's role and read only by the backup replayer's role (and operators); S3 server access logs would need a second bucket that itself has no access logs. CloudTrail data events are the audit path when one is required."
    )

    // cdk-nag names a wildcard resource finding after the bucket's logical id.
    const bucketLogicalId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)
    const objectsFinding = (objectPrefix: string) =>
      `IAM5[Resource::<${bucketLogicalId}.Arn>/${objectPrefix}*]`

    const deliveryLogs = new logs.LogGroup(this, "DeliveryLogs", {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy
    })
    // Firehose's role for the destination holds exactly what AWS documents for an S3 destination
    // with SSE-KMS, on the two prefixes it writes. CDK's S3 destination would grant read-write on
    // the whole bucket (deletes, object-lock retention, every key's encryption), so it is handed
    // this role without policy updates, and those grants are dropped.
    const deliveryRole = new iam.Role(this, "DeliveryRole", {
      assumedBy: new iam.ServicePrincipal("firehose.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } }
      }),
      description: "Spillway backup: Firehose writes the archive"
    })
    const archiveObjects = [
      this.bucket.arnForObjects(`${prefix}*`),
      this.bucket.arnForObjects(`${deliveryErrorsPrefix}*`)
    ]
    const deliveryPolicy = new iam.Policy(this, "DeliveryPolicy", {
      roles: [deliveryRole],
      statements: [
        new iam.PolicyStatement({
          actions: ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
          resources: [this.bucket.bucketArn]
        }),
        new iam.PolicyStatement({
          actions: ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
          resources: archiveObjects
        }),
        new iam.PolicyStatement({
          actions: ["kms:GenerateDataKey", "kms:Decrypt"],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { "kms:ViaService": `s3.${Stack.of(this).region}.amazonaws.com` } }
        }),
        new iam.PolicyStatement({
          actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
          resources: [deliveryLogs.logGroupArn]
        })
      ]
    })
    acknowledge(
      deliveryPolicy,
      objectsFinding(prefix),
      "Firehose names each object itself (hour prefix, stream name, time, uuid): the role may write only under the archive's prefix."
    )
    acknowledge(
      deliveryPolicy,
      objectsFinding(deliveryErrorsPrefix),
      "Firehose names each object itself: the role may write what it could not deliver only under the delivery-errors prefix."
    )

    this.deliveryStream = new firehose.DeliveryStream(this, "DeliveryStream", {
      source: new firehose.KinesisStreamSource(props.stream),
      // `Bucket` and `IBucket` disagree on an optional property under exactOptionalPropertyTypes.
      destination: new firehose.S3Bucket(this.bucket as s3.IBucket, {
        role: deliveryRole.withoutPolicyUpdates(),
        // The hour of the oldest record in the object, in UTC: `Archive.hourPrefix`'s layout.
        dataOutputPrefix: `${prefix}!{timestamp:yyyy/MM/dd/HH}/`,
        errorOutputPrefix: `${deliveryErrorsPrefix}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/`,
        compression: compression === "GZIP" ? firehose.Compression.GZIP : firehose.Compression.UNCOMPRESSED,
        encryptionKey: this.key,
        bufferingInterval,
        bufferingSize: Size.mebibytes(bufferingSize),
        processors: [new firehose.AppendDelimiterToRecordProcessor()],
        loggingConfig: new firehose.EnableLogging(deliveryLogs)
      })
    })
    // The role's policy must be in place before Firehose first writes.
    this.deliveryStream.node.addDependency(deliveryPolicy)
    acknowledge(
      this.deliveryStream,
      "KDF1",
      "The delivery stream's source is the Kinesis stream, itself encrypted (aws/kinesis); Firehose server-side encryption applies only to Direct PUT sources. What it delivers is encrypted with the archive's KMS key (SSE-KMS)."
    )

    this.replayer = new SpillwayFunction(this, "Replayer", {
      ...props.functions,
      bundle: "backup-replayer",
      description:
        "Spillway backup replayer: puts an archived window back into the stream ({ from, to, checkpoint? })",
      timeout: durationIn(
        this,
        "replayerTimeout",
        props.replayerTimeout ?? Duration.minutes(5),
        Duration.seconds(30),
        Duration.minutes(15),
        "Lambda's limit"
      ),
      environment: {
        ARCHIVE_BUCKET: this.bucket.bucketName,
        ARCHIVE_PREFIX: prefix,
        ARCHIVE_COMPRESSION: compression,
        FIREHOSE_STREAM_NAME: this.deliveryStream.deliveryStreamName,
        STREAM_ARN: props.stream.streamArn
      }
    })
    // ListObjectsV2 per hour prefix, restricted to the archive's prefix; GetObject of its objects.
    this.replayer.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:ListBucket"],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { "s3:prefix": [`${prefix}*`] } }
      })
    )
    this.replayer.allow(["s3:GetObject"], [this.bucket.arnForObjects(`${prefix}*`)])
    acknowledge(
      this.replayer.role,
      objectsFinding(prefix),
      "The replayer reads whichever objects Firehose filed under the window's hour prefixes: GetObject on the archive's prefix only (ListBucket is limited to it by s3:prefix)."
    )
    this.replayer.allow(["kms:Decrypt"], [this.key.keyArn])
    this.replayer.allow(["kinesis:PutRecords"], [props.stream.streamArn])

    output(this, "ArchiveBucket", this.bucket.bucketName)
    output(
      this,
      "BackupReplayerName",
      this.replayer.function.functionName,
      "Invoke with { from, to } to put an archived window back into the stream"
    )
  }
}
