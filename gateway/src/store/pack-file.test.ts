import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PackFile, STAGING_BYTES } from './pack-file.js';

describe('pack file', () => {
  it('holds exactly its first bytes and what was appended, written while appends go on, around the page cache or through it, and ends read-only', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-packfile-'));
    try {
      // Sizes that end stagings mid-part, fill one exactly, and leave an unaligned tail.
      const parts = [randomBytes(14), randomBytes(STAGING_BYTES - 14), randomBytes(3), randomBytes(STAGING_BYTES * 2 + 4096), randomBytes(777)];
      for (const direct of [true, false]) {
        const file = path.join(dir, `${direct}.pack`);
        const start = randomBytes(100);
        const pack = new PackFile(file, { direct, start });
        await pack.append(parts.slice(0, 2));
        const wentDirect = pack.isDirect;
        await pack.append(parts.slice(2));
        await pack.finish();
        expect(fs.readFileSync(file).equals(Buffer.concat([start, ...parts]))).toBe(true);
        expect(fs.statSync(file).mode & 0o777).toBe(0o444);
        if (!direct) expect(wentDirect).toBe(false);
        // ext4 takes direct I/O: the writer used it.
        else if (fs.statfsSync(dir).type === 0xef53) expect(wentDirect).toBe(true);
      }
      expect(() => new PackFile(path.join(dir, 'true.pack'))).toThrow(/EEXIST/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
