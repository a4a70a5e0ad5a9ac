/**
 * @module Worker thread: read → FastCDC → blob id → zstd → encrypt. Runs one
 * job at a time and blocks (Atomics.wait) while the main thread still holds
 * more than `outstandingLimit` bytes of its output, so memory stays bounded
 * however fast the disk is.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { FastCdc, gearTable, DEFAULT_CHUNKING } from '../chunking/fastcdc.js';
import { blobId, envelopeBound, sealBlobInto } from '../crypto/envelope.js';
import { ScratchBuffer } from '../buffers/scratch-buffer.js';
import type { BlobBatch, FileChunks, FromWorker, ToWorker, WorkerKeys } from './messages.js';

const SEGMENT_BYTES = 8 * 1024 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;

let keys: { blobIdKey: Buffer; dataKey: Buffer };
let chunker: FastCdc;
let outstanding: Int32Array;
let outstandingLimit = 0;

const port = parentPort!;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

/**
 * Concatenation in an ArrayBuffer of its own, to be transferred: a small
 * Buffer lives in Node's 8 KiB pool, and postMessage would copy the whole
 * slab — which the main thread then keeps for as long as it keeps the ids.
 */
function unpooledConcat(parts: Buffer[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

/** Where envelopes are sealed, reused for every batch of this worker. */
const sealing = new ScratchBuffer();

/**
 * Envelopes are sealed into the worker's reused buffer and leave in one
 * exact-size copy per batch: no buffer per blob, no garbage but the batch.
 */
class Batcher {
  private ids: Buffer[] = [];
  private offsets: number[] = [];
  private used = 0;
  private plain = 0;
  constructor(private readonly jobId: number) {}

  /** Seal one chunk; returns its id. */
  add(plain: Buffer): Buffer {
    const id = blobId(keys.blobIdKey, plain);
    const bound = envelopeBound(plain.length);
    if (this.used > 0 && this.used + bound > BATCH_BYTES) this.flush();
    // Here either the batch is empty or the blob fits below BATCH_BYTES: growing the buffer loses nothing.
    const buffer = sealing.take(Math.max(BATCH_BYTES, this.used + bound));
    this.offsets.push(this.used);
    this.used += sealBlobInto(keys.dataKey, id, plain, buffer.subarray(this.used));
    this.ids.push(id);
    this.plain += plain.length;
    return id;
  }

  flush(): void {
    if (this.ids.length === 0) return;
    const copy = Buffer.allocUnsafeSlow(this.used);
    sealing.take(this.used).copy(copy);
    const bytes = copy.buffer as ArrayBuffer;
    const batch: BlobBatch = { ids: unpooledConcat(this.ids), bytes, offsets: Uint32Array.from([...this.offsets, this.used]), plainBytes: this.plain };
    Atomics.add(outstanding, 0, this.used);
    post({ type: 'blobs', jobId: this.jobId, batch }, [bytes, batch.ids.buffer as ArrayBuffer, batch.offsets.buffer as ArrayBuffer]);
    this.ids = [];
    this.offsets = [];
    this.used = 0;
    this.plain = 0;
    // Back-pressure: wait until the main thread has handed enough of our output on.
    for (let seen = Atomics.load(outstanding, 0); seen > outstandingLimit; seen = Atomics.load(outstanding, 0)) {
      Atomics.wait(outstanding, 0, seen, 1000);
    }
  }
}

function chunkFile(batcher: Batcher, path: string | Uint8Array): FileChunks {
  const ids: Buffer[] = [];
  const sizes: number[] = [];
  const fd = fs.openSync(typeof path === 'string' ? path : Buffer.from(path), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let size = 0;
  try {
    // The chunker's window is this worker's one read buffer: chunks are sealed out of it before it is refilled.
    const buffer = chunker.window;
    let fill = 0;
    let eof = false;
    for (;;) {
      while (!eof && fill < buffer.length) {
        const n = fs.readSync(fd, buffer, fill, buffer.length - fill, null);
        if (n === 0) eof = true;
        fill += n;
        size += n;
      }
      let pos = 0;
      while (pos < fill) {
        const length = chunker.cut(pos, fill, eof);
        if (length === 0) break;
        // No copy needed: add() hashes and seals synchronously, before the buffer is refilled.
        ids.push(batcher.add(buffer.subarray(pos, pos + length)));
        sizes.push(length);
        pos += length;
      }
      buffer.copy(buffer, 0, pos, fill);
      fill -= pos;
      if (eof && fill === 0) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { ids: unpooledConcat(ids), sizes: Uint32Array.from(sizes), size };
}

function chunkFiles(jobId: number, paths: (string | Uint8Array)[]): void {
  const batcher = new Batcher(jobId);
  const files = paths.map((path): FileChunks => {
    try {
      return chunkFile(batcher, path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { ids: new Uint8Array(0), sizes: new Uint32Array(0), size: 0, error: { message: e.message, code: e.code } };
    }
  });
  batcher.flush();
  post({ type: 'done', jobId, files }, files.flatMap((f) => [f.ids.buffer as ArrayBuffer, f.sizes.buffer as ArrayBuffer]));
}

function init(k: WorkerKeys, shared: SharedArrayBuffer, limit: number): void {
  keys = { blobIdKey: Buffer.from(k.blobIdKey), dataKey: Buffer.from(k.dataKey) };
  chunker = new FastCdc(gearTable(Buffer.from(k.chunkSeed)), DEFAULT_CHUNKING, SEGMENT_BYTES + DEFAULT_CHUNKING.maxSize);
  outstanding = new Int32Array(shared);
  outstandingLimit = limit;
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'init') return init(message.keys, message.outstanding, message.outstandingLimit);
  try {
    chunkFiles(message.jobId, message.paths);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    post({ type: 'failed', jobId: message.jobId, message: e.message, code: e.code });
  }
});
