/**
 * @module Volume worker thread: runs scan jobs (scan-core.ts) and posts each
 * sealed blob to the main thread, blocking while the main thread holds more
 * than `outstandingLimit` bytes of its output, like the chunk workers.
 */
import { parentPort } from 'node:worker_threads';
import { runScan, type FromVolumeWorker, type ScanKeys, type ToVolumeWorker } from './scan-core.js';

const port = parentPort!;
let keys: ScanKeys;
let outstanding: Int32Array;
let outstandingLimit = 0;

port.on('message', (message: ToVolumeWorker) => {
  if (message.type === 'init') {
    keys = { blobIdKey: Buffer.from(message.keys.blobIdKey), dataKey: Buffer.from(message.keys.dataKey), hashSecret: Buffer.from(message.keys.hashSecret) };
    outstanding = new Int32Array(message.outstanding);
    outstandingLimit = message.outstandingLimit;
    return;
  }
  const jobId = message.jobId;
  try {
    const totals = runScan(message, keys, {
      emit(blob) {
        Atomics.add(outstanding, 0, blob.envelope.byteLength);
        port.postMessage({ type: 'blob', jobId, ...blob } satisfies FromVolumeWorker, [blob.envelope]);
      },
      afterEmit() {
        for (let seen = Atomics.load(outstanding, 0); seen > outstandingLimit; seen = Atomics.load(outstanding, 0)) Atomics.wait(outstanding, 0, seen, 1000);
      },
    });
    port.postMessage({ type: 'done', jobId, ...totals } satisfies FromVolumeWorker);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    port.postMessage({ type: 'failed', jobId, message: e.message, code: e.code } satisfies FromVolumeWorker);
  }
});
