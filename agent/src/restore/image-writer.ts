/**
 * @module Writing a restored image. Through direct I/O where the target takes
 * it: through the page cache, each restored GiB was first copied into
 * freshly allocated cache pages, then written back, while the writer threads
 * queued on the file's inode lock (a third of a volume restore's CPU here).
 * Direct I/O needs page-aligned memory, offsets and lengths, so ranges are
 * staged through a buffer in WebAssembly memory, which starts on a page
 * boundary; what does not start and end on a 4 KiB boundary (an image's last
 * partial block) goes through the page cache, and so does everything on a
 * target that refuses direct I/O.
 */
import fs from 'node:fs';

const ALIGN = 4096;
const STAGING_BYTES = 1024 * 1024;
/**
 * Shorter ranges go through the page cache: a direct write waits for the
 * device, and the ranges around an incremental's changed blocks are many and
 * short, where writeback coalesces them later.
 */
const DIRECT_MIN_BYTES = 64 * 1024;
const WASM_PAGE = 65536;

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

export class ImageWriter {
  private readonly buffered: number;
  private direct = -1;
  private staging: Buffer | undefined;

  constructor(path: string, options: { direct?: boolean } = {}) {
    this.buffered = fs.openSync(path, fs.constants.O_WRONLY);
    const flag = fs.constants.O_DIRECT;
    if (options.direct !== false && flag !== undefined) {
      try { this.direct = fs.openSync(path, fs.constants.O_WRONLY | flag); } catch { /* a filesystem without direct I/O: the page cache it is */ }
    }
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.direct >= 0; }

  write(data: Uint8Array, position: number): void {
    let done = 0;
    if (this.direct >= 0 && position % ALIGN === 0 && data.length >= DIRECT_MIN_BYTES) done = this.writeDirect(data.subarray(0, data.length - (data.length % ALIGN)), position);
    if (done < data.length) writeAll(this.buffered, data.subarray(done), position + done);
  }

  /** Writes aligned data around the page cache; returns how much, less than all if the target refused. */
  private writeDirect(data: Uint8Array, position: number): number {
    const staging = (this.staging ??= Buffer.from(new WebAssembly.Memory({ initial: STAGING_BYTES / WASM_PAGE }).buffer));
    for (let done = 0; done < data.length;) {
      const n = Math.min(staging.length, data.length - done);
      staging.set(data.subarray(done, done + n));
      try {
        writeAll(this.direct, staging.subarray(0, n), position + done);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        // The target takes O_DIRECT at open but not these writes (alignment it needs larger than 4 KiB).
        fs.closeSync(this.direct);
        this.direct = -1;
        return done;
      }
      done += n;
    }
    return data.length;
  }

  sync(): void { fs.fsyncSync(this.buffered); }

  close(): void {
    if (this.direct >= 0) fs.closeSync(this.direct);
    fs.closeSync(this.buffered);
  }
}
