import { describe, expect, it } from 'vitest';
import { encodeBitmap, parseBitmap } from './bitmap.js';
import { chooseChangeSet, type TrackingContext } from './tracker.js';
import type { VolumeMemory } from '../sources/volume/volume-state.js';

const size = 4096 * 64;
const volume = { path: '/img', sizeBytes: size, blockSize: 4096, blockDevice: false, deviceMajor: 0, deviceMinor: 0, hashAlgorithm: 'h' };
const memory = (cbt?: { generation: string; sequence: string }): VolumeMemory => ({
  record: { version: 1, path: '/img', pointId: 'p1', sizeBytes: size, blockSize: 4096, hashAlgorithm: 'h', readStartedMs: 1000, cbt: cbt && { ...cbt, deviceMajor: 0, deviceMinor: 0 } },
  hashes: new BigUint64Array(64), groups: new BigUint64Array(4), encodedMap: Buffer.alloc(0),
});
const bitmap = (generation: string, sequence: bigint, dirty: number[], mtimeMs = 2000): TrackingContext['bitmap'] =>
  ({ file: 'f', mtimeMs, parsed: parseBitmap(encodeBitmap({ blockSize: 4096, deviceSizeBytes: size, generation, sequence, deviceMajor: 0, deviceMinor: 0, dirtyBlocks: dirty })) });
const G = '1111222233334444';

describe('change provider choice', () => {
  it('reads in full the first time and records the bitmap as the baseline', () => {
    const c = chooseChangeSet({ volume, bitmap: bitmap(G, 1n, [5]) });
    expect(c.provider).toBe('full-read');
    expect(c.runs).toEqual([0, 64]);
    expect(c.position).toMatchObject({ generation: G, sequence: '1' });
  });

  it('trusts the next dump of the same generation', () => {
    const c = chooseChangeSet({ volume, memory: memory({ generation: G, sequence: '1' }), bitmap: bitmap(G, 2n, [5, 6, 9]) });
    expect(c.provider).toBe('cbt-bitmap');
    expect(c.runs).toEqual([5, 2, 9, 1]);
    expect(c.position).toMatchObject({ sequence: '2' });
  });

  it('scans after a restart, a gap, a stale dump, a stale file or without a baseline', () => {
    const cases: [TrackingContext, RegExp][] = [
      [{ volume, memory: memory({ generation: G, sequence: '1' }), bitmap: bitmap('9999222233334444', 1n, [1]) }, /restarted/],
      [{ volume, memory: memory({ generation: G, sequence: '1' }), bitmap: bitmap(G, 3n, [1]) }, /someone else/],
      [{ volume, memory: memory({ generation: G, sequence: '4' }), bitmap: bitmap(G, 4n, [1]) }, /stale/],
      [{ volume, memory: memory({ generation: G, sequence: '1' }), bitmap: bitmap(G, 2n, [1], 500) }, /written before/],
      [{ volume, memory: memory(), bitmap: bitmap(G, 2n, [1]) }, /no tracker position/],
      [{ volume, memory: memory({ generation: G, sequence: '1' }), bitmap: { file: 'f', mtimeMs: 2000, error: 'fails its SHA-256 checksum' } }, /checksum/],
    ];
    for (const [ctx, why] of cases) {
      const c = chooseChangeSet(ctx);
      expect(c.provider).toBe('hash-scan');
      expect(c.declined[0]).toMatch(why);
    }
  });

  it('carries the position forward when no bitmap is given, and drops it for an unusable one', () => {
    expect(chooseChangeSet({ volume, memory: memory({ generation: G, sequence: '3' }) }).position).toMatchObject({ sequence: '3' });
    expect(chooseChangeSet({ volume, memory: memory({ generation: G, sequence: '3' }), bitmap: { file: 'f', mtimeMs: 0, error: 'x' } }).position).toBeUndefined();
  });

  it('reads in full when the size changed', () => {
    const c = chooseChangeSet({ volume: { ...volume, sizeBytes: size + 4096 }, memory: memory({ generation: G, sequence: '1' }) });
    expect(c.provider).toBe('full-read');
    expect(c.declined.join(' ')).toMatch(/bytes now/);
  });
});
