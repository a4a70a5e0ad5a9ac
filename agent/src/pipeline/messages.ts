/**
 * @module Messages between the main thread and the chunk workers. Blob
 * batches travel as one transferred ArrayBuffer plus offsets, so a batch of
 * small blobs costs one copy-free transfer instead of many.
 */
export interface WorkerKeys { blobIdKey: Uint8Array; dataKey: Uint8Array; chunkSeed: Uint8Array }

export type ToWorker =
  | { type: 'init'; keys: WorkerKeys; outstanding: SharedArrayBuffer; outstandingLimit: number }
  /** Chunk files, one after another; small files travel in groups so a message carries many. */
  | { type: 'files'; jobId: number; paths: (string | Uint8Array)[] };

export interface BlobBatch {
  /** ids[i*32 .. i*32+32] */
  ids: Uint8Array;
  /** envelope i is bytes[offsets[i] .. offsets[i+1]] */
  bytes: ArrayBuffer;
  offsets: Uint32Array;
  plainBytes: number;
}

/** Per file of a job: its blob ids (32 bytes each) and plaintext sizes, or why it could not be read. */
export interface FileChunks { ids: Uint8Array; sizes: Uint32Array; size: number; error?: { message: string; code?: string } }

export type FromWorker =
  | { type: 'blobs'; jobId: number; batch: BlobBatch }
  | { type: 'done'; jobId: number; files: FileChunks[] }
  | { type: 'failed'; jobId: number; message: string; code?: string };
