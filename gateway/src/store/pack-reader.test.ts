import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PackReader } from './pack-reader.js';

describe('pack reader', () => {
  it('fills the pieces with exactly the bytes at any offset, around the page cache or through it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-packreader-'));
    try {
      for (const direct of [true, false]) {
        // Not a whole number of pages, and larger than one read's aligned memory.
        const data = randomBytes(9 * 1024 * 1024 + 123);
        const file = path.join(dir, `${direct}.pack`);
        fs.writeFileSync(file, data);
        const reader = new PackReader({ direct });
        // ext4 takes direct I/O: the reader uses it.
        if (!direct) expect(await reader.readsDirect(file)).toBe(false);
        else if (fs.statfsSync(dir).type === 0xef53) expect(await reader.readsDirect(file)).toBe(true);
        const spans: [number, number[]][] = [
          [0, [1]], [1, [4095, 1]], [4095, [2, 8190]], [data.length - 1, [1]], [data.length - 5000, [10, 0, 4990]],
          [12345, [1024 * 1024, 3, 3 * 1024 * 1024]], [7, [8 * 1024 * 1024 + 50_000]], [100, [9 * 1024 * 1024]],
        ];
        for (const [offset, sizes] of spans) {
          const pieces = sizes.map((n) => Buffer.alloc(n, 0xee));
          await reader.readInto(file, offset, pieces);
          expect(Buffer.concat(pieces).equals(data.subarray(offset, offset + sizes.reduce((a, b) => a + b, 0))), `direct ${direct}, at ${offset}`).toBe(true);
        }
        await expect(reader.readInto(file, data.length - 10, [Buffer.alloc(11)])).rejects.toThrow(/shorter than its index says/);
        reader.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves many reads at once, over more packs than it keeps open, each with its own bytes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-packreader-'));
    try {
      const packs = Array.from({ length: 150 }, (_, i) => {
        const file = path.join(dir, `${i}.pack`);
        const data = randomBytes(64 * 1024 + i);
        fs.writeFileSync(file, data);
        return { file, data };
      });
      const reader = new PackReader();
      // Three rounds over every pack, all under way together: reads share no scratch memory, and each new pack evicts an idle one.
      const reads = [0, 1, 2].flatMap((round) => packs.map(async ({ file, data }, i) => {
        const offset = (i * 37 + round * 4099) % (data.length - 5000);
        const piece = Buffer.alloc(5000);
        await reader.readInto(file, offset, [piece]);
        return piece.equals(data.subarray(offset, offset + 5000));
      }));
      expect((await Promise.all(reads)).every(Boolean)).toBe(true);
      reader.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reuses its aligned memory for a restore\'s eight reads at once, round after round', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-packreader-'));
    const Memory = WebAssembly.Memory;
    let made = 0;
    // Each aligned buffer is a WebAssembly memory, which V8 counts as external memory: a new one per read set off full collections.
    WebAssembly.Memory = class extends Memory { constructor(d: WebAssembly.MemoryDescriptor) { super(d); made++; } } as typeof WebAssembly.Memory;
    try {
      const file = path.join(dir, 'big.pack');
      const data = randomBytes(8 * 1024 * 1024);
      fs.writeFileSync(file, data);
      const reader = new PackReader();
      for (let round = 0; round < 5; round++) {
        const reads = Array.from({ length: 8 }, async (_, i) => {
          const piece = Buffer.alloc(1024 * 1024);
          await reader.readInto(file, i * 1024 * 1024, [piece]);
          return piece.equals(data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
        });
        expect((await Promise.all(reads)).every(Boolean)).toBe(true);
      }
      expect(made).toBeLessThanOrEqual(8);
      reader.close();
    } finally {
      WebAssembly.Memory = Memory;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
