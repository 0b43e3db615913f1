/**
 * The bench's baseline: a Kinesis processor written the way Powertools documents it
 * (`processPartialResponse` over `BatchProcessor(EventType.KinesisDataStreams)`), each record's
 * data decoded from base64 and parsed as JSON, bundled with the functions' own esbuild options.
 * It does the work of a processor without its sink, so its cold start is what a minimal,
 * well-made processor costs next to ours.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch"

interface KinesisRecord {
  readonly kinesis: { readonly data: string }
}

const processor = new BatchProcessor(EventType.KinesisDataStreams)

const recordHandler = async (record: KinesisRecord): Promise<unknown> =>
  JSON.parse(Buffer.from(record.kinesis.data, "base64").toString("utf8"))

export const handler = async (event: { Records: Array<KinesisRecord> }, context: unknown) =>
  processPartialResponse(event, recordHandler, processor, { context })
