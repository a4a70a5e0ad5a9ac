/**
 * @module The files cache: what each file looked like (size, mtime, ctime,
 * inode) when the last point of a source set was committed, and its blob
 * ids. A file that still matches is not read again. The cache is only a
 * hint: the gateway checks every reference at commit, and a commit that
 * finds blobs missing makes the next try run without the cache.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BLOB_ID_BYTES } from '@bulwark/proto';
import { stagePrivate, type StagedFile } from '../state/state.js';

export interface CachedFile { size: number; mtimeNs: bigint; ctimeNs: bigint; ino: bigint; ids: Buffer[]; sizes: number[] }

/**
 * On disk (little-endian), in columns so that loading is a few bulk reads and
 * no per-field parsing: "BWFCACHE", u32 version 2, the point id (16 bytes),
 * u32 entries N, u32 trees T, u32 blobs B, u32 name bytes L; then T tree ids
 * (32 bytes each); N f64 sizes; N i64 mtimes (ns); N i64 ctimes (ns); N u64
 * inodes; N u32 blob counts; B blob ids (32 bytes each, file by file); B u32
 * plaintext sizes; the N names (the paths' raw bytes), each ended by a NUL,
 * which no path contains.
 */
const MAGIC = Buffer.from('BWFCACHE');
const VERSION = 2;
const HEADER_BYTES = 44;

export function sourceKey(kind: string, roots: string[]): string {
  return createHash('sha256').update(kind).update('\0').update([...roots].sort().join('\0')).digest('hex').slice(0, 32);
}

export class FilesCache {
  private readonly previous = new Map<string, CachedFile>();
  private readonly next = new Map<string, CachedFile>();
  private readonly previousTrees = new Set<string>();
  private readonly nextTrees = new Set<string>();
  previousPointId?: string;

  constructor(private readonly file: string) {}

  static load(cacheDir: string, key: string): FilesCache {
    const cache = new FilesCache(path.join(cacheDir, `${key}.cache`));
    // The JSON of earlier versions is not read: the one run after an upgrade reads every file, which is always correct.
    fs.rmSync(path.join(cacheDir, `${key}.json`), { force: true });
    let data: Buffer;
    try {
      data = fs.readFileSync(cache.file);
    } catch {
      return cache;
    }
    try {
      cache.parse(data);
    } catch {
      // Unreadable or cut short: start from nothing rather than trust part of it.
      cache.previous.clear();
      cache.previousTrees.clear();
      cache.previousPointId = undefined;
    }
    return cache;
  }

  private parse(data: Buffer): void {
    if (data.length < HEADER_BYTES || !data.subarray(0, 8).equals(MAGIC) || data.readUInt32LE(8) !== VERSION) throw new Error('not a files cache of this version');
    const [entries, trees, blobs, nameBytes] = [28, 32, 36, 40].map((at) => data.readUInt32LE(at));
    const sizesAt = HEADER_BYTES + BLOB_ID_BYTES * trees;
    const idsAt = sizesAt + 36 * entries;
    const namesAt = idsAt + (BLOB_ID_BYTES + 4) * blobs;
    if (namesAt + nameBytes !== data.length) throw new Error('files cache is cut short or too long');
    // Copied into aligned typed arrays: the columns sit at any offset in the file.
    const column = <T>(make: (b: ArrayBuffer) => T, at: number, bytes: number): T => make((data.buffer as ArrayBuffer).slice(data.byteOffset + at, data.byteOffset + at + bytes));
    const sizes = column((b) => new Float64Array(b), sizesAt, 8 * entries);
    const mtimes = column((b) => new BigInt64Array(b), sizesAt + 8 * entries, 8 * entries);
    const ctimes = column((b) => new BigInt64Array(b), sizesAt + 16 * entries, 8 * entries);
    const inodes = column((b) => new BigUint64Array(b), sizesAt + 24 * entries, 8 * entries);
    const counts = column((b) => new Uint32Array(b), sizesAt + 32 * entries, 4 * entries);
    const blobSizes = column((b) => new Uint32Array(b), idsAt + BLOB_ID_BYTES * blobs, 4 * blobs);
    const names = data.toString('latin1', namesAt, namesAt + nameBytes).split('\0');
    if (names.length !== entries + 1) throw new Error('files cache names do not match its entries');
    for (let t = 0; t < trees; t++) this.previousTrees.add(data.toString('hex', HEADER_BYTES + BLOB_ID_BYTES * t, HEADER_BYTES + BLOB_ID_BYTES * (t + 1)));
    let blob = 0;
    for (let e = 0; e < entries; e++) {
      const count = counts[e];
      if (blob + count > blobs) throw new Error('files cache blob counts exceed its blobs');
      const ids: Buffer[] = [];
      for (let i = 0; i < count; i++) ids.push(data.subarray(idsAt + BLOB_ID_BYTES * (blob + i), idsAt + BLOB_ID_BYTES * (blob + i + 1)));
      this.previous.set(names[e], { size: sizes[e], mtimeNs: mtimes[e], ctimeNs: ctimes[e], ino: inodes[e], ids, sizes: Array.from(blobSizes.subarray(blob, blob + count)) });
      blob += count;
    }
    this.previousPointId = data.toString('hex', 12, 28);
  }

