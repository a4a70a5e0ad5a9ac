/**
 * @module Restore worker: opens blob envelopes (MAC and id check), writes the
 * plaintext at its offsets, and finishes each file (mode, owner, mtime) once
 * its last blob is in. Every file belongs to exactly one worker, so no two
 * threads ever write the same file. Large blobs are written around the page
 * cache (image-writer.ts), small files through it. With `sparse`, an
 * all-zero blob is not written at all.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { DirectDescriptor, writeAll } from '@bulwark/proto/direct-io';
import { openBlobTransient } from '../crypto/envelope.js';
import { goesDirect, writeAround } from './image-writer.js';

export interface RestoreFile { index: number; path: Uint8Array; size: number; blobs: number; mode: number; uid: number; gid: number; mtimeSec: number; mtimeNsec: number }
export type ToRestoreWorker =
  /** `sparse`: leave an all-zero blob of HOLE_MIN_BYTES or more unwritten (a hole in the new file). */
  | { type: 'init'; dataKey: Uint8Array; blobIdKey: Uint8Array; chown: boolean; sparse: boolean }
  | { type: 'files'; files: RestoreFile[] }
  | { type: 'blobs'; blobs: RestoreBlob[] };
export interface RestoreBlob { id: Uint8Array; envelope: Uint8Array; targets: { file: number; offset: number }[] }
export type FromRestoreWorker =
  | { type: 'progress'; bytes: number; filesDone: number; holeBytes: number }
  /** A 'blobs' message is done with: its buffer comes back for the next batch, and no longer counts against the window. */
  | { type: 'consumed'; buffer: ArrayBuffer }
  | { type: 'failed'; message: string };

/** fd is -1 until the first blob arrives, and again while parked to respect the open-file limit; `end`: the furthest byte written. */
interface OpenFile { meta: RestoreFile; fd: number; remaining: number; created: boolean; end: number }

const MAX_OPEN_FILES = 256;
/**
 * Zero runs shorter than this are written: a hole saves at most a few
 * blocks. Chunks are at least 256 KiB, so a zero run in a large file is
 * whole zero blobs but for its ends.
 */
const HOLE_MIN_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);

const port = parentPort!;
let dataKey: Buffer;
let blobIdKey: Buffer;
let chown = false;
let sparse = false;
const files = new Map<number, OpenFile>();
/** Files with an open fd, oldest use first (Map keeps insertion order). */
const open = new Map<number, OpenFile>();

function ensureOpen(file: OpenFile): number {
  if (file.fd >= 0) {
    open.delete(file.meta.index);
    open.set(file.meta.index, file);
    return file.fd;
  }
  if (open.size >= MAX_OPEN_FILES) {
    const [index, oldest] = open.entries().next().value as [number, OpenFile];
    fs.closeSync(oldest.fd);
    oldest.fd = -1;
    open.delete(index);
  }
  // First open: O_EXCL | O_NOFOLLOW, never write through something that was already there.
  // A re-open after parking: the file is ours, still no symlinks followed.
  const flags = fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | (file.created ? 0 : fs.constants.O_CREAT | fs.constants.O_EXCL);
  file.fd = fs.openSync(Buffer.from(file.meta.path), flags, 0o600);
  file.created = true;
  open.set(file.meta.index, file);
  return file.fd;
}

function write(file: OpenFile, data: Buffer, offset: number): void {
  const fd = ensureOpen(file);
  file.end = Math.max(file.end, offset + data.length);
  if (!goesDirect(offset, data.length)) return writeAll(fd, data, offset);
  // Reopened from the descriptor, so it is the file we created whatever its path names now; held for this blob only, so
  // the worker's descriptor budget stays one per open file.
  const direct = new DirectDescriptor(fd);
  try {
    writeAround(fd, direct, data, offset);
  } finally {
    direct.close();
  }
}

/** A restored file is new, so what is not written reads as zeros. */
function isAllZero(data: Buffer): boolean {
  // Most blobs are not: three bytes settle that before a full comparison.
  if (data[0] !== 0 || data[data.length >> 1] !== 0 || data[data.length - 1] !== 0) return false;
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - at);
    if (!data.subarray(at, at + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

let bytes = 0;
let holeBytes = 0;
let filesDone = 0;
let lastReport = 0;

function finish(file: OpenFile): void {
  const { meta } = file;
  ensureOpen(file);
  open.delete(meta.index);
  // Only where the writes fell short of the size (holes left at the end): for every other file it was a syscall spent.
  if (file.end !== meta.size) fs.ftruncateSync(file.fd, meta.size);
  if (chown) fs.fchownSync(file.fd, meta.uid, meta.gid);
  fs.fchmodSync(file.fd, meta.mode);
  const mtime = meta.mtimeSec + meta.mtimeNsec / 1e9;
  fs.futimesSync(file.fd, mtime, mtime);
  fs.closeSync(file.fd);
  files.delete(meta.index);
  filesDone++;
}

function report(force = false): void {
  const now = Date.now();
  if (!force && now - lastReport < 100) return;
  lastReport = now;
  port.postMessage({ type: 'progress', bytes, filesDone, holeBytes } satisfies FromRestoreWorker);
  bytes = 0;
  filesDone = 0;
  holeBytes = 0;
}

port.on('message', (message: ToRestoreWorker) => {
  try {
    if (message.type === 'init') {
      dataKey = Buffer.from(message.dataKey);
      blobIdKey = Buffer.from(message.blobIdKey);
      chown = message.chown;
      sparse = message.sparse;
      return;
    }
    if (message.type === 'files') {
      for (const meta of message.files) {
        const file: OpenFile = { meta, fd: -1, remaining: meta.blobs, created: false, end: 0 };
        files.set(meta.index, file);
        if (meta.blobs === 0) finish(file);
      }
      report(true);
      return;
    }
    for (const blob of message.blobs) {
      const plain = openBlobTransient(dataKey, blobIdKey, Buffer.from(blob.id), Buffer.from(blob.envelope.buffer, blob.envelope.byteOffset, blob.envelope.byteLength));
      // finish() creates a file that got no write and sets its length, so a hole at the end is kept too.
      const hole = sparse && plain.length >= HOLE_MIN_BYTES && isAllZero(plain);
      for (const target of blob.targets) {
        const file = files.get(target.file);
        if (!file) continue;
        if (hole) holeBytes += plain.length;
        else write(file, plain, target.offset);
        bytes += plain.length;
        if (--file.remaining === 0) finish(file);
      }
    }
    const buffer = message.blobs[0].envelope.buffer as ArrayBuffer;
    port.postMessage({ type: 'consumed', buffer } satisfies FromRestoreWorker, [buffer]);
    report(files.size === 0);
  } catch (err) {
    port.postMessage({ type: 'failed', message: (err as Error).message } satisfies FromRestoreWorker);
  }
});

port.on('close', () => report(true));
