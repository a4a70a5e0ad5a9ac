/**
 * @module Writing, around the page cache, bytes that are written once and
 * not read back soon (the gateway's packs, a restored image): through the
 * cache, each byte is first copied into freshly allocated pages and written
 * back later. Direct I/O needs page-aligned memory, offsets and lengths:
 * callers stage their bytes in `pageAlignedBuffer` memory and send what is
 * not aligned through the page cache. A filesystem that refuses direct I/O,
 * at open or at the first write, gets page-cache writes from then on.
 */
import fs from 'node:fs';

export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 65536;

/** Memory known to start on a page boundary: what pageAlignedBuffer made. */
const alignedMemory = new WeakSet<ArrayBufferLike>();

/** At least `bytes` (rounded up to 64 KiB) starting on a page boundary, as a WebAssembly memory's buffer always does. */
export function pageAlignedBuffer(bytes: number): Buffer {
  const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / WASM_PAGE) }).buffer;
  alignedMemory.add(memory);
  return Buffer.from(memory);
}

/** Whether `data` starts on a page boundary of pageAlignedBuffer memory, so direct I/O can take it as it is. */
export function isPageAligned(data: Uint8Array): boolean {
  return data.byteOffset % DIRECT_ALIGN === 0 && alignedMemory.has(data.buffer);
}

export function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

export async function writeAllAsync(fd: number, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    done += await new Promise<number>((resolve, reject) => fs.write(fd, data, done, data.length - done, position + done, (err, n) => (err ? reject(err) : resolve(n))));
  }
}

/** A second descriptor of an open file, with O_DIRECT, while the target takes it. */
export class DirectDescriptor {
  private fd = -1;

  /**
   * `file`: a path, or an open descriptor, reopened through /proc/self/fd so
   * that it is the same file whatever its path now names. `enabled` false:
   * never direct (tests of the page-cache path).
   */
  constructor(file: string | number, enabled = true) {
    if (!enabled || fs.constants.O_DIRECT === undefined) return;
    const path = typeof file === 'number' ? `/proc/self/fd/${file}` : file;
    try { this.fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_DIRECT); } catch { /* no direct I/O here: the page cache it is */ }
  }

  /** Whether writes (so far) go around the page cache. */
  get isDirect(): boolean { return this.fd >= 0; }

  /**
   * Writes page-aligned `data` at `position` (both multiples of DIRECT_ALIGN)
   * around the page cache; false if the target refused, and from then on.
   */
  write(data: Uint8Array, position: number): boolean {
    if (this.fd < 0) return false;
    try {
      writeAll(this.fd, data, position);
      return true;
    } catch (err) {
      return this.refused(err);
    }
  }

  /** write(), on the thread pool: the caller must not touch `data` or close this until it settles. */
  async writeAsync(data: Uint8Array, position: number): Promise<boolean> {
    if (this.fd < 0) return false;
    try {
      await writeAllAsync(this.fd, data, position);
      return true;
    } catch (err) {
      return this.refused(err);
    }
  }

  private refused(err: unknown): false {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    // Opened with O_DIRECT but refuses these writes (it wants larger alignment).
    this.close();
    return false;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
