/**
 * @module The volume scanner: a pool of volume workers (one per core) that
 * read block runs, hash every block, and seal the changed ones into blobs.
 * Work is cut into jobs of at most 64 MiB of blocks, handed to whichever
 * worker is free, so a core busy with something else slows nothing down.
 * Each worker holds two jobs, the next one queued behind the one it reads:
 * a worker that had to ask the main thread for more sat idle 20–40 ms
 * between jobs whenever that thread was busy (connecting, collecting garbage).
 */
import type { Worker } from 'node:worker_threads';
import { Blake3Hasher } from '../../native/blake3.js';
import type { AgentKeys } from '../../crypto/keys.js';
import { runScan, type FromVolumeWorker, type ScanJob, type ScanTotals, type ToVolumeWorker } from './scan-core.js';
import { takeVolumeWorker } from './worker-pool.js';
import { WORKER_THREADS } from '../../pipeline/threads.js';

const JOB_BLOCKS = 16384;
/** Change sets this small are scanned on the main thread: starting workers would cost more. */
const INLINE_BLOCKS = 16384;
/**
 * An inline scan reads 4 MiB at a time and lets the event loop run in
 * between, so the blobs it has made go out (and the gateway stores them, on
 * the other core) while it reads on. Read in one go, a 10,000-block bitmap
 * change set held every byte back for ~0.1 s. A multiple of the 1 MiB packs
 * and of the 64 KiB groups, so pieces cut neither.
 */
const INLINE_PIECE_BLOCKS = 1024;
const OUTSTANDING_LIMIT = 48 * 1024 * 1024;
export const HASH_ALGORITHM = 'xxh3-64-secret/v1+groups16';

/** The 192-byte XXH3 secret for block hashes, derived from the blob-id key. */
export function blockHashSecret(keys: AgentKeys): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 6; i++) parts.push(Blake3Hasher.deriveKey(`bulwark 2026 volume block-hash secret part ${i}`, keys.blobId));
  return Buffer.concat(parts);
}

export interface ScanRequest {
  path: string;
  sizeBytes: number;
  blockSize: number;
  runs: number[];
  prev: BigUint64Array | null;
  out: BigUint64Array;
  /** 64 KiB group hashes: previous (null: none) and new (null: do not compute). */
  prevGroups?: BigUint64Array | null;
  outGroups?: BigUint64Array | null;
  aligned: boolean;
}

export interface ScanResult { bytesRead: number; changedBlocks: number; zeroBlocks: number; zeroedBlocks: number[] }

export type BlobSink = (id: Buffer, envelope: Buffer, blocks: Uint32Array, plainBytes: number) => Promise<void>;

export class VolumeReadError extends Error {
  constructor(message: string, readonly code?: string) { super(message); }
}

interface Slot { worker: Worker; jobs: number }

const JOBS_PER_WORKER = 2;

/**
 * Cut runs into jobs of at most `jobBlocks` blocks. Pieces never cross a
 * multiple of `jobBlocks`, so a 1 MiB-aligned pack never spans two jobs.
 */
export function cutJobs(runs: number[], jobBlocks = JOB_BLOCKS): number[][] {
  const jobs: number[][] = [];
  let current: number[] = [];
  let inJob = 0;
  for (let r = 0; r < runs.length; r += 2) {
    let start = runs[r];
    const end = start + runs[r + 1];
    while (start < end) {
      const stop = Math.min(end, (Math.floor(start / jobBlocks) + 1) * jobBlocks);
      if (inJob > 0 && inJob + (stop - start) > jobBlocks) { jobs.push(current); current = []; inJob = 0; }
      current.push(start, stop - start);
      inJob += stop - start;
      start = stop;
    }
  }
  if (current.length > 0) jobs.push(current);
  return jobs;
}

export class VolumeScanner {
  private readonly slots: Slot[] = [];
  private readonly outstanding = new Int32Array(new SharedArrayBuffer(4));
  private nextJob = 1;
  private readonly hashSecret: Buffer;

  constructor(private readonly keys: AgentKeys, private readonly threads = WORKER_THREADS) {
    this.hashSecret = blockHashSecret(keys);
  }

  /** Workers are taken (started early by the CLI, or now) on the first scan that needs them. */
  private startWorkers(): void {
    if (this.slots.length > 0) return;
    const { keys, hashSecret, threads } = this;
    for (let i = 0; i < threads; i++) {
      const worker = takeVolumeWorker();
      worker.postMessage({ type: 'init', keys: { blobIdKey: keys.blobId, dataKey: keys.data, hashSecret }, outstanding: this.outstanding.buffer as SharedArrayBuffer, outstandingLimit: OUTSTANDING_LIMIT } satisfies ToVolumeWorker);
      // Referenced only while it has jobs (takeVolumeWorker hands it over unreferenced).
      this.slots.push({ worker, jobs: 0 });
    }
  }

