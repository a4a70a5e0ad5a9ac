/**
 * @module Volume worker threads, startable ahead of need. A worker costs
 * ~0.1 s of CPU to boot (its isolate, the addons); started by the first
 * scan, it would boot only after the main thread had loaded the agent's
 * code, its state and the previous point's map. A backup that will read the
 * whole volume starts them first (cli/main.ts), so that boot overlaps the
 * rest. Small on purpose: it is evaluated before anything else.
 */
import { Worker } from 'node:worker_threads';
import { WORKER_THREADS } from '../../pipeline/threads.js';

const started: Worker[] = [];

export function prestartVolumeWorkers(count = WORKER_THREADS): void {
  while (started.length < count) started.push(spawnVolumeWorker());
}

/** A started worker if one is waiting, else a new one. Unreferenced: an idle worker must not keep the process alive. */
export function takeVolumeWorker(): Worker {
  return started.shift() ?? spawnVolumeWorker();
}

function spawnVolumeWorker(): Worker {
  const worker = new Worker(new URL('./volume-worker.js', import.meta.url));
  worker.unref();
  return worker;
}
