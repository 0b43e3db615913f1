/**
 * Splitting a list into consecutive batches that respect a count limit and a byte limit — the
 * shape of every AWS batch API Spillway calls (PutRecords, SendMessageBatch, PutRecordBatch,
 * `_bulk`). Order is kept; an item over the byte limit on its own still gets a batch of its own,
 * so the service reports it instead of it vanishing.
 */
export interface Limits {
  readonly maxCount: number
  readonly maxBytes: number
}

export const chunkBySize = <A>(
  items: ReadonlyArray<A>,
  sizeOf: (item: A) => number,
  limits: Limits
): Array<Array<A>> => {
  const chunks: Array<Array<A>> = []
  let current: Array<A> = []
  let bytes = 0
  for (const item of items) {
    const size = sizeOf(item)
    if (current.length > 0 && (current.length >= limits.maxCount || bytes + size > limits.maxBytes)) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}
