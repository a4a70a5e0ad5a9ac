/**
 * @module Volume restore worker: opens blob envelopes (MAC and id check),
 * writes each range of the plaintext where the point's map puts it, and
 * hashes every block it writes into the shared block-hash array, from which
 * the main thread checks the image digest (gaps, which read as zeros, are
 * the main thread's). Ranges of different blobs never
 * overlap, so workers write the target side by side, each through its own
 * descriptors.
 */
import { parentPort } from 'node:worker_threads';
import { openBlobTransient } from '../crypto/envelope.js';
import { blockHash } from '../sources/volume/scan-core.js';
import { ImageWriter } from './image-writer.js';

export interface VolumeWriterInit {
  type: 'init'; dataKey: Uint8Array; blobIdKey: Uint8Array; hashSecret: Uint8Array; path: string;
  /** BigUint64Array of the image's blocks, filled with the hash of each block written. */
  hashes: SharedArrayBuffer; blockSize: number;
}
export type ToVolumeWriter =
  | VolumeWriterInit
  /** One frame's blobs (views into one transferred buffer, or copies); targets: [imageOffset, blobOffset, length, …] */
  | { type: 'blobs'; blobs: { id: Uint8Array; envelope: Uint8Array; targets: Float64Array }[] }
  /** Write zeros over [offset, offset+length) (targets that were not empty). */
  | { type: 'zero'; offset: number; length: number }
  | { type: 'sync' };
export type FromVolumeWriter =
  | { type: 'written'; bytes: number; envelopeBytes: number }
  | { type: 'synced' }
  | { type: 'failed'; message: string };

const port = parentPort!;
let init: VolumeWriterInit;
let keys: { data: Buffer; blobId: Buffer; hashSecret: Buffer };
let hashes: BigUint64Array;
let writer: ImageWriter;
const ZEROS = Buffer.alloc(1024 * 1024);

/** Writes a range that starts on a block boundary, hashing each of its blocks. */
function writeRange(data: Buffer, imageOffset: number): void {
  writer.write(data, imageOffset);
  const bs = init.blockSize;
  for (let at = 0, block = imageOffset / bs; at < data.length; at += bs, block++) hashes[block] = blockHash(data.subarray(at, Math.min(at + bs, data.length)), keys.hashSecret);
}

/** Opens one envelope and writes its ranges; returns the bytes written. */
function writeBlob(idBytes: Uint8Array, envelopeBytes: Uint8Array, t: Float64Array): number {
  const id = Buffer.from(idBytes.buffer, idBytes.byteOffset, idBytes.byteLength);
  const plain = openBlobTransient(keys.data, keys.blobId, id, Buffer.from(envelopeBytes.buffer, envelopeBytes.byteOffset, envelopeBytes.byteLength));
  let bytes = 0;
  for (let i = 0; i < t.length; i += 3) {
    const [imageOffset, blobOffset, length] = [t[i], t[i + 1], t[i + 2]];
    if (blobOffset + length > plain.length) throw new Error(`blob ${id.toString('hex')} holds ${plain.length} bytes; the map wants ${length} from ${blobOffset}`);
    if (imageOffset % init.blockSize !== 0) throw new Error(`the map puts blob ${id.toString('hex')} at ${imageOffset}, not on a block boundary`);
    writeRange(plain.subarray(blobOffset, blobOffset + length), imageOffset);
    bytes += length;
  }
  return bytes;
}

port.on('message', (message: ToVolumeWriter) => {
  try {
    if (message.type === 'init') {
      init = message;
      keys = { data: Buffer.from(message.dataKey), blobId: Buffer.from(message.blobIdKey), hashSecret: Buffer.from(message.hashSecret) };
      hashes = new BigUint64Array(message.hashes);
      writer = new ImageWriter(message.path);
      return;
    }
    if (message.type === 'sync') {
      writer.sync();
      port.postMessage({ type: 'synced' } satisfies FromVolumeWriter);
      return;
    }
    if (message.type === 'zero') {
      for (let at = 0; at < message.length; at += ZEROS.length) writer.write(ZEROS.subarray(0, Math.min(ZEROS.length, message.length - at)), message.offset + at);
      port.postMessage({ type: 'written', bytes: message.length, envelopeBytes: 0 } satisfies FromVolumeWriter);
      return;
    }
    let bytes = 0;
    let envelopeBytes = 0;
    for (const blob of message.blobs) {
      bytes += writeBlob(blob.id, blob.envelope, blob.targets);
      envelopeBytes += blob.envelope.length;
    }
    port.postMessage({ type: 'written', bytes, envelopeBytes } satisfies FromVolumeWriter);
  } catch (err) {
    port.postMessage({ type: 'failed', message: (err as Error).message } satisfies FromVolumeWriter);
  }
});
