/**
 * @module Blob frames for a restore, read from the packs straight into the
 * frame: blobs that lie close together in one pack are fetched with one
 * vectored read whose pieces are their places in the frame (the bytes
 * between them land in a scratch buffer). A buffer per read span and a copy
 * into each frame cost the gateway more in garbage collection than the
 * restore's reads did.
 */
import { blobDataFrameBytes, writeBlobDataFrame, type MessageBuffers } from '@bulwark/proto';
import type { BlobLocation } from '../catalog/catalog.js';
import type { BlobStore } from '../store/pack-store.js';

const MAX_SPAN_BYTES = 4 * 1024 * 1024;
const MAX_GAP_BYTES = 64 * 1024;
/** Pieces of one read stay under the kernel's IOV_MAX (1024) with room for the gaps. */
const MAX_SPAN_BLOBS = 500;
/** Upper bounds of a blob frame's framing: its tag, length and request id; each blob's tags, lengths and 32-byte id. */
const FRAME_HEAD_BYTES = 12;
const BLOB_FRAMING_BYTES = 48;

/** Where the unwanted bytes between blobs of a span go; never read, so sharing it is harmless. */
const gapScratch = Buffer.allocUnsafeSlow(MAX_GAP_BYTES);

/**
 * Frame{blob_data} frames carrying the located blobs, each at most
 * `frameBytes` unless one blob alone is larger; `located` must be sorted by
 * pack, then offset. Frames come from `buffers`. The next frame is read
 * while the one yielded is sent: from a cold store, the disk sat idle while
 * the socket was busy and the other way round.
 */
export async function* readBlobFrames(store: BlobStore, requestId: number, located: BlobLocation[], frameBytes: number, buffers: MessageBuffers): AsyncGenerator<Buffer> {
  const frameFrom = (i: number): { end: number; filled: Promise<Buffer> } => {
    let j = i;
    let bytes = FRAME_HEAD_BYTES;
    while (j < located.length && (j === i || bytes + located[j].length + BLOB_FRAMING_BYTES <= frameBytes)) bytes += located[j++].length + BLOB_FRAMING_BYTES;
    const blobs = located.slice(i, j);
    const ids = blobs.map((b) => b.id);
    const lengths = blobs.map((b) => b.length);
    const frame = buffers.take(blobDataFrameBytes(requestId, ids, lengths));
    const at = writeBlobDataFrame(frame, requestId, ids, lengths);
    const filled = fillEnvelopes(store, blobs, (k) => frame.subarray(at[k], at[k] + lengths[k])).then(() => frame, (err: unknown) => { buffers.give(frame); throw err; });
    filled.catch(() => undefined);
    return { end: j, filled };
  };
  let next = located.length > 0 ? frameFrom(0) : undefined;
  try {
    while (next) {
      const frame = await next.filled;
      next = next.end < located.length ? frameFrom(next.end) : undefined;
      yield frame;
    }
  } finally {
    // Stopped early (the connection failed): the frame being read goes back once its reads are done.
    if (next) next.filled.then((frame) => buffers.give(frame), () => undefined);
  }
}

/**
 * Spans of one frame read at once. A restore's trees are small blobs spread
 * over the packs, each a read that waits on the device (they are read around
 * the page cache): one at a time, 2,000 trees of a 20,000-file point took
 * ~0.4 s while both ends sat idle.
 */
const SPANS_IN_FLIGHT = 8;

async function fillEnvelopes(store: BlobStore, blobs: BlobLocation[], place: (k: number) => Buffer): Promise<void> {
  const spans: { first: BlobLocation; pieces: Buffer[] }[] = [];
  for (let i = 0; i < blobs.length;) {
    const first = blobs[i];
    const pieces = [place(i)];
    let end = first.offset + first.length;
    let j = i + 1;
    while (j < blobs.length && j - i < MAX_SPAN_BLOBS) {
      const next = blobs[j];
      if (next.pack_seq !== first.pack_seq || next.offset < end || next.offset - end > MAX_GAP_BYTES || next.offset + next.length - first.offset > MAX_SPAN_BYTES) break;
      if (next.offset > end) pieces.push(gapScratch.subarray(0, next.offset - end));
      pieces.push(place(j));
      end = next.offset + next.length;
      j++;
    }
    spans.push({ first, pieces });
    i = j;
  }
  let next = 0;
  let failed = false;
  const readSpans = async () => {
    while (next < spans.length && !failed) {
      const { first, pieces } = spans[next++];
      try {
        await store.readInto(first.hash, first.offset, pieces);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  // Settled, not raced: the caller hands the frame back to its pool on failure, so no read may still be filling it.
  const results = await Promise.allSettled(Array.from({ length: Math.min(SPANS_IN_FLIGHT, spans.length) }, readSpans));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}
