/**
 * @module A volume point as a complete synthetic image: per-block locations
 * (which blob, which block inside it) built from the previous point's map
 * with this point's changes laid over them, then coalesced back into
 * extents. Unchanged ranges keep pointing at earlier points' blobs, so every
 * point restores on its own and no point depends on another's manifest.
 */
import { blake3 } from '../../native/blake3.js';
import { decodeVolumeMap, VolumeMapEncoder, type VolumeMap } from '@bulwark/proto';
import { BLOCK_SIZE } from './geometry.js';

export class BlockLocations {
  /** Index into `blobs`, or -1: the block reads as zeros. */
  readonly blob: Int32Array;
  /** Block number inside that blob's plaintext. */
  readonly at: Uint32Array;
  readonly blobs: Buffer[] = [];
  private readonly index = new Map<string, number>();
  /** The size of the encoded map these locations were read from: the next one's is much the same. */
  private encodedSizeHint = 64 * 1024;

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

  /**
   * Lay an encoded volume map over fresh locations (the previous point's,
   * for an incremental), without an object per extent.
   */
  static fromEncodedMap(bytes: Buffer): BlockLocations {
    let locations: BlockLocations | undefined;
    let highestIndex = -1;
    const map = decodeVolumeMap(bytes, 0, bytes.length, (e, head) => {
      locations ??= new BlockLocations(head.sizeBytes, head.blockSize || BLOCK_SIZE);
      const bs = locations.blockSize;
      const offset = e.offset ?? 0;
      const blobOffset = e.blobOffset ?? 0;
      if (offset % bs !== 0 || blobOffset % bs !== 0) throw new Error(`extent at ${offset} is not aligned to ${bs}-byte blocks`);
      const first = offset / bs;
      const count = Math.ceil((e.length ?? 0) / bs);
      if (first + count > locations.blocks) throw new Error(`extent at ${offset} runs past the volume's ${locations.sizeBytes} bytes`);
      const blob = e.blobIndex ?? 0;
      highestIndex = Math.max(highestIndex, blob);
      const blobs = locations.blob;
      const ats = locations.at;
      const at = blobOffset / bs - first;
      for (let k = first; k < first + count; k++) { blobs[k] = blob; ats[k] = at + k; }
    });
    locations ??= new BlockLocations(map.sizeBytes, map.blockSize || BLOCK_SIZE);
    locations.encodedSizeHint = bytes.length + (bytes.length >> 3) + 64 * 1024;
    const table = (map.blobs ?? []).map((id) => locations!.blobIndex(id));
    if (highestIndex >= table.length) throw new Error(`an extent points at blob ${highestIndex}, beyond the map's ${table.length}`);
    // The blob array holds the map's indexes; ours differ only if the map listed a blob twice.
    if (table.some((ours, theirs) => ours !== theirs)) {
      for (let i = 0; i < locations.blob.length; i++) if (locations.blob[i] >= 0) locations.blob[i] = table[locations.blob[i]];
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

  /**
   * Coalesce into an encoded volume map with a compact blob table (only the
   * blobs still referenced, which are also the point's references).
   */
  encodeMap(fields: Pick<VolumeMap, 'path' | 'merkleRoot' | 'provider' | 'crashConsistent' | 'snapshot'>): EncodedVolumeMap {
    const bs = this.blockSize;
    const remap = new Int32Array(this.blobs.length).fill(-1);
    const blobs: Buffer[] = [];
    const encoder = new VolumeMapEncoder({ path: fields.path, sizeBytes: this.sizeBytes, blockSize: bs }, this.encodedSizeHint);
    let extents = 0;
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
      encoder.extent(offset, length, remap[b], this.at[i] * bs);
      extents++;
      dataBytes += length;
      i = j;
    }
    const bytes = encoder.finish({ merkleRoot: fields.merkleRoot, blobs, provider: fields.provider, crashConsistent: fields.crashConsistent, snapshot: fields.snapshot, dataBytes });
    return { bytes, blobs, extents, dataBytes };
  }
}

export interface EncodedVolumeMap { bytes: Buffer; blobs: Buffer[]; extents: number; dataBytes: number }

/** The image digest kept in VolumeMap.merkle_root (FORMAT.md "Image digest"). */
export function imageDigest(hashes: BigUint64Array, sizeBytes: number, blockSize: number): Buffer {
  const head = Buffer.alloc(32);
  head.write('bulwark volume image v1', 0, 'latin1');
  head.writeBigUInt64LE(BigInt(sizeBytes), 24);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(blockSize);
  return blake3(Buffer.concat([head, tail, Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength)]));
}
