/**
 * @module Volume restore worker: opens blob envelopes (MAC and id check),
 * keeps resident plaintext in the shared buffer, writes each range and run
 * (volume-write-plan.ts) where the point's map puts it, and
 * hashes every block it writes into the shared block-hash array, from which
 * the main thread checks the image digest (gaps, which read as zeros, are
 * the main thread's). Ranges of different blobs never
 * overlap, so workers write the target side by side, each through its own
 * descriptors. A run's write goes on the thread pool while the next blob is
 * opened into the other of two buffers: the worker decrypts while the disk
 * writes.
 */
import { parentPort } from 'node:worker_threads';
import { freeNow } from '@bulwark/proto';
import { OpenedScratch, openBlobTransient } from '../crypto/envelope.js';
import { blockHash } from '../sources/volume/scan-core.js';
import { ImageWriter } from './image-writer.js';

export interface VolumeWriterInit {
  type: 'init'; dataKey: Uint8Array; blobIdKey: Uint8Array; hashSecret: Uint8Array; path: string;
  /** BigUint64Array of the image's blocks, filled with the hash of each block written. */
  hashes: SharedArrayBuffer; blockSize: number;
  /** The resident blobs' plaintext (volume-write-plan.ts), filled before any run that lays it over another blob. */
  resident: SharedArrayBuffer;
}
export type ToVolumeWriter =
  | VolumeWriterInit
  /** One frame's blobs (views into one transferred buffer, or copies). */
  | { type: 'blobs'; blobs: VolumeWriterBlob[] }
  /** Write zeros over [offset, offset+length) (targets that were not empty). */
  | { type: 'zero'; offset: number; length: number }
  | { type: 'sync' };
/**
 * targets: [imageOffset, blobOffset, length, …] written as they are; runs: [imageOffset, blobOffset, length,
 * overlay count, then per overlay imageOffset, residentOffset, length, …]; resident: [offset, bytes] to keep.
 */
export interface VolumeWriterBlob { id: Uint8Array; envelope: Uint8Array; targets: Float64Array; runs?: Float64Array; resident?: [number, number] }
export type FromVolumeWriter =
  | { type: 'written'; bytes: number; envelopeBytes: number }
  | { type: 'synced' }
  | { type: 'failed'; message: string };

const port = parentPort!;
let init: VolumeWriterInit;
let keys: { data: Buffer; blobId: Buffer; hashSecret: Buffer };
let hashes: BigUint64Array;
let writer: ImageWriter;
let resident: Buffer;
const ZEROS = Buffer.alloc(1024 * 1024);
/** Two blobs open at once: a run of one is written on the thread pool while the next is opened. */
const slots = [new OpenedScratch(), new OpenedScratch()];
/** Per slot, when the writes of the blob last opened into it have settled. */
const slotWrites: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
let nextSlot = 0;

function hashBlocks(data: Buffer, imageOffset: number): void {
  const bs = init.blockSize;
  for (let at = 0, block = imageOffset / bs; at < data.length; at += bs, block++) hashes[block] = blockHash(data.subarray(at, Math.min(at + bs, data.length)), keys.hashSecret);
}

/** Writes a range that starts on a block boundary, hashing each of its blocks. */
function writeRange(data: Buffer, imageOffset: number): void {
  writer.write(data, imageOffset);
  hashBlocks(data, imageOffset);
}

/** Opens one envelope, keeps what is resident and writes its ranges and runs; `written` settles when the runs are on disk. */
async function writeBlob(blob: VolumeWriterBlob): Promise<{ bytes: number; written: Promise<unknown> }> {
  const slot = nextSlot;
  nextSlot = (slot + 1) % slots.length;
  await slotWrites[slot];
  const id = Buffer.from(blob.id.buffer, blob.id.byteOffset, blob.id.byteLength);
  const plain = openBlobTransient(keys.data, keys.blobId, id, Buffer.from(blob.envelope.buffer, blob.envelope.byteOffset, blob.envelope.byteLength), slots[slot]);
  const range = (imageOffset: number, blobOffset: number, length: number) => {
    if (blobOffset + length > plain.length) throw new Error(`blob ${id.toString('hex')} holds ${plain.length} bytes; the map wants ${length} from ${blobOffset}`);
    if (imageOffset % init.blockSize !== 0) throw new Error(`the map puts blob ${id.toString('hex')} at ${imageOffset}, not on a block boundary`);
    return plain.subarray(blobOffset, blobOffset + length);
  };
  if (blob.resident) resident.set(range(0, 0, blob.resident[1]), blob.resident[0]);
  let bytes = 0;
  const t = blob.targets;
  for (let i = 0; i < t.length; i += 3) {
    writeRange(range(t[i], t[i + 1], t[i + 2]), t[i]);
    bytes += t[i + 2];
  }
  const r = blob.runs ?? [];
  const runWrites: Promise<void>[] = [];
  for (let i = 0; i < r.length;) {
    const [imageOffset, blobOffset, length, overlays] = [r[i], r[i + 1], r[i + 2], r[i + 3]];
    const data = range(imageOffset, blobOffset, length);
    i += 4;
    // The plaintext is this thread's scratch and the blob has this one shift in the image: nothing else reads what is laid over.
    for (const stop = i + overlays * 3; i < stop; i += 3) {
      const [at, from, n] = [r[i] - imageOffset, r[i + 1], r[i + 2]];
      if (at < 0 || at + n > length || from + n > resident.length) throw new Error(`a resident range at ${r[i]} does not fit the run of blob ${id.toString('hex')} at ${imageOffset}`);
      data.set(resident.subarray(from, from + n), at);
    }
    hashBlocks(data, imageOffset);
    runWrites.push(writer.writeAsync(data, imageOffset));
    bytes += length;
  }
  const written = Promise.all(runWrites);
  slotWrites[slot] = written.then(() => undefined, () => undefined);
  return { bytes, written };
}

const fail = (err: unknown) => port.postMessage({ type: 'failed', message: (err as Error).message } satisfies FromVolumeWriter);
/** Messages are handled one after another; a blob's writes may still be in flight when the next one starts. */
let queue = Promise.resolve();

port.on('message', (message: ToVolumeWriter) => { queue = queue.then(() => handle(message)).catch(fail); });

async function handle(message: ToVolumeWriter): Promise<void> {
  if (message.type === 'init') {
    init = message;
    keys = { data: Buffer.from(message.dataKey), blobId: Buffer.from(message.blobIdKey), hashSecret: Buffer.from(message.hashSecret) };
    hashes = new BigUint64Array(message.hashes);
    writer = new ImageWriter(message.path);
    resident = Buffer.from(message.resident);
    return;
  }
  if (message.type === 'sync') {
    await Promise.all(slotWrites);
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
  const writes: Promise<unknown>[] = [];
  for (const blob of message.blobs) {
    const { bytes: n, written } = await writeBlob(blob);
    bytes += n;
    writes.push(written);
    envelopeBytes += blob.envelope.length;
  }
  // Every envelope is open (what is written comes from the scratch buffers): the frame they came in goes now, not at
  // this thread's next collection, which let ~100 MiB of them pile up.
  for (const memory of new Set(message.blobs.map((b) => b.envelope.buffer))) freeNow(memory);
  // Answered once its runs are on disk, while the next message is opened.
  Promise.all(writes).then(() => port.postMessage({ type: 'written', bytes, envelopeBytes } satisfies FromVolumeWriter), fail);
}
