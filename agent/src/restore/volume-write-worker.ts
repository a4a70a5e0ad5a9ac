/**
 * @module Volume restore worker: opens blob envelopes (MAC and id check) and
 * writes each range of the plaintext where the point's map puts it. Ranges
 * of different blobs never overlap, so workers write the target side by
 * side, each through its own descriptor.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { openBlobTransient } from '../crypto/envelope.js';

export type ToVolumeWriter =
  | { type: 'init'; dataKey: Uint8Array; blobIdKey: Uint8Array; path: string }
  /** targets: [imageOffset, blobOffset, length, …] */
  | { type: 'blob'; id: Uint8Array; envelope: Uint8Array; targets: Float64Array }
  /** Write zeros over [offset, offset+length) (targets that were not empty). */
  | { type: 'zero'; offset: number; length: number }
  | { type: 'sync' };
export type FromVolumeWriter =
  | { type: 'written'; bytes: number; envelopeBytes: number }
  | { type: 'synced' }
  | { type: 'failed'; message: string };

const port = parentPort!;
let dataKey: Buffer;
let blobIdKey: Buffer;
let fd = -1;
const ZEROS = Buffer.alloc(1024 * 1024);

function writeAll(data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

port.on('message', (message: ToVolumeWriter) => {
  try {
    if (message.type === 'init') {
      dataKey = Buffer.from(message.dataKey);
      blobIdKey = Buffer.from(message.blobIdKey);
      fd = fs.openSync(message.path, fs.constants.O_WRONLY);
      return;
    }
    if (message.type === 'sync') {
      fs.fsyncSync(fd);
      port.postMessage({ type: 'synced' } satisfies FromVolumeWriter);
      return;
    }
    if (message.type === 'zero') {
      for (let at = 0; at < message.length; at += ZEROS.length) writeAll(ZEROS.subarray(0, Math.min(ZEROS.length, message.length - at)), message.offset + at);
      port.postMessage({ type: 'written', bytes: message.length, envelopeBytes: 0 } satisfies FromVolumeWriter);
      return;
    }
    const envelope = Buffer.from(message.envelope.buffer, message.envelope.byteOffset, message.envelope.byteLength);
    const plain = openBlobTransient(dataKey, blobIdKey, Buffer.from(message.id), envelope);
    let bytes = 0;
    const t = message.targets;
    for (let i = 0; i < t.length; i += 3) {
      const [imageOffset, blobOffset, length] = [t[i], t[i + 1], t[i + 2]];
      if (blobOffset + length > plain.length) throw new Error(`blob ${Buffer.from(message.id).toString('hex')} holds ${plain.length} bytes; the map wants ${length} from ${blobOffset}`);
      writeAll(plain.subarray(blobOffset, blobOffset + length), imageOffset);
      bytes += length;
    }
    port.postMessage({ type: 'written', bytes, envelopeBytes: envelope.length } satisfies FromVolumeWriter);
  } catch (err) {
    port.postMessage({ type: 'failed', message: (err as Error).message } satisfies FromVolumeWriter);
  }
});
