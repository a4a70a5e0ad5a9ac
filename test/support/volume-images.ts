/**
 * @module Test and benchmark support for volumes: deterministic image data
 * from a seed (random via AES-CTR, text-like from a word list), random
 * writes between backups, changed-block bitmap files, and file digests.
 */
import fs from 'node:fs';
import { createCipheriv, createHash } from 'node:crypto';

export const BLOCK = 4096;

/** Deterministic incompressible bytes: AES-256-CTR keystream under a key made from the seed and a label. */
export function randomStream(seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(`bulwark test data ${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

/** Small fast PRNG (xorshift32) for offsets, sizes and word choices. */
export class FastRng {
  private s: number;
  constructor(seed: number) { this.s = (seed * 2654435761) >>> 0 || 1; for (let i = 0; i < 10; i++) this.u32(); }
  u32(): number { let x = this.s; x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; this.s = x; return x; }
  int(max: number): number { return Math.floor((this.u32() / 4294967296) * max); }
}

const WORDS = ['backup', 'restore', 'ransom', 'gateway', 'agent', 'block', 'the', 'a', 'immutable', 'vault', 'point', 'chunk', 'volume', 'snapshot',
  'extent', 'bitmap', 'journal', 'inode', 'sector', 'kernel', 'tracker', 'of', 'and', 'to', 'in', 'is', 'that', 'for', 'on', 'with', 'error', 'warning',
  'info', 'debug', '2026-12-03', 'request', 'response', 'user', 'id', 'session', 'timeout', 'retry', 'commit', 'rollback'];
const WORD_BYTES = WORDS.map((w) => Buffer.from(w));

/** Deterministic compressible log-like text. */
export function textBytes(rng: FastRng, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  while (at < n) {
    const w = WORD_BYTES[rng.int(WORD_BYTES.length)];
    const take = Math.min(w.length, n - at);
    w.copy(out, at, 0, take);
    at += take;
    if (at < n) out[at++] = rng.int(12) === 0 ? 0x0a : 0x20;
  }
  return out;
}

export function writeAt(file: string, data: Buffer, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    let done = 0;
    while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, offset + done);
  } finally {
    fs.closeSync(fd);
  }
}

/** Blocks touched by a write of `length` bytes at `offset`. */
export function touched(offset: number, length: number, into: Set<number>): void {
  for (let b = Math.floor(offset / BLOCK); b * BLOCK < offset + length; b++) into.add(b);
}

/**
 * Random writes of random sizes (1 byte to maxBytes) at random offsets;
 * some are zeros. Returns the set of blocks written. A block device's size
 * is not in its stat: pass it.
 */
export function randomWrites(file: string, rng: FastRng, count: number, maxBytes: number, seed: string, size = fs.statSync(file).size): Set<number> {
  const random = randomStream(seed);
  const dirty = new Set<number>();
  for (let i = 0; i < count; i++) {
    const length = 1 + rng.int(Math.min(maxBytes, size));
    const offset = rng.int(size - length + 1);
    const kind = rng.int(5);
    const data = kind === 0 ? Buffer.alloc(length) : kind === 1 ? textBytes(rng, length) : random(length);
    writeAt(file, data, offset);
    touched(offset, length, dirty);
  }
  return dirty;
}

export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** A changed-block bitmap file in the BWCBT001 format (agent/src/cbt/BITMAP-FORMAT.md). */
export function bitmapFile(o: { sizeBytes: number; generation: bigint; sequence: bigint; dirty: Iterable<number>; major?: number; minor?: number }): Buffer {
  const blocks = Math.ceil(o.sizeBytes / BLOCK);
  const file = Buffer.alloc(64 + Math.ceil(blocks / 8) + 32);
  file.write('BWCBT001', 0, 'latin1');
  file.writeUInt32LE(1, 8);
  file.writeUInt32LE(BLOCK, 12);
  file.writeBigUInt64LE(BigInt(o.sizeBytes), 16);
  file.writeBigUInt64LE(o.generation, 24);
  file.writeBigUInt64LE(o.sequence, 32);
  file.writeUInt32LE(o.major ?? 0, 40);
  file.writeUInt32LE(o.minor ?? 0, 44);
  for (const b of o.dirty) file[64 + (b >> 3)] |= 1 << (b & 7);
  const end = file.length - 32;
  createHash('sha256').update(file.subarray(0, end)).digest().copy(file, end);
  return file;
}
