/**
 * @module Volume worker thread: reads block ranges of a volume, hashes every
 * 4 KiB block (XXH3-64 under a secret derived from the agent's keys), and
 * for the blocks whose hash differs from the previous point's (or all, on a
 * full read) packs the non-zero ones, in image order, into blobs of up to
 * 1 MiB which it ids (keyed BLAKE3) and seals. Zero blocks are recognised
 * from their hash (then confirmed byte by byte) and never stored. The same
 * worker, with sealing off, re-hashes a restored image to verify it.
 * Blocks while the main thread holds more than `outstandingLimit` bytes of
 * its output, like the chunk workers.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { xxh3 } from '@node-rs/xxhash';
import { blobId, sealBlob } from '../../crypto/envelope.js';

export interface VolumeWorkerKeys { blobIdKey: Uint8Array; dataKey: Uint8Array; hashSecret: Uint8Array }

export interface ScanJob {
  type: 'scan';
  jobId: number;
  path: string;
  sizeBytes: number;
  blockSize: number;
  /** Block runs to read: [start, count, start, count, …], sorted. */
  runs: number[];
  /** Previous point's block hashes (same block count), or null: everything counts as changed. */
  prev: SharedArrayBuffer | null;
  /** Receives the new hash of every block read. */
  out: SharedArrayBuffer;
  /** Seal changed blocks into blobs (false: hash only, for verification). */
  seal: boolean;
  /** Cut blobs at 1 MiB-aligned image offsets (full reads: the same data gives the same blobs). */
  aligned: boolean;
}

export type ToVolumeWorker =
  | { type: 'init'; keys: VolumeWorkerKeys; outstanding: SharedArrayBuffer; outstandingLimit: number }
  | ScanJob;

export type FromVolumeWorker =
  | { type: 'blob'; jobId: number; id: Uint8Array; envelope: ArrayBuffer; blocks: Uint32Array; plainBytes: number }
  | { type: 'done'; jobId: number; bytesRead: number; changedBlocks: number; zeroedBlocks: Uint32Array; zeroBlocks: number }
  | { type: 'failed'; jobId: number; message: string; code?: string };

export const PACK_BLOCKS = 256;
const SEGMENT_BYTES = 4 * 1024 * 1024;

const port = parentPort;
let keys: { blobIdKey: Buffer; dataKey: Buffer; hashSecret: Buffer };
let outstanding: Int32Array;
let outstandingLimit = 0;

export function blockHash(block: Uint8Array, secret: Uint8Array): bigint {
  return xxh3.xxh64WithSecret(block, secret);
}

function waitForRoom(): void {
  for (let seen = Atomics.load(outstanding, 0); seen > outstandingLimit; seen = Atomics.load(outstanding, 0)) {
    Atomics.wait(outstanding, 0, seen, 1000);
  }
}

function runScan(job: ScanJob): void {
  const { blockSize, sizeBytes } = job;
  const blocks = Math.ceil(sizeBytes / blockSize);
  const prev = job.prev ? new BigUint64Array(job.prev) : null;
  const out = new BigUint64Array(job.out);
  const zero = Buffer.alloc(blockSize);
  const zeroHash = blockHash(zero, keys.hashSecret);
  const lastLength = sizeBytes - (blocks - 1) * blockSize;
  const lastZeroHash = blockHash(zero.subarray(0, lastLength), keys.hashSecret);
  const segmentBlocks = Math.max(1, Math.floor(SEGMENT_BYTES / blockSize));
  const segment = Buffer.allocUnsafeSlow(segmentBlocks * blockSize);
  let pack = Buffer.allocUnsafeSlow(PACK_BLOCKS * blockSize);
  let packBlocks: number[] = [];
  let packBytes = 0;
  let bytesRead = 0;
  let changedBlocks = 0;
  let zeroBlocks = 0;
  const zeroed: number[] = [];

  const flush = () => {
    if (packBlocks.length === 0) return;
    const plain = pack.subarray(0, packBytes);
    const id = blobId(keys.blobIdKey, plain);
    const sealed = sealBlob(keys.dataKey, id, plain);
    const envelope = new ArrayBuffer(sealed.length);
    new Uint8Array(envelope).set(sealed);
    Atomics.add(outstanding, 0, sealed.length);
    port!.postMessage({ type: 'blob', jobId: job.jobId, id: new Uint8Array(id), envelope, blocks: Uint32Array.from(packBlocks), plainBytes: packBytes } satisfies FromVolumeWorker, [envelope]);
    pack = Buffer.allocUnsafeSlow(PACK_BLOCKS * blockSize);
    packBlocks = [];
    packBytes = 0;
    waitForRoom();
  };

  const fd = fs.openSync(job.path, fs.constants.O_RDONLY);
  try {
    for (let r = 0; r < job.runs.length; r += 2) {
      const runStart = job.runs[r];
      const runEnd = runStart + job.runs[r + 1];
      for (let first = runStart; first < runEnd; first += segmentBlocks) {
        const count = Math.min(segmentBlocks, runEnd - first);
        const offset = first * blockSize;
        const want = Math.min(count * blockSize, sizeBytes - offset);
        let got = 0;
        while (got < want) {
          const n = fs.readSync(fd, segment, got, want - got, offset + got);
          if (n === 0) throw Object.assign(new Error(`${job.path} ended at ${offset + got} bytes, before its size of ${sizeBytes}: the volume shrank while it was read`), { code: 'ESHRUNK' });
          got += n;
        }
        bytesRead += want;
        for (let k = 0; k < count; k++) {
          const block = first + k;
          const isLast = block === blocks - 1;
          const data = segment.subarray(k * blockSize, isLast ? k * blockSize + lastLength : (k + 1) * blockSize);
          const h = blockHash(data, keys.hashSecret);
          out[block] = h;
          if (prev && prev[block] === h) continue;
          changedBlocks++;
          if (!job.seal) continue;
          if (h === (isLast ? lastZeroHash : zeroHash) && data.equals(isLast ? zero.subarray(0, lastLength) : zero)) {
            zeroBlocks++;
            if (prev) zeroed.push(block);
            continue;
          }
          if (job.aligned && packBlocks.length > 0 && Math.floor(block / PACK_BLOCKS) !== Math.floor(packBlocks[0] / PACK_BLOCKS)) flush();
          data.copy(pack, packBytes);
          packBytes += data.length;
          packBlocks.push(block);
          if (packBlocks.length === PACK_BLOCKS) flush();
        }
      }
    }
    flush();
  } finally {
    fs.closeSync(fd);
  }
  port!.postMessage({ type: 'done', jobId: job.jobId, bytesRead, changedBlocks, zeroedBlocks: Uint32Array.from(zeroed), zeroBlocks } satisfies FromVolumeWorker);
}

port?.on('message', (message: ToVolumeWorker) => {
  if (message.type === 'init') {
    keys = { blobIdKey: Buffer.from(message.keys.blobIdKey), dataKey: Buffer.from(message.keys.dataKey), hashSecret: Buffer.from(message.keys.hashSecret) };
    outstanding = new Int32Array(message.outstanding);
    outstandingLimit = message.outstandingLimit;
    return;
  }
  try {
    runScan(message);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    port.postMessage({ type: 'failed', jobId: message.jobId, message: e.message, code: e.code } satisfies FromVolumeWorker);
  }
});
