/**
 * @module FastCDC content-defined chunking (Xia et al. 2020, normalised
 * chunking, level 2). The gear table is derived from a per-agent key so chunk
 * boundaries do not leak which well-known files a host holds.
 */
import { createHash } from 'node:crypto';

export interface ChunkerParams { minSize: number; avgSize: number; maxSize: number }
export const DEFAULT_CHUNKING: ChunkerParams = { minSize: 256 * 1024, avgSize: 1024 * 1024, maxSize: 4 * 1024 * 1024 };

export function gearTable(seed: Buffer): Uint32Array {
  const table = new Uint32Array(256);
  let block = Buffer.alloc(0);
  for (let i = 0, counter = 0; i < 256; i++) {
    if (i % 8 === 0) block = createHash('sha256').update(seed).update(Buffer.from([counter++])).digest();
    table[i] = block.readUInt32LE((i % 8) * 4);
  }
  return table;
}

/** The top `bits` bits: in a gear hash they depend on the last 32 bytes. */
function topMask(bits: number): number {
  return (0xffffffff << (32 - bits)) >>> 0 | 0;
}

export class FastCdc {
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(private readonly gear: Uint32Array, readonly params: ChunkerParams = DEFAULT_CHUNKING) {
    const bits = Math.round(Math.log2(params.avgSize));
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
  }

  /**
   * Length of the first chunk of `data`. With `final` false and no cut
   * found, returns 0: the caller must append more data first.
   */
  cut(data: Uint8Array, start: number, end: number, final: boolean): number {
    const { minSize, avgSize, maxSize } = this.params;
    const available = end - start;
    if (available <= minSize) return final ? available : 0;
    // Absolute indices and masks in locals: the loops are the hottest code of a backup.
    const limit = start + Math.min(available, maxSize);
    const normal = start + Math.min(available, maxSize, avgSize);
    const gear = this.gear;
    const maskS = this.maskS;
    const maskL = this.maskL;
    let hash = 0;
    let i = start + minSize;
    for (; i < normal; i++) {
      hash = ((hash << 1) + gear[data[i]]) | 0;
      if ((hash & maskS) === 0) return i + 1 - start;
    }
    for (; i < limit; i++) {
      hash = ((hash << 1) + gear[data[i]]) | 0;
      if ((hash & maskL) === 0) return i + 1 - start;
    }
    if (limit - start === maxSize || final) return limit - start;
    return 0;
  }
}
