/**
 * @module Deterministic test data and tree comparison.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

/** xorshift128+ so every test run makes the same data from the same seed. */
export class Rng {
  private a: bigint;
  private b: bigint;
  constructor(seed: number) { this.a = BigInt(seed) | 1n; this.b = 0x9e3779b97f4a7c15n ^ BigInt(seed); for (let i = 0; i < 8; i++) this.next(); }
  next(): bigint {
    let s1 = this.a; const s0 = this.b;
    this.a = s0; s1 ^= (s1 << 23n) & 0xffffffffffffffffn; s1 ^= s1 >> 17n; s1 ^= s0; s1 ^= s0 >> 26n; this.b = s1;
    return (this.a + this.b) & 0xffffffffffffffffn;
  }
  int(max: number): number { return Number(this.next() % BigInt(max)); }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 8 <= n; i += 8) out.writeBigUInt64LE(this.next(), i);
    if (i < n) { const tail = Buffer.alloc(8); tail.writeBigUInt64LE(this.next()); tail.copy(out, i, 0, n - i); }
    return out;
  }
  /** Compressible text-like bytes. */
  text(n: number): Buffer {
    const words = ['backup', 'restore', 'ransom', 'gateway', 'agent', 'block', 'the', 'a', 'immutable', 'vault', 'point', 'chunk'];
    const parts: string[] = [];
    let len = 0;
    while (len < n) { const w = words[this.int(words.length)] + (this.int(10) === 0 ? '\n' : ' '); parts.push(w); len += w.length; }
    return Buffer.from(parts.join('')).subarray(0, n);
  }
}

export interface EntryDigest { type: string; mode: number; size: number; mtimeMs: number; hash?: string; target?: string }

/** Everything a restore must reproduce, keyed by relative path (names as raw bytes, hex). */
export function digestTree(root: string, withTimes = true): Map<string, EntryDigest> {
  const out = new Map<string, EntryDigest>();
  const walk = (dir: Buffer, rel: Buffer) => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[]) {
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const key = Buffer.concat([rel, Buffer.from('/'), name]);
      const st = fs.lstatSync(full);
      const entry: EntryDigest = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file', mode: st.mode & 0o7777, size: st.isFile() ? st.size : 0, mtimeMs: withTimes && !st.isDirectory() ? Math.floor(st.mtimeMs) : 0 };
      if (st.isFile()) entry.hash = createHash('sha256').update(fs.readFileSync(full)).digest('hex');
      if (st.isSymbolicLink()) entry.target = (fs.readlinkSync(full, { encoding: 'buffer' }) as Buffer).toString('hex');
      out.set(key.toString('hex'), entry);
      if (st.isDirectory()) walk(full, key);
    }
  };
  walk(Buffer.from(path.resolve(root)), Buffer.alloc(0));
  return out;
}
