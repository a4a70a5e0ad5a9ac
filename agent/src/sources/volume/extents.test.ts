import { describe, expect, it } from 'vitest';
import { storageCodec, type VolumeMap } from '@bulwark/proto';
import { BlockLocations } from './extents.js';
import { cutJobs } from './scanner.js';

const id = (n: number) => Buffer.alloc(32, n);
const fields = { path: '/i', merkleRoot: Buffer.alloc(32) };
const decode = (bytes: Buffer) => storageCodec<VolumeMap>('VolumeMap').decode(bytes);
const plain = (map: VolumeMap) => map.extents.map(({ offset, length, blobIndex, blobOffset }) => ({ offset, length, blobIndex, blobOffset }));

describe('volume extents', () => {
  it('coalesces blocks, overlays changes and keeps unchanged ranges on old blobs', () => {
    const size = 4096 * 10 + 100;
    const first = new BlockLocations(size);
    first.place([0, 1, 2, 3, 4], id(1));
    first.place([6, 7, 8, 9, 10], id(2));
    const encoded1 = first.encodeMap(fields);
    const map1 = decode(encoded1.bytes);
    expect(encoded1.extents).toBe(2);
    expect(plain(map1)).toEqual([
      { offset: 0, length: 5 * 4096, blobIndex: 0, blobOffset: 0 },
      { offset: 6 * 4096, length: 4 * 4096 + 100, blobIndex: 1, blobOffset: 0 },
    ]);
    expect(map1.dataBytes).toBe(9 * 4096 + 100);
    expect(encoded1.dataBytes).toBe(9 * 4096 + 100);

    const next = BlockLocations.fromEncodedMap(encoded1.bytes);
    next.place([2, 8], id(3));
    next.zero([9]);
    const encoded2 = next.encodeMap(fields);
    const map2 = decode(encoded2.bytes);
    expect(map2.blobs).toEqual([id(1), id(3), id(2)]);
    expect(encoded2.blobs).toEqual([id(1), id(3), id(2)]);
    expect(plain(map2)).toEqual([
      { offset: 0, length: 8192, blobIndex: 0, blobOffset: 0 },
      { offset: 8192, length: 4096, blobIndex: 1, blobOffset: 0 },
      { offset: 12288, length: 8192, blobIndex: 0, blobOffset: 12288 },
      { offset: 6 * 4096, length: 8192, blobIndex: 2, blobOffset: 0 },
      { offset: 8 * 4096, length: 4096, blobIndex: 1, blobOffset: 4096 },
      { offset: 10 * 4096, length: 100, blobIndex: 2, blobOffset: 4 * 4096 },
    ]);
    // Blobs no longer referenced leave the table.
    const last = BlockLocations.fromEncodedMap(encoded2.bytes);
    last.place([8], id(4));
    last.place([2], id(4));
    expect(last.encodeMap(fields).blobs).toEqual([id(1), id(4), id(2)]);
  });

  it('refuses an encoded map whose extents leave the volume or point past the blob table', () => {
    const one = new BlockLocations(4096 * 4);
    one.place([0, 1], id(1));
    const map = decode(one.encodeMap(fields).bytes);
    const encode = (m: VolumeMap) => storageCodec<VolumeMap>('VolumeMap').encode(m);
    expect(() => BlockLocations.fromEncodedMap(encode({ ...map, extents: [{ offset: 4096 * 3, length: 8192, blobIndex: 0, blobOffset: 0 }] }))).toThrow(/runs past/);
    expect(() => BlockLocations.fromEncodedMap(encode({ ...map, extents: [{ offset: 0, length: 4096, blobIndex: 1, blobOffset: 0 }] }))).toThrow(/beyond the map's 1/);
    expect(() => BlockLocations.fromEncodedMap(encode({ ...map, extents: [{ offset: 100, length: 4096, blobIndex: 0, blobOffset: 0 }] }))).toThrow(/not aligned/);
    // A table that lists a blob twice still lands every block on the right blob.
    const twice = BlockLocations.fromEncodedMap(encode({ ...map, blobs: [id(1), id(1)], extents: [{ offset: 0, length: 4096, blobIndex: 1, blobOffset: 0 }] }));
    expect(decode(twice.encodeMap(fields).bytes).blobs).toEqual([id(1)]);
  });

  it('cuts scan jobs at 64 MiB boundaries', () => {
    expect(cutJobs([0, 40000])).toEqual([[0, 16384], [16384, 16384], [32768, 7232]]);
    expect(cutJobs([10, 5, 100, 3])).toEqual([[10, 5, 100, 3]]);
  });
});
