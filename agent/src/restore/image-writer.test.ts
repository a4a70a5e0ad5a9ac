import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DirectDescriptor, isPageAligned, pageAlignedBuffer } from '@bulwark/proto/direct-io';
import { ImageWriter, goesDirect, writeAround } from './image-writer.js';

const onExt4 = (dir: string) => process.platform === 'linux' && fs.statfsSync(dir).type === 0xef53;

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
      // Page-aligned memory, as restored blobs are opened into: whole pages at page offsets of it go without staging.
      const source = pageAlignedBuffer(3 * 1024 * 1024 + 8192);
      randomBytes(source.length).copy(source);
      const ranges: [number, Buffer][] = [
        [2 * 4096, source.subarray(4096, 4096 + 300 * 1024)],
        [0, source.subarray(0, 4096)],
        // Longer than the staging buffer, from an odd offset of its source.
        [1024 * 1024, source.subarray(7, 7 + 2 * 1024 * 1024 + 4096)],
        // Not on a page boundary at either end: partial pages through the cache, whole ones around it.
        [3 * 1024 * 1024 + 8192 + 777, source.subarray(5, 5 + 512 * 1024 + 1000)],
        [3 * 1024 * 1024 + 600 * 1024 + 3, source.subarray(1, 5001)],
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
      if (onExt4(dir)) expect(wentDirect).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes memory as page-aligned only where it is', () => {
    const aligned = pageAlignedBuffer(100 * 1024);
    expect(aligned.length).toBe(128 * 1024);
    expect(isPageAligned(aligned)).toBe(true);
    expect(isPageAligned(aligned.subarray(8192, 9000))).toBe(true);
    expect(isPageAligned(aligned.subarray(512))).toBe(false);
    // Ordinary memory may happen to sit on a page boundary; nothing vouches for it.
    expect(isPageAligned(Buffer.allocUnsafeSlow(64 * 1024))).toBe(false);
  });

  it('goes direct only for writes with enough whole pages', () => {
    expect(goesDirect(0, 64 * 1024)).toBe(true);
    expect(goesDirect(1, 64 * 1024)).toBe(false);
    expect(goesDirect(4095, 64 * 1024 + 1)).toBe(true);
    expect(goesDirect(0, 64 * 1024 - 1)).toBe(false);
  });

  it('reopens a descriptor as the same file, even after its path names another', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-image-'));
    try {
      const created = path.join(dir, 'restored');
      const elsewhere = path.join(dir, 'elsewhere');
      fs.writeFileSync(elsewhere, 'not to be written');
      const fd = fs.openSync(created, 'wx');
      // The restore target is swapped for a symlink after the file was created.
      fs.renameSync(created, path.join(dir, 'moved'));
      fs.symlinkSync(elsewhere, created);
      const data = randomBytes(300 * 1024);
      const direct = new DirectDescriptor(fd);
      try {
        writeAround(fd, direct, data, 1000);
        if (onExt4(dir)) expect(direct.isDirect).toBe(true);
      } finally {
        direct.close();
        fs.closeSync(fd);
      }
      expect(fs.readFileSync(path.join(dir, 'moved')).equals(Buffer.concat([Buffer.alloc(1000), data]))).toBe(true);
      expect(fs.readFileSync(elsewhere, 'utf8')).toBe('not to be written');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
