import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import wabtInit from 'wabt';
import { FastCdc, gearTable, DEFAULT_CHUNKING } from './fastcdc.js';
import { GEAR_WASM } from './gear-wasm.js';

/** A chunker whose window holds all of `data`, cut to the end. */
function chunks(gear: Uint32Array, data: Buffer): Buffer[] {
  const cdc = new FastCdc(gear, DEFAULT_CHUNKING, data.length);
  data.copy(cdc.window);
  const out: Buffer[] = [];
  for (let pos = 0; pos < data.length;) {
    const n = cdc.cut(pos, data.length, true);
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

/** FastCDC as the paper writes it, in plain code: what the WebAssembly loop must agree with, cut for cut. */
function referenceCuts(gear: Uint32Array, data: Buffer): number[] {
  const { minSize, avgSize, maxSize } = DEFAULT_CHUNKING;
  const bits = Math.log2(avgSize);
  const mask = (n: number) => (0xffffffff << (32 - n)) >>> 0;
  const cuts: number[] = [];
  for (let start = 0; start < data.length;) {
    const length = Math.min(maxSize, data.length - start);
    let cut = length;
    let hash = 0;
    for (let i = minSize; i < length; i++) {
      hash = ((hash << 1) + gear[data[start + i]]) >>> 0;
      if ((hash & (i < avgSize ? mask(bits + 2) : mask(bits - 2))) === 0) { cut = i + 1; break; }
    }
    cuts.push(cut);
    start += cut;
  }
  return cuts;
}

describe('FastCDC', () => {
  const gear = gearTable(Buffer.alloc(32, 9));
  const data = randomBytes(24 * 1024 * 1024);

  it('runs the loop assembled from gear.wat', async () => {
    const wabt = await wabtInit();
    const module = wabt.parseWat('gear.wat', fs.readFileSync(new URL('./gear.wat', import.meta.url), 'utf8'));
    const bytes = Buffer.from(module.toBinary({}).buffer);
    module.destroy();
    expect(bytes.equals(GEAR_WASM), 'gear-wasm.ts is stale: run `node agent/scripts/gear-wasm.mjs`').toBe(true);
  });

  it('cuts where the reference algorithm cuts', () => {
    const runs = Buffer.concat([data.subarray(0, 6 << 20), Buffer.alloc(9 << 20, 0x41), data.subarray(0, 300_000)]);
    for (const input of [data, runs]) expect(chunks(gear, input).map((c) => c.length)).toEqual(referenceCuts(gear, input));
  });

  it('keeps chunk sizes within bounds and covers the input exactly', () => {
    const parts = chunks(gear, data);
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
    const before = new Set(chunks(gear, data).map((c) => c.toString('base64').slice(0, 40) + c.length));
    const edited = Buffer.concat([data.subarray(0, 1000), Buffer.from('inserted bytes'), data.subarray(1000)]);
    const after = chunks(gear, edited).map((c) => c.toString('base64').slice(0, 40) + c.length);
    const shared = after.filter((c) => before.has(c)).length;
    expect(shared).toBeGreaterThanOrEqual(after.length - 3);
  });

  it('asks for more data rather than cutting early when the input is not final, and stays inside its window', () => {
    const cdc = new FastCdc(gear);
    data.copy(cdc.window, 0, 0, cdc.window.length);
    expect(cdc.cut(0, DEFAULT_CHUNKING.minSize, false)).toBe(0);
    expect(cdc.cut(0, DEFAULT_CHUNKING.minSize, true)).toBe(DEFAULT_CHUNKING.minSize);
    expect(() => cdc.cut(0, cdc.window.length + 1, true)).toThrow(RangeError);
  });

  it('a different key gives different boundaries', () => {
    expect(chunks(gearTable(Buffer.alloc(32, 10)), data).map((c) => c.length)).not.toEqual(chunks(gear, data).map((c) => c.length));
  });
});