  /** The cached blob ids if the file is unchanged since the last point. */
  lookup(key: string, st: fs.BigIntStats): CachedFile | undefined {
    const hit = this.previous.get(key);
    if (!hit) return undefined;
    if (hit.size !== Number(st.size) || hit.mtimeNs !== st.mtimeNs || hit.ctimeNs !== st.ctimeNs || hit.ino !== st.ino) return undefined;
    return hit;
  }

  remember(key: string, st: fs.BigIntStats, size: number, ids: Buffer[], sizes: number[]): void {
    this.next.set(key, { size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, ids, sizes });
  }

  /** Whether the last point stored this directory listing (the id is the hex blob id of its Tree). */
  knowsTree(idHex: string): boolean { return this.previousTrees.has(idHex); }

  rememberTree(idHex: string): void { this.nextTrees.add(idHex); }

  /** The cache for the point being committed, put in place once the gateway confirms it. */
  stage(pointId: string): StagedFile {
    const n = this.next.size;
    const files = [...this.next.values()];
    const blobs = files.reduce((sum, f) => sum + f.ids.length, 0);
    const names = Buffer.from([...this.next.keys()].map((k) => `${k}\0`).join(''), 'latin1');
    const out = Buffer.alloc(HEADER_BYTES + BLOB_ID_BYTES * this.nextTrees.size + 36 * n + (BLOB_ID_BYTES + 4) * blobs + names.length);
    MAGIC.copy(out, 0);
    out.writeUInt32LE(VERSION, 8);
    out.write(pointId, 12, 16, 'hex');
    [n, this.nextTrees.size, blobs, names.length].forEach((v, i) => out.writeUInt32LE(v, 28 + 4 * i));
    let at = HEADER_BYTES;
    for (const tree of this.nextTrees) at += out.write(tree, at, BLOB_ID_BYTES, 'hex');
    const put = (array: ArrayBufferView) => { out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), at); at += array.byteLength; };
    put(Float64Array.from(files, (f) => f.size));
    put(BigInt64Array.from(files, (f) => f.mtimeNs));
    put(BigInt64Array.from(files, (f) => f.ctimeNs));
    put(BigUint64Array.from(files, (f) => f.ino));
    put(Uint32Array.from(files, (f) => f.ids.length));
    for (const f of files) for (const id of f.ids) at += id.copy(out, at);
    put(Uint32Array.from(files.flatMap((f) => f.sizes)));
    names.copy(out, at);
    // Not fsynced: a cache lost to a crash makes the next run read everything again, which is always correct.
    return stagePrivate(this.file, [out], false);
  }
}
