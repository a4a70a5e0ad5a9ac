import { describe, expect, it } from 'vitest';
import { BitmapError, dirtyRuns, encodeBitmap, parseBitmap } from './bitmap.js';

const base = { blockSize: 4096, deviceSizeBytes: 4096 * 21 + 5, generation: '00000000deadbeef', sequence: 7n, deviceMajor: 8, deviceMinor: 16 };

describe('BWCBT001 bitmaps', () => {
  it('round-trips header and bits', () => {
    const file = encodeBitmap({ ...base, dirtyBlocks: [0, 3, 8, 9, 10, 21] });
    expect(file.length).toBe(64 + 3 + 32);
    const b = parseBitmap(file);
    expect(b).toMatchObject({ blockSize: 4096, deviceSizeBytes: base.deviceSizeBytes, generation: base.generation, sequence: 7n, deviceMajor: 8, deviceMinor: 16 });
    expect(dirtyRuns(b.bits, 22)).toEqual([0, 1, 3, 1, 8, 3, 21, 1]);
  });

  it('finds runs across whole bytes and at the end', () => {
    const file = encodeBitmap({ ...base, deviceSizeBytes: 4096 * 40, dirtyBlocks: Array.from({ length: 25 }, (_, i) => i + 15) });
    expect(dirtyRuns(parseBitmap(file).bits, 40)).toEqual([15, 25]);
  });

  it('rejects damage, truncation, bad versions and generation 0', () => {
    const good = encodeBitmap({ ...base, dirtyBlocks: [1] });
    const flipped = Buffer.from(good); flipped[64] ^= 2;
    expect(() => parseBitmap(flipped)).toThrow(/checksum/);
    expect(() => parseBitmap(good.subarray(0, 80))).toThrow(BitmapError);
    const magic = Buffer.from(good); magic[0] = 0x41;
    expect(() => parseBitmap(magic)).toThrow(/BWCBT001/);
    expect(() => parseBitmap(encodeBitmap({ ...base, generation: '0000000000000000', dirtyBlocks: [] }))).toThrow(/generation 0/);
    // Right checksum over a wrong length: the size check catches it.
    const short = encodeBitmap({ ...base, deviceSizeBytes: 4096 * 100, dirtyBlocks: [] });
    short.writeBigUInt64LE(BigInt(4096 * 200), 16);
    expect(() => parseBitmap(short)).toThrow();
  });
});
