/** @module How many worker threads each of the agent's pools runs (chunking, volume scans, restore writers): one per core, at most four. */
import os from 'node:os';

export const WORKER_THREADS = Math.max(1, Math.min(4, os.availableParallelism()));
