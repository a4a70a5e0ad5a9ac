/**
 * @module Writing a pack file's bytes. A pack is written once, sequentially,
 * and fsynced before it is acknowledged; nothing reads it back soon. Through
 * the page cache its copy into fresh cache pages was the largest single cost
 * of the gateway's ingest here (a quarter of its CPU), so appends are staged
 * in page-aligned memory and written in whole stagings around the cache
 * (`@bulwark/proto/direct-io`), on the thread pool; the last partial
 * stretch at finish goes through the page cache.
 */
import fs from 'node:fs';
import { DIRECT_ALIGN, DirectDescriptor, pageAlignedBuffer, writeAll, writeAllAsync } from '@bulwark/proto/direct-io';

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
  /**
   * The write of the last full staging buffer, on the thread pool: the event
   * loop goes on taking frames meanwhile (synchronous, these writes held the
   * gateway's only thread for ~1.5 s of a 2 GiB backup). One at a time; a
   * failed one stays failed, so the pack can never be finished without it.
   */
  private writing: Promise<void> = Promise.resolve();

  /** Creates `path` (it must not exist), its first bytes `start` (less than a staging buffer). */
  constructor(readonly path: string, options: { direct?: boolean; start?: Uint8Array } = {}) {
    this.buffered = fs.openSync(path, 'wx', 0o600);
    this.direct = new DirectDescriptor(path, options.direct !== false);
    if (options.start) { this.staging!.set(options.start); this.staged = options.start.length; }
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.direct.isDirect; }

  /** Stages `parts`; waits only when a full staging buffer must wait for the write before it. */
  async append(parts: Uint8Array[]): Promise<void> {
    for (const part of parts) {
      for (let at = 0; at < part.length;) {
        const staging = this.staging!;
        const n = Math.min(part.length - at, staging.length - this.staged);
        staging.set(part.subarray(at, at + n), this.staged);
        this.staged += n;
        at += n;
        if (this.staged === staging.length) await this.writeStaging();
      }
    }
  }

  /** Sends the full staging buffer to be written and goes on in another. */
  private async writeStaging(): Promise<void> {
    const full = this.staging!;
    const position = this.flushed;
    this.staging = undefined;
    this.staged = 0;
    this.flushed += full.length;
    await this.writing;
    this.staging = spare.pop() ?? pageAlignedBuffer(STAGING_BYTES);
    this.writing = this.writeOut(full, position).finally(() => spare.push(full));
    this.writing.catch(() => undefined); // seen by the next append or by finish; never unhandled
  }

  private async writeOut(data: Buffer, position: number): Promise<void> {
    if (!(await this.direct.writeAsync(data, position))) await writeAllAsync(this.buffered, data, position);
  }

  /** Everything appended on disk and fsynced; the file read-only and closed. */
  async finish(): Promise<void> {
    await this.writing;
    // The tail: its whole pages around the cache, the rest through it.
    const tail = this.staging!.subarray(0, this.staged);
    const aligned = tail.length - (tail.length % DIRECT_ALIGN);
    const done = aligned > 0 && this.direct.write(tail.subarray(0, aligned), this.flushed) ? aligned : 0;
    if (done < tail.length) writeAll(this.buffered, tail.subarray(done), this.flushed + done);
    this.release();
    await new Promise<void>((resolve, reject) => fs.fsync(this.buffered, (err) => (err ? reject(err) : resolve())));
    fs.fchmodSync(this.buffered, 0o444);
    fs.closeSync(this.buffered);
  }

  /** Closes without finishing (the caller removes the file), once no write is in flight: a descriptor closed under one could be reused and written. */
  abandon(): void {
    void this.writing.catch(() => undefined).then(() => {
      this.release();
      fs.closeSync(this.buffered);
    });
  }

  private release(): void {
    this.direct.close();
    if (this.staging) spare.push(this.staging);
    this.staging = undefined;
  }
}
