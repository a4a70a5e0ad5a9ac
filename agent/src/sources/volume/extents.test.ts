import { describe, expect, it } from 'vitest';
import { BlockLocations, restorePlan } from './extents.js';
import { cutJobs } from './scanner.js';

const id = (n: number) => Buffer.alloc(32, n);

describe('volume extents', () => {
  it('coalesces blocks, overlays changes and keeps unchanged ranges on old blobs', () => {
    const size = 4096 * 10 + 100;
    const first = new BlockLocations(size);
    first.place([0, 1, 2, 3, 4], id(1));
    first.place([6, 7, 8, 9, 10], id(2));
    const map1 = first.toMap({ path: '/i', merkleRoot: Buffer.alloc(32) });
    expect(map1.extents).toEqual([
      { offset: 0, length: 5 * 4096, blobIndex: 0, blobOffset: 0 },
      { offset: 6 * 4096, length: 4 * 4096 + 100, blobIndex: 1, blobOffset: 0 },
    ]);
    expect(map1.dataBytes).toBe(9 * 4096 + 100);

    const next = BlockLocations.fromMap(map1);
    next.place([2, 8], id(3));
    next.zero([9]);
    const map2 = next.toMap({ path: '/i', merkleRoot: Buffer.alloc(32) });
    expect(map2.blobs).toEqual([id(1), id(3), id(2)]);
    expect(map2.extents).toEqual([
      { offset: 0, length: 8192, blobIndex: 0, blobOffset: 0 },
      { offset: 8192, length: 4096, blobIndex: 1, blobOffset: 0 },
      { offset: 12288, length: 8192, blobIndex: 0, blobOffset: 12288 },
      { offset: 6 * 4096, length: 8192, blobIndex: 2, blobOffset: 0 },
      { offset: 8 * 4096, length: 4096, blobIndex: 1, blobOffset: 4096 },
      { offset: 10 * 4096, length: 100, blobIndex: 2, blobOffset: 4 * 4096 },
    ]);
    expect(restorePlan(map2).get(1)).toEqual([{ imageOffset: 8192, blobOffset: 0, length: 4096 }, { imageOffset: 32768, blobOffset: 4096, length: 4096 }]);
    // Blobs no longer referenced leave the table.
    const last = BlockLocations.fromMap(map2);
    last.place([8], id(4));
    last.place([2], id(4));
    expect(last.toMap({ path: '/i', merkleRoot: Buffer.alloc(32) }).blobs).toEqual([id(1), id(4), id(2)]);
  });

  it('cuts scan jobs at 64 MiB boundaries', () => {
    expect(cutJobs([0, 40000])).toEqual([[0, 16384], [16384, 16384], [32768, 7232]]);
    expect(cutJobs([10, 5, 100, 3])).toEqual([[10, 5, 100, 3]]);
  });
});
