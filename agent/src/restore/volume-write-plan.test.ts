import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { VolumeMap } from '@bulwark/proto';
import { volumeWritePlan, type VolumeWritePlan } from './volume-write-plan.js';

const MiB = 1024 * 1024;
const KiB = 1024;

/** Writes the image as the plan says, window by window, and checks it is the map's image with every mapped byte written once and nothing else. */
function expectPlanWritesImage(map: VolumeMap, plain: Buffer[], plan: VolumeWritePlan): void {
  const expected = Buffer.alloc(map.sizeBytes);
  const mapped = new Uint8Array(map.sizeBytes);
  for (const e of map.extents) { plain[e.blobIndex!].copy(expected, e.offset, e.blobOffset!, e.blobOffset! + e.length); mapped.fill(1, e.offset, e.offset + e.length); }
  const written = Buffer.alloc(map.sizeBytes);
  const writes = new Uint8Array(map.sizeBytes);
  const put = (data: Buffer, at: number) => { data.copy(written, at); for (let i = at; i < at + data.length; i++) writes[i]++; };
  const opened = new Set<number>();
  const open = (b: number) => {
    if (opened.has(b)) return;
    opened.add(b);
    for (const p of plan.pieces.get(b) ?? []) put(plain[b].subarray(p.blobOffset, p.blobOffset + p.length), p.imageOffset);
  };
  for (const w of plan.windows) {
    const resident = Buffer.alloc(plan.residentBytes);
    for (const [b, { offset, bytes }] of w.resident) { plain[b].copy(resident, offset, 0, bytes); open(b); }
    for (const b of w.blobs) {
      open(b);
      for (const run of plan.runs.get(b) ?? []) {
        const data = Buffer.from(plain[b].subarray(run.blobOffset, run.blobOffset + run.length));
        for (const o of run.overlays) resident.copy(data, o.imageOffset - run.imageOffset, o.residentOffset, o.residentOffset + o.length);
        put(data, run.imageOffset);
      }
    }
  }
  expect([...plan.pieces.keys()].filter((b) => !opened.has(b))).toEqual([]);
  expect(written.equals(expected)).toBe(true);
  expect(Buffer.from(writes).equals(Buffer.from(mapped))).toBe(true);
}

