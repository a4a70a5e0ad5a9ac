/**
 * @module A volume point as a complete synthetic image: per-block locations
 * (which blob, which block inside it) built from the previous point's map
 * with this point's changes laid over them, then coalesced back into
 * extents. Unchanged ranges keep pointing at earlier points' blobs, so every
 * point restores on its own and no point depends on another's manifest.
 */
import { blake3 } from '../../native/blake3.js';
import type { Extent, VolumeMap } from '@bulwark/proto';

export const BLOCK_SIZE = 4096;
/** Blocks per group hash: a scan hashes a 64 KiB group first, and its blocks only if it changed. */
export const GROUP_BLOCKS = 16;

export class BlockLocations {
  /** Index into `blobs`, or -1: the block reads as zeros. */
  readonly blob: Int32Array;
  /** Block number inside that blob's plaintext. */
  readonly at: Uint32Array;
  readonly blobs: Buffer[] = [];
  private readonly index = new Map<string, number>();

  constructor(readonly sizeBytes: number, readonly blockSize = BLOCK_SIZE) {
    const blocks = Math.ceil(sizeBytes / blockSize);
    this.blob = new Int32Array(blocks).fill(-1);
    this.at = new Uint32Array(blocks);
  }

  get blocks(): number { return this.blob.length; }

  blobIndex(id: Buffer): number {
    const key = id.toString('hex');
    let i = this.index.get(key);
    if (i === undefined) { i = this.blobs.push(id) - 1; this.index.set(key, i); }
    return i;
  }

  /** Lay a volume map over the locations (the previous point's, for an incremental). */
  static fromMap(map: VolumeMap): BlockLocations {
    const locations = new BlockLocations(map.sizeBytes, map.blockSize);
    const table = (map.blobs ?? []).map((id) => locations.blobIndex(id));
    const bs = map.blockSize;
    for (const e of map.extents) {
      if (e.offset % bs !== 0 || (e.blobOffset ?? 0) % bs !== 0) throw new Error(`extent at ${e.offset} is not aligned to ${bs}-byte blocks`);
      const first = e.offset / bs;
      const count = Math.ceil(e.length / bs);
      const blob = table[e.blobIndex ?? 0];
      if (blob === undefined) throw new Error(`extent at ${e.offset} points at blob ${e.blobIndex}, beyond the map's ${table.length}`);
      const at = (e.blobOffset ?? 0) / bs;
      for (let k = 0; k < count; k++) { locations.blob[first + k] = blob; locations.at[first + k] = at + k; }
    }
    return locations;
  }

  place(blockList: ArrayLike<number>, id: Buffer): void {
    const b = this.blobIndex(id);
    for (let k = 0; k < blockList.length; k++) { this.blob[blockList[k]] = b; this.at[blockList[k]] = k; }
  }

  zero(blockList: ArrayLike<number>): void {
    for (let k = 0; k < blockList.length; k++) this.blob[blockList[k]] = -1;
  }

  /** Coalesce into extents with a compact blob table (only blobs still referenced). */
  toMap(fields: Omit<VolumeMap, 'extents' | 'blobs' | 'sizeBytes' | 'blockSize' | 'dataBytes'>): VolumeMap {
    const bs = this.blockSize;
    const remap = new Int32Array(this.blobs.length).fill(-1);
    const blobs: Buffer[] = [];
    const extents: Extent[] = [];
    let dataBytes = 0;
    const n = this.blocks;
    for (let i = 0; i < n;) {
      const b = this.blob[i];
      if (b < 0) { i++; continue; }
      let j = i + 1;
      while (j < n && this.blob[j] === b && this.at[j] === this.at[j - 1] + 1) j++;
      if (remap[b] < 0) remap[b] = blobs.push(this.blobs[b]) - 1;
      const offset = i * bs;
      const length = Math.min(j * bs, this.sizeBytes) - offset;
      extents.push({ offset, length, blobIndex: remap[b], blobOffset: this.at[i] * bs });
      dataBytes += length;
      i = j;
    }
    return { ...fields, sizeBytes: this.sizeBytes, blockSize: bs, extents, blobs, dataBytes };
  }
}

/** The image digest kept in VolumeMap.merkle_root (FORMAT.md "Image digest"). */
export function imageDigest(hashes: BigUint64Array, sizeBytes: number, blockSize: number): Buffer {
  const head = Buffer.alloc(32);
  head.write('bulwark volume image v1', 0, 'latin1');
  head.writeBigUInt64LE(BigInt(sizeBytes), 24);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(blockSize);
  return blake3(Buffer.concat([head, tail, Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength)]));
}

/** Which byte ranges of which blob a restore writes where. */
export interface BlobTarget { imageOffset: number; blobOffset: number; length: number }

export function restorePlan(map: VolumeMap): Map<number, BlobTarget[]> {
  const plan = new Map<number, BlobTarget[]>();
  for (const e of map.extents) {
    const b = e.blobIndex ?? 0;
    let list = plan.get(b);
    if (!list) plan.set(b, (list = []));
    list.push({ imageOffset: e.offset, blobOffset: e.blobOffset ?? 0, length: e.length });
  }
  return plan;
}
