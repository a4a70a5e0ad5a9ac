/**
 * @module Writing a restored image. Around the page cache where the target
 * takes it (`@bulwark/proto/direct-io`): through it, the restore's writer
 * threads also queued on the file's inode lock (with the copies, a third of
 * a volume restore's CPU here). Ranges are staged through a 1 MiB aligned
 * buffer; what does not start and end on a 4 KiB boundary (an image's last
 * partial block) and short ranges go through the page cache.
 */
import fs from 'node:fs';
import { DIRECT_ALIGN, DirectDescriptor, pageAlignedBuffer, writeAll } from '@bulwark/proto/direct-io';

const STAGING_BYTES = 1024 * 1024;
/**
 * Shorter ranges go through the page cache: a direct write waits for the
 * device, and the ranges around an incremental's changed blocks are many and
 * short, where writeback coalesces them later.
 */
const DIRECT_MIN_BYTES = 64 * 1024;

export class ImageWriter {
  private readonly buffered: number;
  private readonly direct: DirectDescriptor;
  private staging: Buffer | undefined;

  constructor(path: string, options: { direct?: boolean } = {}) {
    this.buffered = fs.openSync(path, fs.constants.O_WRONLY);
    this.direct = new DirectDescriptor(path, options.direct !== false);
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.direct.isDirect; }

  write(data: Uint8Array, position: number): void {
    let done = 0;
    if (this.direct.isDirect && position % DIRECT_ALIGN === 0 && data.length >= DIRECT_MIN_BYTES) done = this.writeDirect(data.subarray(0, data.length - (data.length % DIRECT_ALIGN)), position);
    if (done < data.length) writeAll(this.buffered, data.subarray(done), position + done);
  }

  /** Writes aligned data around the page cache; returns how much, less than all if the target refused. */
  private writeDirect(data: Uint8Array, position: number): number {
    const staging = (this.staging ??= pageAlignedBuffer(STAGING_BYTES));
    for (let done = 0; done < data.length;) {
      const n = Math.min(staging.length, data.length - done);
      staging.set(data.subarray(done, done + n));
      if (!this.direct.write(staging.subarray(0, n), position + done)) return done;
      done += n;
    }
    return data.length;
  }

  sync(): void { fs.fsyncSync(this.buffered); }

  close(): void {
    this.direct.close();
    fs.closeSync(this.buffered);
  }
}
