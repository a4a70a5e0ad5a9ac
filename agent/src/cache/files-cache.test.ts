import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FilesCache } from './files-cache.js';

const stat = (size: number, mtimeNs: bigint) => ({ size: BigInt(size), mtimeNs, ctimeNs: mtimeNs + 1n, ino: 123456789012n }) as unknown as fs.BigIntStats;

describe('files cache', () => {
  it('keeps what each file looked like and its blobs from one committed point to the next; damage means no cache', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-cache-'));
    try {
      const pointId = randomBytes(16).toString('hex');
      const ids = [randomBytes(32), randomBytes(32)];
      const tree = randomBytes(32).toString('hex');
      const first = FilesCache.load(dir, 'k');
      expect(first.previousPointId).toBeUndefined();
      first.remember('/data/a\xe9', stat(5_000_000, -1_500_000_000_123n), 5_000_000, ids, [4_000_000, 1_000_000]);
      first.remember('/data/empty', stat(0, 1_700_000_000_000_000_001n), 0, [], []);
      first.rememberTree(tree);
      const staged = first.stage(pointId);
      expect(FilesCache.load(dir, 'k').previousPointId).toBeUndefined(); // not in place until the commit is confirmed
      staged.install();

      const second = FilesCache.load(dir, 'k');
      expect(second.previousPointId).toBe(pointId);
      expect(second.knowsTree(tree)).toBe(true);
      const hit = second.lookup('/data/a\xe9', stat(5_000_000, -1_500_000_000_123n))!;
      expect(hit.ids.map((b) => b.toString('hex'))).toEqual(ids.map((b) => b.toString('hex')));
      expect(hit.sizes).toEqual([4_000_000, 1_000_000]);
      expect(second.lookup('/data/empty', stat(0, 1_700_000_000_000_000_001n))?.ids).toEqual([]);
      expect(second.lookup('/data/a\xe9', stat(5_000_000, -1_500_000_000_124n))).toBeUndefined();

      const file = path.join(dir, 'k.cache');
      fs.truncateSync(file, fs.statSync(file).size - 10);
      const cut = FilesCache.load(dir, 'k');
      expect(cut.previousPointId).toBeUndefined();
      expect(cut.lookup('/data/empty', stat(0, 1_700_000_000_000_000_001n))).toBeUndefined();
      fs.writeFileSync(file, 'garbage');
      expect(FilesCache.load(dir, 'k').previousPointId).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
