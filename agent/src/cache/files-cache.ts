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
import { writePrivate } from '../state/state.js';

export interface CachedFile { size: number; mtimeNs: bigint; ctimeNs: bigint; ino: bigint; ids: Buffer[]; sizes: number[] }

interface CacheFile { version: 1; pointId: string; entries: Record<string, [number, string, string, string, string, number[]]>; trees?: string }

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
    const cache = new FilesCache(path.join(cacheDir, `${key}.json`));
    try {
      const parsed = JSON.parse(fs.readFileSync(cache.file, 'utf8')) as CacheFile;
      if (parsed.version !== 1) return cache;
      cache.previousPointId = parsed.pointId;
      for (const id of splitIds(parsed.trees ?? '')) cache.previousTrees.add(id.toString('hex'));
      for (const [name, [size, mtime, ctime, ino, ids, sizes]] of Object.entries(parsed.entries)) {
        cache.previous.set(name, { size, mtimeNs: BigInt(mtime), ctimeNs: BigInt(ctime), ino: BigInt(ino), ids: splitIds(ids), sizes });
      }
    } catch {
      // No cache or an unreadable one: every file is read, which is always correct.
    }
    return cache;
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

  save(pointId: string): void {
    const entries: CacheFile['entries'] = {};
    for (const [name, f] of this.next) entries[name] = [f.size, String(f.mtimeNs), String(f.ctimeNs), String(f.ino), Buffer.concat(f.ids).toString('hex'), f.sizes];
    writePrivate(this.file, JSON.stringify({ version: 1, pointId, entries, trees: [...this.nextTrees].join('') } satisfies CacheFile));
  }
}

function splitIds(hex: string): Buffer[] {
  const all = Buffer.from(hex, 'hex');
  const ids: Buffer[] = [];
  for (let i = 0; i + 32 <= all.length; i += 32) ids.push(all.subarray(i, i + 32));
  return ids;
}