  /** Runs the scan; `sink` gets each sealed blob (its promise releases back-pressure). Jobs go to the workers before this returns. */
  scan(request: ScanRequest, sink: BlobSink): Promise<ScanResult> {
    const prev = request.prev ? shared(request.prev) : null;
    const out = request.out.buffer instanceof SharedArrayBuffer ? request.out.buffer : undefined;
    if (!out) throw new Error('the output hash array must live in a SharedArrayBuffer');
    const prevGroups = request.prevGroups ? shared(request.prevGroups) : null;
    const outGroups = request.outGroups ? request.outGroups.buffer as SharedArrayBuffer : null;
    let total = 0;
    for (let r = 1; r < request.runs.length; r += 2) total += request.runs[r];
    if (total <= INLINE_BLOCKS) return this.scanInline(request, { prev, out, prevGroups, outGroups }, sink);
    this.startWorkers();
    const jobs = cutJobs(request.runs);
    const result: ScanResult = { bytesRead: 0, changedBlocks: 0, zeroBlocks: 0, zeroedBlocks: [] };
    return new Promise<ScanResult>((resolve, reject) => {
      let next = 0;
      let running = 0;
      let failed = false;
      let pending = Promise.resolve();
      const fail = (err: Error) => { if (!failed) { failed = true; reject(err); } };
      const start = (slot: Slot) => {
        if (failed) return;
        if (next >= jobs.length) {
          if (running === 0) pending.then(() => resolve(result), fail);
          return;
        }
        const jobId = this.nextJob++;
        const job: ScanJob = { type: 'scan', jobId, path: request.path, sizeBytes: request.sizeBytes, blockSize: request.blockSize, runs: jobs[next++], prev, out, prevGroups, outGroups, aligned: request.aligned };
        if (slot.jobs++ === 0) slot.worker.ref();
        running++;
        const onMessage = (m: FromVolumeWorker) => {
          if (m.jobId !== jobId) return;
          if (m.type === 'blob') {
            const envelope = Buffer.from(m.envelope);
            // Read now: the sink may release the envelope (free its memory) before it resolves.
            const bytes = envelope.length;
            const handOver = sink(Buffer.from(m.id), envelope, m.blocks, m.plainBytes);
            pending = Promise.all([pending, handOver]).then(() => undefined);
            pending.catch(() => undefined);
            handOver.catch(fail).finally(() => { Atomics.sub(this.outstanding, 0, bytes); Atomics.notify(this.outstanding, 0); });
            return;
          }
          slot.worker.off('message', onMessage);
          slot.worker.off('error', onError);
          if (--slot.jobs === 0) slot.worker.unref();
          running--;
          if (m.type === 'failed') { fail(new VolumeReadError(`reading ${request.path}: ${m.message}`, m.code)); return; }
          addTotals(result, m);
          start(slot);
        };
        const onError = (err: Error) => fail(err);
        slot.worker.on('message', onMessage);
        slot.worker.on('error', onError);
        slot.worker.postMessage(job satisfies ToVolumeWorker);
      };
      for (let i = 0; i < JOBS_PER_WORKER; i++) for (const slot of this.slots) start(slot);
    });
  }

  private async scanInline(request: ScanRequest, arrays: Pick<ScanJob, 'prev' | 'out' | 'prevGroups' | 'outGroups'>, sink: BlobSink): Promise<ScanResult> {
    const keys = { blobIdKey: this.keys.blobId, dataKey: this.keys.data, hashSecret: this.hashSecret };
    const result: ScanResult = { bytesRead: 0, changedBlocks: 0, zeroBlocks: 0, zeroedBlocks: [] };
    for (const runs of cutJobs(request.runs, INLINE_PIECE_BLOCKS)) {
      // Also before the first piece: whatever the caller starts after asking for the scan (its connection) gets going first.
      await new Promise((resolve) => setImmediate(resolve));
      const blobs: { id: Uint8Array; envelope: ArrayBuffer; blocks: Uint32Array; plainBytes: number }[] = [];
      let piece;
      try {
        piece = runScan({ type: 'scan', jobId: 0, path: request.path, sizeBytes: request.sizeBytes, blockSize: request.blockSize, runs, ...arrays, aligned: request.aligned }, keys, { emit: (b) => blobs.push(b), afterEmit() {} });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new VolumeReadError(`reading ${request.path}: ${e.message}`, e.code);
      }
      for (const b of blobs) await sink(Buffer.from(b.id), Buffer.from(b.envelope), b.blocks, b.plainBytes);
      addTotals(result, piece);
    }
    return result;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

function addTotals(result: ScanResult, job: ScanTotals): void {
  result.bytesRead += job.bytesRead;
  result.changedBlocks += job.changedBlocks;
  result.zeroBlocks += job.zeroBlocks;
  for (const b of job.zeroedBlocks) result.zeroedBlocks.push(b);
}

function shared(array: BigUint64Array): SharedArrayBuffer {
  if (array.buffer instanceof SharedArrayBuffer && array.byteOffset === 0 && array.byteLength === array.buffer.byteLength) return array.buffer;
  const copy = new SharedArrayBuffer(array.byteLength);
  new BigUint64Array(copy).set(array);
  return copy;
}

export function sharedHashes(blocks: number, from?: BigUint64Array): BigUint64Array {
  const out = new BigUint64Array(new SharedArrayBuffer(blocks * 8));
  if (from) out.set(from.subarray(0, blocks));
  return out;
}
