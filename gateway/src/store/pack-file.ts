/**
 * @module Writing a pack file's bytes. A pack is written once, sequentially,
 * and fsynced before it is acknowledged; nothing reads it back soon. Through
 * the page cache its copy into fresh cache pages was the largest single cost
 * of the gateway's ingest here (a quarter of its CPU), so appends are staged
 * in page-aligned memory and written in whole stagings around the cache
 * (`@bulwark/proto/direct-io`); the last partial stretch at finish goes
 * through the page cache.
 */
import fs from 'node:fs';
import { DIRECT_ALIGN, DirectDescriptor, pageAlignedBuffer, writeAll } from '@bulwark/proto/direct-io';

export const STAGING_BYTES = 4 * 1024 * 1024;

/** Staging buffers outlive packs: a WebAssembly memory per pack would be address space per pack. */
const spare: Buffer[] = [];

export class PackFile {
  private readonly buffered: number;
  private readonly direct: DirectDescriptor;
  private staging: Buffer | undefined = spare.pop() ?? pageAlignedBuffer(STAGING_BYTES);
  private staged = 0;
  /** File offset of the staging buffer's first byte. */
  private flushed = 0;

  /** Creates `path` (it must not exist). */
  constructor(readonly path: string, options: { direct?: boolean } = {}) {
    this.buffered = fs.openSync(path, 'wx', 0o600);
    this.direct = new DirectDescriptor(path, options.direct !== false);
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.direct.isDirect; }

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

  /** Writes the first `bytes` staged bytes (a multiple of DIRECT_ALIGN unless it is the end) and moves the rest to the front. */
  private flush(bytes: number): void {
    const staging = this.staging!;
    const aligned = bytes - (bytes % DIRECT_ALIGN);
    const done = aligned > 0 && this.direct.write(staging.subarray(0, aligned), this.flushed) ? aligned : 0;
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

  private release(): void {
    this.direct.close();
    if (this.staging) spare.push(this.staging);
    this.staging = undefined;
  }
}
