import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ChattrImmutable } from './immutable.js';

const isImmutable = (file: string) => execFileSync('lsattr', ['-d', file], { encoding: 'utf8' }).split(' ')[0].includes('i');

describe('immutable flag', () => {
  it('sets and clears the flag through one shell, answers in order, a failure in between included', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-immutable-'));
    const files = Array.from({ length: 6 }, (_, i) => path.join(dir, `pack-${i}`));
    for (const f of files) fs.writeFileSync(f, 'sealed');
    const flag = new ChattrImmutable();
    try {
      // Where the flag works (root on ext4, as in CI), all but the missing one get it.
      const works = process.getuid?.() === 0 && fs.statfsSync(dir).type === 0xef53;
      const first = await flag.set(files[0]);
      expect(first).toBe(works);
      const results = await Promise.all([files[1], path.join(dir, 'missing'), files[2], files[3], files[4], files[5]].map((f) => flag.set(f)));
      expect(results).toEqual(works ? [true, false, true, true, true, true] : [false, false, false, false, false, false]);
      expect(flag.supported).toBe(works);
      for (const f of files) expect(isImmutable(f)).toBe(works);
      if (works) expect(() => fs.writeFileSync(files[3], 'changed')).toThrow(/EPERM/);
      // Cleared through the same shell: the file can change again.
      expect(await flag.clear(files[3])).toBe(works);
      expect(isImmutable(files[3])).toBe(false);
      fs.writeFileSync(files[3], 'changed');
    } finally {
      for (const f of files) await flag.clear(f);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
