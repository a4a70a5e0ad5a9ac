/**
 * @module Worker thread: read → FastCDC → blob id → zstd → encrypt. Runs one
 * job at a time and blocks (Atomics.wait) while the main thread still holds
 * more than `outstandingLimit` bytes of its output, so memory stays bounded
 * however fast the disk is.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { FastCdc, gearTable, DEFAULT_CHUNKING } from '../chunking/fastcdc.js';
import { blobId, sealBlob } from '../crypto/envelope.js';
import type { BlobBatch, FileChunks, FromWorker, ToWorker, WorkerKeys } from './messages.js';

const SEGMENT_BYTES = 8 * 1024 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;

let keys: { blobIdKey: Buffer; dataKey: Buffer };
let chunker: FastCdc;
let outstanding: Int32Array;
let outstandingLimit = 0;

const port = parentPort!;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

class Batcher {
  private ids: Buffer[] = [];
  private envelopes: Buffer[] = [];
  private bytes = 0;
  private plain = 0;
  constructor(private readonly jobId: number) {}

  /** Seal one chunk; returns its id. */
  add(plain: Buffer): Buffer {
    const id = blobId(keys.blobIdKey, plain);
    const envelope = sealBlob(keys.dataKey, id, plain);
    this.ids.push(id);
    this.envelopes.push(envelope);
    this.bytes += envelope.length;
    this.plain += plain.length;
    if (this.bytes >= BATCH_BYTES) this.flush();
    return id;
  }

  flush(): void {
    if (this.ids.length === 0) return;
    const bytes = new ArrayBuffer(this.bytes);
    const view = new Uint8Array(bytes);
    const offsets = new Uint32Array(this.envelopes.length + 1);
    let at = 0;
    this.envelopes.forEach((e, i) => { offsets[i] = at; view.set(e, at); at += e.length; });
    offsets[this.envelopes.length] = at;
    const batch: BlobBatch = { ids: Buffer.concat(this.ids), bytes, offsets, plainBytes: this.plain };
    Atomics.add(outstanding, 0, this.bytes);
    post({ type: 'blobs', jobId: this.jobId, batch }, [bytes]);
    this.ids = [];
    this.envelopes = [];
    this.bytes = 0;
    this.plain = 0;
    // Back-pressure: wait until the main thread has handed enough of our output on.
    for (let seen = Atomics.load(outstanding, 0); seen > outstandingLimit; seen = Atomics.load(outstanding, 0)) {
      Atomics.wait(outstanding, 0, seen, 1000);
    }
  }
}

/** One read buffer per worker, reused: chunks are copied out before it is refilled. */
let segment: Buffer | undefined;

function chunkFile(batcher: Batcher, path: string | Uint8Array): FileChunks {
  const ids: Buffer[] = [];
  const sizes: number[] = [];
  const fd = fs.openSync(typeof path === 'string' ? path : Buffer.from(path), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let size = 0;
  try {
    segment ??= Buffer.allocUnsafeSlow(SEGMENT_BYTES + DEFAULT_CHUNKING.maxSize);
    const buffer = segment;
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
        const length = chunker.cut(buffer, pos, fill, eof);
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
  return { ids: Buffer.concat(ids), sizes: Uint32Array.from(sizes), size };
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
  post({ type: 'done', jobId, files });
}

function init(k: WorkerKeys, shared: SharedArrayBuffer, limit: number): void {
  keys = { blobIdKey: Buffer.from(k.blobIdKey), dataKey: Buffer.from(k.dataKey) };
  chunker = new FastCdc(gearTable(Buffer.from(k.chunkSeed)));
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
