/**
 * @module Reading blobs out of sealed packs, around the page cache. Packs are
 * written around it (pack-file.ts), so a restore reads them from disk; read
 * through the cache, each byte was first copied into freshly allocated pages
 * that nothing reads again, and on this VM that cost ~4 s of kernel time per
 * GiB (260–340 MB/s for a buffered sequential read, 1.4 GB/s direct). So a
 * span is read page-aligned into reused aligned memory and copied into its
 * pieces. A filesystem that refuses direct I/O is read through the cache,
 * into the pieces directly.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { DIRECT_ALIGN, pageAlignedBuffer } from '@bulwark/proto/direct-io';

/** Aligned memory for one read: spans the restore asks for are at most 4 MiB and one blob's overhang; larger ones take several reads. */
const SCRATCH_BYTES = 8 * 1024 * 1024 + 64 * 1024;
/** Reads this small (a tree, a small file) take a small buffer: several are in flight at once (blob-reader.ts). */
const SMALL_SCRATCH_BYTES = 64 * 1024;
/**
 * Aligned buffers kept for reuse, per size: as many as one restore has reads
 * in flight (blob-reader.ts reads eight spans at once). With four kept, half
 * the reads of a restore made a WebAssembly memory of their own, and V8
 * counts each one's 8 MiB as external memory: 2.4 GB of it in a 2 GiB
 * restore set off a full collection every ~40 ms, a fifth of the gateway's
 * CPU. A span touches at most ~4 MiB of its buffer, so eight cost ~32 MiB.
 */
const SCRATCH_KEPT = 8;
const SMALL_SCRATCH_KEPT = 16;
const OPEN_FILES = 64;

interface OpenPack { handle: fsp.FileHandle; direct: boolean }
/** `users`: reads under way; a handle is closed only when it has none, so no read finds its handle closed under it. */
interface PackEntry { pack: Promise<OpenPack>; users: number; retired: boolean }

export class PackReader {
  /** Least recently used first. */
  private readonly open = new Map<string, PackEntry>();
  private readonly scratch: Buffer[] = [];
  private readonly smallScratch: Buffer[] = [];

  /** `direct` false: always through the page cache (tests of that path). */
  constructor(private readonly options: { direct?: boolean } = {}) {}

  /** Fill `buffers`, in order, from `file`'s bytes starting at `offset`. Several reads may be under way at once. */
  async readInto(file: string, offset: number, buffers: Buffer[]): Promise<void> {
    // A direct read refused (the filesystem wants larger alignment): the pack is reopened through the cache, and the
    // read made again; a read through the cache is never refused, so this ends.
    for (let direct = this.options.direct !== false; ; direct = false) {
      const entry = this.acquire(file, direct);
      let read: boolean;
      try {
        read = await this.readWith(await entry.pack, file, offset, buffers);
      } finally {
        this.release(entry);
      }
      if (read) return;
      this.retire(file, entry);
    }
  }

  /** False if the pack is open for direct I/O and the filesystem refused this read. */
  private async readWith(pack: OpenPack, file: string, offset: number, buffers: Buffer[]): Promise<boolean> {
    const length = buffers.reduce((n, b) => n + b.length, 0);
    if (!pack.direct) {
      const { bytesRead } = await pack.handle.readv(buffers, offset);
      if (bytesRead !== length) throw shortPack(file, offset);
      return true;
    }
    const start = offset - (offset % DIRECT_ALIGN);
    const end = Math.ceil((offset + length) / DIRECT_ALIGN) * DIRECT_ALIGN;
    const pieces = buffers.filter((b) => b.length > 0);
    const small = end - start <= SMALL_SCRATCH_BYTES;
    const pool = small ? this.smallScratch : this.scratch;
    const scratch = pool.pop() ?? pageAlignedBuffer(small ? SMALL_SCRATCH_BYTES : SCRATCH_BYTES);
    try {
      let piece = 0;
      let into = 0;
      for (let chunk = start; chunk < end; chunk += scratch.length) {
        const chunkEnd = Math.min(end, chunk + scratch.length);
        let bytesRead: number;
        try {
          // The last page of a pack is partial: the read stops at the end of the file.
          ({ bytesRead } = await pack.handle.read(scratch, 0, chunkEnd - chunk, chunk));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EINVAL') return false;
          throw err;
        }
        const from = Math.max(offset, chunk);
        const to = Math.min(offset + length, chunkEnd);
        if (chunk + bytesRead < to) throw shortPack(file, offset);
        for (let at = from - chunk, left = to - from; left > 0;) {
          const b = pieces[piece];
          const n = Math.min(left, b.length - into);
          scratch.copy(b, into, at, at + n);
          at += n;
          into += n;
          left -= n;
          if (into === b.length) { piece++; into = 0; }
        }
      }
      return true;
    } finally {
      if (pool.length < (small ? SMALL_SCRATCH_KEPT : SCRATCH_KEPT)) pool.push(scratch);
    }
  }

  /** Whether reads of `file` go around the page cache. */
  async readsDirect(file: string): Promise<boolean> {
    const entry = this.acquire(file);
    try {
      return (await entry.pack).direct;
    } finally {
      this.release(entry);
    }
  }

  /** The pack's open handle, or a new one (`direct`: around the page cache where the filesystem takes it). */
  private acquire(file: string, direct = this.options.direct !== false): PackEntry {
    let entry = this.open.get(file);
    if (entry) {
      this.open.delete(file);
    } else {
      entry = { pack: openPack(file, direct), users: 0, retired: false };
      const failed = entry;
      entry.pack.catch(() => { if (this.open.get(file) === failed) this.open.delete(file); });
      this.evictIdle(OPEN_FILES - 1);
    }
    this.open.set(file, entry);
    entry.users++;
    return entry;
  }

  private release(entry: PackEntry): void {
    if (--entry.users === 0 && entry.retired) closeEntry(entry);
  }

  /** Take `entry` out of use: closed now if idle, else when its last read ends. */
  private retire(file: string, entry: PackEntry): void {
    if (this.open.get(file) === entry) this.open.delete(file);
    if (entry.retired) return;
    entry.retired = true;
    if (entry.users === 0) closeEntry(entry);
  }

  /** Close idle handles, least recently used first, until at most `keep` are open (busy ones stay). */
  private evictIdle(keep: number): void {
    for (const [file, entry] of this.open) {
      if (this.open.size <= keep) return;
      if (entry.users === 0) this.retire(file, entry);
    }
  }

  close(): void {
    for (const [file, entry] of [...this.open]) this.retire(file, entry);
  }
}

function closeEntry(entry: PackEntry): void {
  entry.pack.then((p) => p.handle.close()).catch(() => undefined);
}

async function openPack(file: string, direct: boolean): Promise<OpenPack> {
  if (direct && fs.constants.O_DIRECT !== undefined) {
    try {
      return { handle: await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT), direct: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
  return { handle: await fsp.open(file, 'r'), direct: false };
}

function shortPack(file: string, offset: number): Error {
  return new Error(`pack ${file} is shorter than its index says (blobs at ${offset})`);
}
