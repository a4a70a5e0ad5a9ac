/**
 * @module Writing restored data. Around the page cache where the target
 * takes it (`@bulwark/proto/direct-io`): through it, every byte is copied
 * into freshly allocated pages (on the VMs measured here that cost more
 * kernel time than the rest of a restore), and the restore's writer threads
 * queued on the file's inode lock. Whole pages go as they are when they lie
 * on a page boundary in memory (what envelope.ts opens does), else staged
 * through a 1 MiB aligned buffer; the partial pages at either end of a
 * write and short writes go through the page cache.
 */
import fs from 'node:fs';
import { DIRECT_ALIGN, DirectDescriptor, isPageAligned, pageAlignedBuffer, writeAll } from '@bulwark/proto/direct-io';

const STAGING_BYTES = 1024 * 1024;
/**
 * Shorter runs go through the page cache: a direct write waits for the
 * device, and the ranges around an incremental's changed blocks (or the
 * files of a tree, most of them small) are many and short, where writeback
 * coalesces them later.
 */
const DIRECT_MIN_BYTES = 64 * 1024;

/** This thread's aligned staging memory: writes are synchronous, so one buffer serves every writer. */
let staging: Buffer | undefined;

/** The whole pages of a write of `length` bytes at `position`: [offset into the data, length]. */
function wholePages(position: number, length: number): [number, number] {
  const head = Math.min(length, (DIRECT_ALIGN - (position % DIRECT_ALIGN)) % DIRECT_ALIGN);
  return [head, length - head - ((length - head) % DIRECT_ALIGN)];
}

/** Whether a write of `length` bytes at `position` has enough whole pages to go around the page cache. */
export function goesDirect(position: number, length: number): boolean {
  return wholePages(position, length)[1] >= DIRECT_MIN_BYTES;
}

/**
 * Writes `data` at `position` (any offset): its whole pages through
 * `direct` when they are enough (`goesDirect`) and it takes them, everything
 * else (and all of it, if `direct` refuses) through the `buffered` descriptor.
 */
export function writeAround(buffered: number, direct: DirectDescriptor, data: Uint8Array, position: number): void {
  const [head, body] = wholePages(position, data.length);
  let done = 0;
  if (direct.isDirect && body >= DIRECT_MIN_BYTES) {
    if (head > 0) writeAll(buffered, data.subarray(0, head), position);
    done = head + writeStaged(direct, data.subarray(head, head + body), position + head);
  }
  if (done < data.length) writeAll(buffered, data.subarray(done), position + done);
}

/** Writes whole pages through `direct` (staged, unless they already lie on a page boundary); returns how much, less than all if the target refused. */
function writeStaged(direct: DirectDescriptor, data: Uint8Array, position: number): number {
  if (isPageAligned(data)) return direct.write(data, position) ? data.length : 0;
  staging ??= pageAlignedBuffer(STAGING_BYTES);
  for (let done = 0; done < data.length;) {
    const n = Math.min(staging.length, data.length - done);
    staging.set(data.subarray(done, done + n));
    if (!direct.write(staging.subarray(0, n), position + done)) return done;
    done += n;
  }
  return data.length;
}

/** A restored image: one file written by offset for the whole restore. */
export class ImageWriter {
  private readonly buffered: number;
  private readonly direct: DirectDescriptor;
  /** A direct write has gone through: until then none is sent to the thread pool, where a refusal would race the others. */
  private directProven = false;

  constructor(path: string, options: { direct?: boolean } = {}) {
    this.buffered = fs.openSync(path, fs.constants.O_WRONLY);
    this.direct = new DirectDescriptor(path, options.direct !== false);
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.direct.isDirect; }

  write(data: Uint8Array, position: number): void {
    writeAround(this.buffered, this.direct, data, position);
    this.directProven ||= this.direct.isDirect && goesDirect(position, data.length);
  }

  /**
   * write(), but a page-aligned write from a page boundary goes around the
   * cache on the thread pool, so this thread can open the next blob
   * meanwhile; `data` must stay untouched until it settles.
   */
  async writeAsync(data: Uint8Array, position: number): Promise<void> {
    const [head, body] = wholePages(position, data.length);
    if (!this.directProven || head > 0 || body < DIRECT_MIN_BYTES || !isPageAligned(data)) return this.write(data, position);
    if (!(await this.direct.writeAsync(data.subarray(0, body), position))) return this.write(data, position);
    if (body < data.length) writeAll(this.buffered, data.subarray(body), position + body);
  }

  sync(): void { fs.fsyncSync(this.buffered); }

  close(): void {
    this.direct.close();
    fs.closeSync(this.buffered);
  }
}
