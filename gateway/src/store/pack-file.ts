/**
 * @module Writing a pack file's bytes. A pack is written once, sequentially,
 * and fsynced before it is acknowledged; nothing reads it back soon. Through
 * the page cache, every stored byte was first copied into freshly allocated
 * cache pages, then written back: the largest single cost of the gateway's
 * ingest here (a quarter of its CPU). So appends are staged in page-aligned
 * memory and written in whole stagings with direct I/O; the last partial
 * stretch at finish goes through the page cache, and so does everything
 * where the filesystem refuses direct I/O.
 */
import fs from 'node:fs';

const ALIGN = 4096;
export const STAGING_BYTES = 4 * 1024 * 1024;

/** Staging buffers outlive packs: a WebAssembly memory (page-aligned by construction) per pack would be address space per pack. */
const spare: Buffer[] = [];
const takeStaging = () => spare.pop() ?? Buffer.from(new WebAssembly.Memory({ initial: STAGING_BYTES / 65536 }).buffer);

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

export class PackFile {
  private readonly buffered: number;
  private direct = -1;
  private staging: Buffer | undefined = takeStaging();
  private staged = 0;
  /** File offset of the staging buffer's first byte. */
  private flushed = 0;

  /** Creates `path` (it must not exist). */
  constructor(readonly path: string, options: { direct?: boolean } = {}) {
    this.buffered = fs.openSync(path, 'wx', 0o600);
    if (options.direct !== false && fs.constants.O_DIRECT !== undefined) {
      try { this.direct = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_DIRECT); } catch { /* no direct I/O here: the page cache it is */ }
    }
  }

  append(parts: Uint8Array[]): void {
    const staging = this.staging!;
    for (const part of parts) {
      for (let at = 0; at < part.length;) {
        const n = Math.min(part.length - at, staging.length - this.staged);
        staging.set(part.subarray(at, at + n), this.staged);
        this.staged += n;
        at += n;
        if (this.staged === staging.length) this.flush(staging.length);
      }
    }
  }

  /** Writes the first `bytes` staged bytes (a multiple of ALIGN unless it is the end) and moves the rest to the front. */
  private flush(bytes: number): void {
    const staging = this.staging!;
    const aligned = bytes - (bytes % ALIGN);
    let done = 0;
    if (this.direct >= 0 && aligned > 0) {
      try {
        writeAll(this.direct, staging.subarray(0, aligned), this.flushed);
        done = aligned;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        // Opened with O_DIRECT but refuses these writes (it wants larger alignment): the page cache from here on.
        fs.closeSync(this.direct);
        this.direct = -1;
      }
    }
    if (done < bytes) writeAll(this.buffered, staging.subarray(done, bytes), this.flushed + done);
    staging.copyWithin(0, bytes, this.staged);
    this.staged -= bytes;
    this.flushed += bytes;
  }

  /** Everything appended on disk and fsynced; the file read-only and closed. */
  async finish(): Promise<void> {
    this.flush(this.staged);
    this.release();
    await new Promise<void>((resolve, reject) => fs.fsync(this.buffered, (err) => (err ? reject(err) : resolve())));
    fs.fchmodSync(this.buffered, 0o444);
    fs.closeSync(this.buffered);
  }

  /** Closes without finishing (the caller removes the file). */
  abandon(): void {
    this.release();
    fs.closeSync(this.buffered);
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.direct >= 0; }

  private release(): void {
    if (this.direct >= 0) fs.closeSync(this.direct);
    this.direct = -1;
    if (this.staging) spare.push(this.staging);
    this.staging = undefined;
  }
}
