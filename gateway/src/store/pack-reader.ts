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
/** Aligned buffers kept for reuse: one per read in flight, and WebAssembly memories are address space. */
const SCRATCH_KEPT = 4;
const OPEN_FILES = 64;

interface OpenPack { handle: fsp.FileHandle; direct: boolean }

export class PackReader {
  private readonly open = new Map<string, Promise<OpenPack>>();
  private readonly scratch: Buffer[] = [];

  /** `direct` false: always through the page cache (tests of that path). */
  constructor(private readonly options: { direct?: boolean } = {}) {}

  /** Fill `buffers`, in order, from `file`'s bytes starting at `offset`. */
  async readInto(file: string, offset: number, buffers: Buffer[]): Promise<void> {
    const pack = await this.handle(file);
    const length = buffers.reduce((n, b) => n + b.length, 0);
    if (!pack.direct) {
      const { bytesRead } = await pack.handle.readv(buffers, offset);
      if (bytesRead !== length) throw shortPack(file, offset);
      return;
    }
    const start = offset - (offset % DIRECT_ALIGN);
    const end = Math.ceil((offset + length) / DIRECT_ALIGN) * DIRECT_ALIGN;
    const pieces = buffers.filter((b) => b.length > 0);
    const scratch = this.scratch.pop() ?? pageAlignedBuffer(SCRATCH_BYTES);
    try {
      let piece = 0;
      let into = 0;
      for (let chunk = start; chunk < end; chunk += SCRATCH_BYTES) {
        const chunkEnd = Math.min(end, chunk + SCRATCH_BYTES);
        let bytesRead: number;
        try {
          // The last page of a pack is partial: the read stops at the end of the file.
          ({ bytesRead } = await pack.handle.read(scratch, 0, chunkEnd - chunk, chunk));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
          // Opened with O_DIRECT but refuses these reads (it wants larger alignment): the cache, from now on.
          this.open.delete(file);
          pack.handle.close().catch(() => undefined);
          await this.handle(file, false);
          return await this.readInto(file, offset, buffers);
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
    } finally {
      if (this.scratch.length < SCRATCH_KEPT) this.scratch.push(scratch);
    }
  }

  /** Whether reads of `file` go around the page cache. */
  async readsDirect(file: string): Promise<boolean> {
    return (await this.handle(file)).direct;
  }

  private handle(file: string, direct = this.options.direct !== false): Promise<OpenPack> {
    let pack = this.open.get(file);
    if (!pack) {
      if (this.open.size >= OPEN_FILES) this.close();
      pack = openPack(file, direct);
      pack.catch(() => this.open.delete(file));
      this.open.set(file, pack);
    }
    return pack;
  }

  close(): void {
    for (const pack of this.open.values()) pack.then((p) => p.handle.close()).catch(() => undefined);
    this.open.clear();
  }
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
