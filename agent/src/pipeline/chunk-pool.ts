/**
 * @module A pool of chunk workers, one per core. `chunkFiles` streams the
 * files' blobs to a consumer as they are made and resolves with each file's
 * blob ids in order; the consumer's promise is what releases the worker's
 * back-pressure.
 */
import { Worker } from 'node:worker_threads';
import { freeNow } from '@bulwark/proto';
import type { AgentKeys } from '../crypto/keys.js';
import type { BlobBatch, FromWorker, ToWorker } from './messages.js';
import { WORKER_THREADS } from './threads.js';

/**
 * `release`, where present: the holder is done with `envelope` (the gateway
 * has it durably, already had it, or it is a duplicate). Its memory may then
 * be freed, so nothing may read the envelope afterwards.
 */
export interface SealedBlob { id: Buffer; envelope: Buffer; release?: () => void }
export type BlobConsumer = (blobs: SealedBlob[], plainBytes: number) => Promise<void>;
export interface ChunkResult { ids: Buffer[]; sizes: number[]; size: number; error?: FileReadError }

const OUTSTANDING_LIMIT = 8 * 1024 * 1024;

interface Job { jobId: number; message: ToWorker; consumer: BlobConsumer; resolve(r: ChunkResult[]): void; reject(e: Error): void; consumed: Promise<void> }
interface Slot { worker: Worker; outstanding: Int32Array; jobs: Map<number, Job>; load: number }

export class FileReadError extends Error {
  constructor(message: string, readonly code?: string) { super(message); }
}

/**
 * The batch's blobs. Once each has been released, the batch's memory is
 * freed at once (freeNow). Left to the collector, a released batch lived on
 * until the next full collection, ~0.5 s apart in a backup: the workers'
 * heaps, where batches are allocated, held up to ~90 MiB of them.
 */
export function splitBatch(batch: BlobBatch): SealedBlob[] {
  const blobs: SealedBlob[] = [];
  const ids = Buffer.from(batch.ids.buffer, batch.ids.byteOffset, batch.ids.byteLength);
  const bytes = Buffer.from(batch.bytes);
  let held = batch.offsets.length - 1;
  for (let i = 0; i + 1 < batch.offsets.length; i++) {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--held === 0) freeNow(batch.bytes);
    };
    blobs.push({ id: ids.subarray(i * 32, i * 32 + 32), envelope: bytes.subarray(batch.offsets[i], batch.offsets[i + 1]), release });
  }
  return blobs;
}

export class ChunkPool {
  private readonly slots: Slot[] = [];
  private nextJob = 1;

  /** Workers start on the first job: a run where nothing changed never pays for them. */
  constructor(private readonly keys: AgentKeys, private readonly threads = WORKER_THREADS) {}

  private startWorkers(): void {
    const keys = this.keys;
    for (let i = 0; i < this.threads; i++) {
      const worker = new Worker(new URL('./chunk-worker.js', import.meta.url));
      const shared = new SharedArrayBuffer(4);
      const slot: Slot = { worker, outstanding: new Int32Array(shared), jobs: new Map(), load: 0 };
      worker.postMessage({ type: 'init', keys: { blobIdKey: keys.blobId, dataKey: keys.data, chunkSeed: keys.chunkSeed }, outstanding: shared, outstandingLimit: OUTSTANDING_LIMIT } satisfies ToWorker);
      worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
      worker.on('error', (err) => { for (const job of slot.jobs.values()) job.reject(err); slot.jobs.clear(); });
      // Referenced only while it has jobs: an idle pool must not keep the process alive, a busy one must.
      worker.unref();
      this.slots.push(slot);
    }
  }

  /** Chunk files in one worker job; a file that cannot be read comes back with `error` set. */
  chunkFiles(paths: (string | Buffer)[], consumer: BlobConsumer): Promise<ChunkResult[]> {
    return this.submit({ type: 'files', jobId: 0, paths }, consumer);
  }

  private submit(message: ToWorker, consumer: BlobConsumer): Promise<ChunkResult[]> {
    if (this.slots.length === 0) this.startWorkers();
    const slot = this.slots.reduce((a, b) => (b.load < a.load ? b : a));
    const jobId = this.nextJob++;
    (message as { jobId: number }).jobId = jobId;
    return new Promise((resolve, reject) => {
      slot.jobs.set(jobId, { jobId, message, consumer, resolve, reject, consumed: Promise.resolve() });
      if (slot.load++ === 0) slot.worker.ref();
      slot.worker.postMessage(message);
    });
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    const job = slot.jobs.get(message.jobId);
    if (!job) return;
    if (message.type === 'blobs') {
      const bytes = message.batch.bytes.byteLength;
      const blobs = splitBatch(message.batch);
      const handOver = job.consumer(blobs, message.batch.plainBytes);
      job.consumed = Promise.all([job.consumed, handOver]).then(() => undefined);
      // Looked at when the job is done; until then a failed hand-over must not count as unhandled.
      job.consumed.catch(() => undefined);
      handOver.catch(() => undefined).finally(() => {
        Atomics.sub(slot.outstanding, 0, bytes);
        Atomics.notify(slot.outstanding, 0);
      });
      return;
    }
    slot.jobs.delete(message.jobId);
    if (--slot.load === 0) slot.worker.unref();
    if (message.type === 'failed') {
      job.consumed.finally(() => job.reject(new FileReadError(message.message, message.code)));
      return;
    }
    const results = message.files.map((file): ChunkResult => {
      const ids: Buffer[] = [];
      const all = Buffer.from(file.ids.buffer, file.ids.byteOffset, file.ids.byteLength);
      for (let i = 0; i < all.length; i += 32) ids.push(all.subarray(i, i + 32));
      return { ids, sizes: Array.from(file.sizes), size: file.size, error: file.error ? new FileReadError(file.error.message, file.error.code) : undefined };
    });
    job.consumed.then(() => job.resolve(results), job.reject);
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
