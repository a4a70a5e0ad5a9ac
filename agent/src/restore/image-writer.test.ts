import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ImageWriter } from './image-writer.js';

/** Ranges a restore writes: aligned runs, unaligned source offsets, and the image's partial last block. */
function writeImage(file: string, size: number, ranges: [number, Buffer][], direct: boolean): boolean {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const writer = new ImageWriter(file, { direct });
  try {
    for (const [offset, data] of ranges) writer.write(data, offset);
    writer.sync();
    return writer.isDirect;
  } finally {
    writer.close();
  }
}

describe('image writer', () => {
  it('writes the same bytes around the page cache as through it, holes left as zeros', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-image-'));
    try {
      const size = 5 * 1024 * 1024 + 4096 * 3 + 123;
      const source = randomBytes(3 * 1024 * 1024 + 8192);
      const ranges: [number, Buffer][] = [
        [0, source.subarray(0, 4096)],
        // Longer than the staging buffer, from an odd offset of its source.
        [1024 * 1024, source.subarray(7, 7 + 2 * 1024 * 1024 + 4096)],
        [4 * 1024 * 1024 + 8192, source.subarray(100, 100 + 4096 * 5)],
        [4 * 1024 * 1024 + 65536, source.subarray(9, 9 + 128 * 1024)],
        // The partial last block: through the page cache whatever the mode.
        [size - 123 - 4096, source.subarray(3, 3 + 4096 + 123)],
      ];
      const expected = Buffer.alloc(size);
      for (const [offset, data] of ranges) data.copy(expected, offset);
      const direct = path.join(dir, 'direct.img');
      const buffered = path.join(dir, 'buffered.img');
      const wentDirect = writeImage(direct, size, ranges, true);
      expect(writeImage(buffered, size, ranges, false)).toBe(false);
      expect(fs.readFileSync(buffered).equals(expected)).toBe(true);
      expect(fs.readFileSync(direct).equals(expected)).toBe(true);
      // Where the filesystem takes direct I/O (ext4 and XFS do), the writer used it to the end.
      if (process.platform === 'linux' && fs.statfsSync(dir).type === 0xef53) expect(wentDirect).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
