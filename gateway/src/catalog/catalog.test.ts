import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from './catalog.js';

describe('catalog: which blobs an agent lacks', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

  it('answers with the indexes of the missing ids, duplicates included, per agent', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-catalog-'));
    dirs.push(dir);
    const catalog = await Catalog.open(path.join(dir, 'catalog.db'));
    try {
      const [x, y, z] = [randomBytes(32), randomBytes(32), randomBytes(32)];
      await catalog.recordPack({ hash: randomBytes(32), agentId: 'agt-a', size: 100, entries: [{ id: x, offset: 0, length: 10 }, { id: y, offset: 10, length: 10 }] }, Date.now());
      expect(await catalog.missingBlobs('agt-a', [y, z, x, z])).toEqual([1, 3]);
      expect(await catalog.missingBlobs('agt-b', [x, y])).toEqual([0, 1]);
      expect(await catalog.missingBlobs('agt-a', [])).toEqual([]);
      const many = Array.from({ length: 5000 }, () => randomBytes(32));
      expect((await catalog.missingBlobs('agt-a', [...many, x])).length).toBe(5000);
      await expect(catalog.missingBlobs('agt-a', [Buffer.alloc(31)])).rejects.toThrow(/32 bytes/);
    } finally {
      await catalog.close();
    }
  });
});
