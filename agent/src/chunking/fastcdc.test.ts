import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FastCdc, gearTable, DEFAULT_CHUNKING } from './fastcdc.js';

function chunks(cdc: FastCdc, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0; pos < data.length;) {
    const n = cdc.cut(data, pos, data.length, true);
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

describe('FastCDC', () => {
  const cdc = new FastCdc(gearTable(Buffer.alloc(32, 9)));
  const data = randomBytes(24 * 1024 * 1024);

  it('keeps chunk sizes within bounds and covers the input exactly', () => {
    const parts = chunks(cdc, data);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    for (const p of parts.slice(0, -1)) {
      expect(p.length).toBeGreaterThanOrEqual(DEFAULT_CHUNKING.minSize);
      expect(p.length).toBeLessThanOrEqual(DEFAULT_CHUNKING.maxSize);
    }
    const average = data.length / parts.length;
    expect(average).toBeGreaterThan(DEFAULT_CHUNKING.avgSize / 2);
    expect(average).toBeLessThan(DEFAULT_CHUNKING.avgSize * 2);
  });

  it('an insertion near the start shifts nothing downstream', () => {
    const before = new Set(chunks(cdc, data).map((c) => c.toString('base64').slice(0, 40) + c.length));
    const edited = Buffer.concat([data.subarray(0, 1000), Buffer.from('inserted bytes'), data.subarray(1000)]);
    const after = chunks(cdc, edited).map((c) => c.toString('base64').slice(0, 40) + c.length);
    const shared = after.filter((c) => before.has(c)).length;
    expect(shared).toBeGreaterThanOrEqual(after.length - 3);
  });

  it('asks for more data rather than cutting early when the input is not final', () => {
    expect(cdc.cut(data, 0, DEFAULT_CHUNKING.minSize, false)).toBe(0);
  });

  it('a different key gives different boundaries', () => {
    const other = new FastCdc(gearTable(Buffer.alloc(32, 10)));
    expect(chunks(other, data).map((c) => c.length)).not.toEqual(chunks(cdc, data).map((c) => c.length));
  });
});
