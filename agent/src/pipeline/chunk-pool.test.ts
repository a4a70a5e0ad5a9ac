import { describe, expect, it } from 'vitest';
import { splitBatch } from './chunk-pool.js';

describe('blob batches', () => {
  it('free their memory once every blob is released, and not before', () => {
    const bytes = new ArrayBuffer(30);
    new Uint8Array(bytes).fill(7);
    const ids = new Uint8Array(3 * 32).fill(1);
    const blobs = splitBatch({ ids, bytes, offsets: Uint32Array.from([0, 10, 25, 30]), plainBytes: 60 });
    expect(blobs.map((b) => b.envelope.length)).toEqual([10, 15, 5]);
    blobs[0].release!();
    blobs[2].release!();
    // Released twice: still counts once, so the blob still held keeps its bytes.
    blobs[2].release!();
    expect(bytes.byteLength).toBe(30);
    expect(blobs[1].envelope.every((b) => b === 7)).toBe(true);
    blobs[1].release!();
    expect(bytes.byteLength).toBe(0);
  });
});
