/**
 * @module The volume scan itself, shared by the volume workers and (for
 * small change sets, where starting workers would cost more than the work)
 * the main thread: read block runs, hash every block (XXH3-64 under a secret
 * derived from the agent's keys; 64 KiB groups first where a previous group
 * hash can vouch for all 16 blocks), and pack the changed non-zero blocks,
 * in image order, into blobs of up to 1 MiB, which it ids (keyed BLAKE3) and
 * seals. Zero blocks are recognised by hash, confirmed byte by byte, and
 * never stored.
 */
import fs from 'node:fs';
import { xxh3 } from '../../native/xxhash.js';
import { blobId, sealBlob } from '../../crypto/envelope.js';
import { GROUP_BLOCKS } from './geometry.js';

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
  /** Previous and new 64 KiB group hashes (0: unknown), or null: hash blocks only. */
  prevGroups: SharedArrayBuffer | null;
  outGroups: SharedArrayBuffer | null;
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

export interface ScanKeys { blobIdKey: Buffer; dataKey: Buffer; hashSecret: Buffer }
export interface ScanOutput { emit(blob: { id: Uint8Array; envelope: ArrayBuffer; blocks: Uint32Array; plainBytes: number }): void; afterEmit(): void }
export interface ScanTotals { bytesRead: number; changedBlocks: number; zeroedBlocks: Uint32Array; zeroBlocks: number }

export const PACK_BLOCKS = 256;
const SEGMENT_BYTES = 1024 * 1024;

export function blockHash(block: Uint8Array, secret: Uint8Array): bigint {
  return xxh3.xxh64WithSecret(block, secret);
}

export function runScan(job: ScanJob, keys: ScanKeys, output: ScanOutput): ScanTotals {
  const { blockSize, sizeBytes } = job;
  const blocks = Math.ceil(sizeBytes / blockSize);
  const prev = job.prev ? new BigUint64Array(job.prev) : null;
  const out = new BigUint64Array(job.out);
  const prevGroups = job.prevGroups ? new BigUint64Array(job.prevGroups) : null;
  const outGroups = job.outGroups ? new BigUint64Array(job.outGroups) : null;
  const zero = Buffer.alloc(blockSize);
  const zeroHash = blockHash(zero, keys.hashSecret);
  const lastLength = sizeBytes - (blocks - 1) * blockSize;
  const lastZeroHash = blockHash(zero.subarray(0, lastLength), keys.hashSecret);
  const segmentBlocks = Math.max(1, Math.floor(SEGMENT_BYTES / blockSize));
  const segment = Buffer.allocUnsafeSlow(segmentBlocks * blockSize);
  // The pack being built: spans of the current segment until the segment is
  // reused (then copied into `pack`); a pack that is one span is sealed in place.
  const pack = Buffer.allocUnsafeSlow(PACK_BLOCKS * blockSize);
  let spans: number[] = [];
  let copied = false;
  let packBlocks: number[] = [];
  let packBytes = 0;
  let bytesRead = 0;
  let changedBlocks = 0;
  let zeroBlocks = 0;
  const zeroed: number[] = [];

  const copySpans = () => {
    let at = 0;
    for (let i = 0; i < spans.length; i += 2) { segment.copy(pack, at, spans[i], spans[i] + spans[i + 1]); at += spans[i + 1]; }
    spans = [];
    copied = true;
  };
  const addBlock = (from: number, length: number) => {
    if (copied) segment.copy(pack, packBytes, from, from + length);
    else if (spans.length > 0 && spans[spans.length - 2] + spans[spans.length - 1] === from) spans[spans.length - 1] += length;
    else spans.push(from, length);
    packBytes += length;
  };
  const flush = () => {
    if (packBlocks.length === 0) return;
    const plain = !copied && spans.length === 2 ? segment.subarray(spans[0], spans[0] + spans[1]) : (copied || copySpans(), pack.subarray(0, packBytes));
    const id = blobId(keys.blobIdKey, plain);
    // Memory of its own, exactly the envelope's size: transferred as it is.
    const envelope = sealBlob(keys.dataKey, id, plain).buffer as ArrayBuffer;
    output.emit({ id: new Uint8Array(id), envelope, blocks: Uint32Array.from(packBlocks), plainBytes: packBytes });
    spans = [];
    copied = false;
    packBlocks = [];
    packBytes = 0;
    output.afterEmit();
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
        const doBlock = (k: number) => {
          const block = first + k;
          const isLast = block === blocks - 1;
          const data = segment.subarray(k * blockSize, isLast ? k * blockSize + lastLength : (k + 1) * blockSize);
          const h = blockHash(data, keys.hashSecret);
          out[block] = h;
          if (prev && prev[block] === h) return;
          changedBlocks++;
          if (h === (isLast ? lastZeroHash : zeroHash) && data.equals(isLast ? zero.subarray(0, lastLength) : zero)) {
            zeroBlocks++;
            if (prev) zeroed.push(block);
            return;
          }
          if (job.aligned && packBlocks.length > 0 && Math.floor(block / PACK_BLOCKS) !== Math.floor(packBlocks[0] / PACK_BLOCKS)) flush();
          addBlock(k * blockSize, data.length);
          packBlocks.push(block);
          if (packBlocks.length === PACK_BLOCKS) flush();
        };
        for (let k = 0; k < count;) {
          const block = first + k;
          if (!outGroups) { doBlock(k++); continue; }
          const g = Math.floor(block / GROUP_BLOCKS);
          const groupEnd = Math.min((g + 1) * GROUP_BLOCKS, blocks);
          if (block !== g * GROUP_BLOCKS || groupEnd > first + count) {
            // Part of a group (bitmap runs): its group hash is no longer known.
            outGroups[g] = 0n;
            doBlock(k++);
            continue;
          }
          // A whole group: one hash says whether any of its blocks changed.
          const end = (groupEnd - first) * blockSize - (groupEnd === blocks ? blockSize - lastLength : 0);
          const gh = blockHash(segment.subarray(k * blockSize, end), keys.hashSecret);
          outGroups[g] = gh;
          const n = groupEnd - block;
          if (prevGroups && gh !== 0n && prevGroups[g] === gh) { k += n; continue; }
          for (let i = 0; i < n; i++) doBlock(k + i);
          k += n;
        }
        // The segment buffer is about to be refilled: keep what the open pack needs.
        if (packBlocks.length > 0 && !copied) copySpans();
      }
    }
    flush();
  } finally {
    fs.closeSync(fd);
  }
  return { bytesRead, changedBlocks, zeroedBlocks: Uint32Array.from(zeroed), zeroBlocks };
}

