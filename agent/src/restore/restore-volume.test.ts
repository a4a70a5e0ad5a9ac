import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Manifest, VolumeMap } from '@bulwark/proto';
import type { GatewayLink } from '../transport/link.js';
import { restoreVolume, volumeMapProblem } from './restore-volume.js';
import type { PointAccess } from './restore.js';

const KiB = 1024;

function goodMap(): VolumeMap {
  return {
    path: 'disk.img', sizeBytes: 64 * KiB + 100, blockSize: 4096, merkleRoot: randomBytes(32), blobs: [randomBytes(32), randomBytes(32)], dataBytes: 8 * KiB + 16 * KiB + 100,
    extents: [
      { offset: 0, length: 8 * KiB, blobIndex: 0, blobOffset: 0 },
      { offset: 32 * KiB, length: 16 * KiB, blobIndex: 1, blobOffset: 0 },
      { offset: 64 * KiB, length: 100, blobIndex: 1, blobOffset: 16 * KiB },
    ],
  };
}

describe('volume maps a restore refuses', () => {
  it('accepts a map the writers can follow', () => {
    expect(volumeMapProblem(goodMap())).toBeUndefined();
  });

  const faults: [string, (m: VolumeMap) => void, RegExp][] = [
    ['more data claimed than its extents hold', (m) => { m.dataBytes! += 4096; }, /says it holds 28772 bytes of data, its extents 24676/],
    ['a block size of zero', (m) => { m.blockSize = 0; }, /block size \(0\)/],
    ['a block size that is not a power of two', (m) => { m.blockSize = 3000; }, /block size \(3000\)/],
    ['no image size', (m) => { m.sizeBytes = 0; }, /image size/],
    ['overlapping extents', (m) => { m.extents[1].offset = 4 * KiB; }, /extent 1 .* overlaps/],
    ['extents out of order', (m) => { m.extents.reverse(); }, /extent 1 .* overlaps/],
    ['an extent past the end of the image', (m) => { m.extents[2].length = 200; }, /extent 2 .* runs past the image's end/],
    ['an empty extent', (m) => { m.extents[0].length = 0; }, /extent 0 .* is empty/],
    ['an extent off block boundaries', (m) => { m.extents[1].offset = 32 * KiB + 512; }, /extent 1 .* block boundaries/],
    ['a blob index past the blob list', (m) => { m.extents[1].blobIndex = 2; }, /names blob 2; the map lists 2/],
    ['a short image digest', (m) => { m.merkleRoot = randomBytes(16); }, /digest/],
  ];
  for (const [name, damage, message] of faults) {
    it(`names ${name}`, () => {
      const map = goodMap();
      damage(map);
      expect(volumeMapProblem(map)).toMatch(message);
    });
  }

  it('refuses such a map before it creates the target or reads a blob', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-volmap-'));
    try {
      const map = goodMap();
      map.dataBytes! += 4096;
      const refs = Buffer.concat(map.blobs!);
      const link = { send: () => { throw new Error('nothing may be read'); } } as unknown as GatewayLink;
      const target = path.join(dir, 'restored.img');
      await expect(restoreVolume(link, {} as PointAccess, { volume: map } as Manifest, refs, target)).rejects.toThrow(/volume map cannot be restored: it says it holds/);
      expect(fs.existsSync(target)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
