/**
 * @module The changed-block bitmap file (BITMAP-FORMAT.md): parse and check
 * one, or write one (tests, benchmarks and tools that are not the kernel
 * tracker). Parsing checks everything that can be checked from the file
 * alone; whether the bitmap may be trusted for a given volume is decided by
 * `judgeBitmap` in tracker.ts.
 */
import { createHash } from 'node:crypto';

export const BITMAP_MAGIC = Buffer.from('BWCBT001', 'latin1');
export const BITMAP_VERSION = 1;
export const BITMAP_HEADER_BYTES = 64;
const DIGEST_BYTES = 32;

export interface ChangeBitmap {
  blockSize: number;
  deviceSizeBytes: number;
  /** Random, non-zero, new at every tracking start or restart. 16 hex digits. */
  generation: string;
  /** Dump counter within a generation. */
  sequence: bigint;
  deviceMajor: number;
  deviceMinor: number;
  /** Bit i of byte j marks block j*8+i dirty. */
  bits: Uint8Array;
}

export class BitmapError extends Error {}

export function blockCount(sizeBytes: number, blockSize: number): number {
  return Math.ceil(sizeBytes / blockSize);
}

export function parseBitmap(file: Buffer): ChangeBitmap {
  if (file.length < BITMAP_HEADER_BYTES + DIGEST_BYTES) throw new BitmapError(`the bitmap file is ${file.length} bytes, shorter than a header and checksum`);
  if (!file.subarray(0, 8).equals(BITMAP_MAGIC)) throw new BitmapError('the bitmap file does not start with BWCBT001');
  const version = file.readUInt32LE(8);
  if (version !== BITMAP_VERSION) throw new BitmapError(`bitmap version ${version} is not supported (this agent reads version ${BITMAP_VERSION})`);
  const body = file.subarray(0, file.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(file.subarray(file.length - DIGEST_BYTES))) throw new BitmapError('the bitmap file fails its SHA-256 checksum (truncated or altered)');
  const blockSize = file.readUInt32LE(12);
  const size = file.readBigUInt64LE(16);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new BitmapError(`the bitmap claims a device of ${size} bytes`);
  const deviceSizeBytes = Number(size);
  if (blockSize === 0 || blockSize % 512 !== 0) throw new BitmapError(`the bitmap has a block size of ${blockSize}`);
  const generation = file.readBigUInt64LE(24);
  if (generation === 0n) throw new BitmapError('the bitmap has generation 0: the tracker never started');
  if (!file.subarray(48, 64).equals(Buffer.alloc(16))) throw new BitmapError('the bitmap header has non-zero reserved bytes');
  const expected = Math.ceil(blockCount(deviceSizeBytes, blockSize) / 8);
  if (body.length - BITMAP_HEADER_BYTES !== expected) throw new BitmapError(`the bitmap holds ${body.length - BITMAP_HEADER_BYTES} bytes of bits; a ${deviceSizeBytes}-byte device needs ${expected}`);
  return {
    blockSize, deviceSizeBytes, generation: generation.toString(16).padStart(16, '0'), sequence: file.readBigUInt64LE(32),
    deviceMajor: file.readUInt32LE(40), deviceMinor: file.readUInt32LE(44), bits: body.subarray(BITMAP_HEADER_BYTES),
  };
}

export function encodeBitmap(b: Omit<ChangeBitmap, 'bits'> & { dirtyBlocks: Iterable<number> }): Buffer {
  const blocks = blockCount(b.deviceSizeBytes, b.blockSize);
  const file = Buffer.alloc(BITMAP_HEADER_BYTES + Math.ceil(blocks / 8) + DIGEST_BYTES);
  BITMAP_MAGIC.copy(file, 0);
  file.writeUInt32LE(BITMAP_VERSION, 8);
  file.writeUInt32LE(b.blockSize, 12);
  file.writeBigUInt64LE(BigInt(b.deviceSizeBytes), 16);
  file.writeBigUInt64LE(BigInt('0x' + b.generation), 24);
  file.writeBigUInt64LE(b.sequence, 32);
  file.writeUInt32LE(b.deviceMajor, 40);
  file.writeUInt32LE(b.deviceMinor, 44);
  for (const i of b.dirtyBlocks) {
    if (i < 0 || i >= blocks) throw new RangeError(`block ${i} is outside a ${blocks}-block device`);
    file[BITMAP_HEADER_BYTES + (i >> 3)] |= 1 << (i & 7);
  }
  const end = file.length - DIGEST_BYTES;
  createHash('sha256').update(file.subarray(0, end)).digest().copy(file, end);
  return file;
}

/** Dirty blocks as sorted runs [start, count, start, count, …]. */
export function dirtyRuns(bits: Uint8Array, blocks: number): number[] {
  const runs: number[] = [];
  let start = -1;
  for (let j = 0; j < bits.length; j++) {
    const byte = bits[j];
    if (byte === 0 && start < 0) continue;
    if (byte === 0xff && start >= 0) continue;
    for (let i = 0; i < 8; i++) {
      const block = j * 8 + i;
      if (block >= blocks) break;
      const dirty = (byte >> i) & 1;
      if (dirty && start < 0) start = block;
      else if (!dirty && start >= 0) { runs.push(start, block - start); start = -1; }
    }
  }
  if (start >= 0) runs.push(start, blocks - start);
  return runs;
}