describe('volume write plan', () => {
  it('writes each base blob in runs with the small changed ranges laid over, every byte once', () => {
    // Blobs 0-3: 1 MiB each at its own MiB; 4: changed blocks scattered over them; 5: one 1 MiB blob placed twice.
    const plain = [...Array.from({ length: 4 }, () => randomBytes(MiB)), randomBytes(64 * KiB), randomBytes(MiB)];
    const extents: VolumeMap['extents'] = [];
    const base = (b: number, from: number, to: number) => extents.push({ offset: b * MiB + from, length: to - from, blobIndex: b, blobOffset: from });
    const changed = (at: number, blobOffset: number) => extents.push({ offset: at, length: 4 * KiB, blobIndex: 4, blobOffset });
    base(0, 0, 100 * 4 * KiB); changed(100 * 4 * KiB, 0); base(0, 101 * 4 * KiB, MiB);
    base(1, 0, 8 * KiB); changed(MiB + 8 * KiB, 4 * KiB); changed(MiB + 12 * KiB, 8 * KiB); base(1, 16 * KiB, MiB);
    // Blob 2 is cut by a zero gap: two runs.
    base(2, 0, 256 * KiB); base(2, 512 * KiB, MiB - 4 * KiB); changed(3 * MiB - 4 * KiB, 12 * KiB);
    base(3, 0, MiB);
    extents.push({ offset: 4 * MiB, length: MiB, blobIndex: 5, blobOffset: 0 }, { offset: 6 * MiB, length: MiB, blobIndex: 5, blobOffset: 0 });
    const map: VolumeMap = { path: '/i', sizeBytes: 7 * MiB, blockSize: 4096, extents, merkleRoot: Buffer.alloc(32) };

    const plan = volumeWritePlan(map);
    expect(plan.windows).toHaveLength(1);
    expect([...plan.windows[0].resident.keys()]).toEqual([4]);
    expect(plan.runs.get(0)).toHaveLength(1);
    expect(plan.runs.get(1)).toHaveLength(1);
    expect(plan.runs.get(1)![0].overlays).toHaveLength(2);
    expect(plan.runs.get(2)).toHaveLength(2);
    // The changed block after blob 2's last range has no run to join: written by itself, as is blob 5 at its two places.
    expect(plan.pieces.get(4)).toEqual([{ imageOffset: 3 * MiB - 4 * KiB, blobOffset: 12 * KiB, length: 4 * KiB }]);
    expect(plan.pieces.get(5)).toHaveLength(2);
    // Reads are paced by how much of each blob the map uses: up to its last byte.
    expect([...plan.blobBytes].sort((a, b) => a[0] - b[0])).toEqual([[0, MiB], [1, MiB], [2, MiB - 4 * KiB], [3, MiB], [4, 16 * KiB], [5, MiB]]);
    expectPlanWritesImage(map, plain, plan);
  });

  it('runs a blob at one shift on its own, however short', () => {
    const plain = [randomBytes(MiB), randomBytes(16 * KiB), randomBytes(16 * KiB)];
    const extents: VolumeMap['extents'] = [
      { offset: 0, length: 4 * KiB, blobIndex: 1, blobOffset: 0 },
      { offset: 4 * KiB, length: 60 * KiB, blobIndex: 0, blobOffset: 4 * KiB },
      { offset: 64 * KiB, length: 8 * KiB, blobIndex: 2, blobOffset: 8 * KiB },
      { offset: 72 * KiB, length: MiB - 72 * KiB, blobIndex: 0, blobOffset: 72 * KiB },
    ];
    const map: VolumeMap = { path: '/i', sizeBytes: MiB, blockSize: 4096, extents: [...extents].reverse(), merkleRoot: Buffer.alloc(32) };
    const plan = volumeWritePlan(map, 4 * KiB);
    // Blobs 1 and 2 lie at one shift each: runs of their own, and blob 0 does not run across them.
    expect(plan.runs.get(0)).toHaveLength(2);
    expect(plan.runs.get(1)).toHaveLength(1);
    expect(plan.runs.get(2)).toHaveLength(1);
    expect(plan.pieces.size).toBe(0);
    expectPlanWritesImage(map, plain, plan);
  });

  it('goes in windows when the small blobs the runs need outgrow the limit, and writes the same image', () => {
    // Six 256 KiB blobs in a row, each with two changed blocks from its own small blob.
    const plain = [...Array.from({ length: 6 }, () => randomBytes(256 * KiB)), ...Array.from({ length: 6 }, () => randomBytes(8 * KiB))];
    const extents: VolumeMap['extents'] = [];
    for (let b = 0; b < 6; b++) {
      const at = b * 256 * KiB;
      extents.push(
        { offset: at, length: 128 * KiB, blobIndex: b, blobOffset: 0 },
        { offset: at + 128 * KiB, length: 4 * KiB, blobIndex: 6 + b, blobOffset: 4 * KiB },
        { offset: at + 132 * KiB, length: 60 * KiB, blobIndex: b, blobOffset: 132 * KiB },
        { offset: at + 192 * KiB, length: 4 * KiB, blobIndex: 6 + b, blobOffset: 0 },
        { offset: at + 196 * KiB, length: 60 * KiB, blobIndex: b, blobOffset: 196 * KiB },
      );
    }
    const map: VolumeMap = { path: '/i', sizeBytes: 6 * 256 * KiB, blockSize: 4096, extents, merkleRoot: Buffer.alloc(32) };
    const plan = volumeWritePlan(map, 16 * KiB);
    expect(plan.windows.map((w) => [...w.resident.keys()])).toEqual([[6, 7], [8, 9], [10, 11]]);
    expect(plan.residentBytes).toBeLessThanOrEqual(16 * KiB);
    expect([...plan.runs.values()].every((r) => r.length === 1 && r[0].overlays.length === 2)).toBe(true);
    expectPlanWritesImage(map, plain, plan);
  });

  it('writes a blob range by range when the small blobs its runs need are more than one window holds', () => {
    const plain = [randomBytes(MiB), randomBytes(12 * KiB), randomBytes(12 * KiB)];
    const extents: VolumeMap['extents'] = [
      { offset: 0, length: 256 * KiB, blobIndex: 0, blobOffset: 0 },
      { offset: 256 * KiB, length: 4 * KiB, blobIndex: 1, blobOffset: 8 * KiB },
      { offset: 260 * KiB, length: 124 * KiB, blobIndex: 0, blobOffset: 260 * KiB },
      { offset: 384 * KiB, length: 4 * KiB, blobIndex: 2, blobOffset: 8 * KiB },
      { offset: 388 * KiB, length: 124 * KiB, blobIndex: 0, blobOffset: 388 * KiB },
      { offset: 512 * KiB, length: 4 * KiB, blobIndex: 1, blobOffset: 0 },
      { offset: 516 * KiB, length: 124 * KiB, blobIndex: 0, blobOffset: 516 * KiB },
      { offset: 640 * KiB, length: 4 * KiB, blobIndex: 2, blobOffset: 0 },
      { offset: 644 * KiB, length: 380 * KiB, blobIndex: 0, blobOffset: 644 * KiB },
    ];
    const map: VolumeMap = { path: '/i', sizeBytes: MiB, blockSize: 4096, extents, merkleRoot: Buffer.alloc(32) };
    const plan = volumeWritePlan(map, 16 * KiB);
    expect(plan.runs.size).toBe(0);
    expect(plan.pieces.get(0)).toHaveLength(5);
    expectPlanWritesImage(map, plain, plan);
  });
});
