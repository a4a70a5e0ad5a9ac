import { describe, expect, it } from 'vitest';
import { BufferPool, sizeClass } from './buffer-pool.js';

describe('buffer pool', () => {
  it('rounds sizes to classes that are their own class and waste less than a quarter', () => {
    for (const bytes of [1, 65536, 65537, 100_000, 1 << 20, (1 << 20) + 1, 5_000_000, 8 * 1024 * 1024]) {
      const size = sizeClass(bytes);
      expect(size).toBeGreaterThanOrEqual(bytes);
      expect(sizeClass(size)).toBe(size);
      if (bytes > 65536) expect(size).toBeLessThan(bytes * 1.25 + 1);
    }
  });

  it('hands a returned buffer to the next request of its class, and keeps no more than its limit', () => {
    const pool = new BufferPool(3 * 1024 * 1024);
    const a = pool.take(1_000_000);
    expect(a.byteLength).toBe(sizeClass(1_000_000));
    pool.give(a);
    expect(pool.take(990_000)).toBe(a);
    expect(pool.take(990_000)).not.toBe(a);
    const big = [pool.take(2_000_000), pool.take(2_000_000)];
    for (const b of big) pool.give(b);
    expect(pool.take(2_000_000)).toBe(big[0]);
    // A buffer of no class (not from the pool) is not kept.
    pool.give(new ArrayBuffer(1_000_001));
    expect(pool.take(1_000_001).byteLength).toBe(sizeClass(1_000_001));
  });
});
