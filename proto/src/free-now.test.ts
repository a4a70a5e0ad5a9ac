import { describe, expect, it } from 'vitest';
import { freeNow } from './free-now.js';

describe('freeNow', () => {
  it('frees memory a buffer owns whole, and leaves a view into shared memory alone', () => {
    const owned = Buffer.from(new ArrayBuffer(64));
    freeNow(owned);
    expect(owned.length).toBe(0);

    const whole = new ArrayBuffer(32);
    freeNow(whole);
    expect(whole.byteLength).toBe(0);

    // A slice of a larger buffer (as a small frame may be of a socket read) shares its memory with others.
    const larger = new ArrayBuffer(128);
    const slice = Buffer.from(larger, 16, 32);
    freeNow(slice);
    expect(slice.length).toBe(32);
    expect(larger.byteLength).toBe(128);

    const shared = new Uint8Array(new SharedArrayBuffer(16));
    freeNow(shared);
    expect(shared.length).toBe(16);
    freeNow(shared.buffer);
    expect(shared.buffer.byteLength).toBe(16);
  });
});
