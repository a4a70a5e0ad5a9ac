/**
 * @module ArrayBuffers that travel to a worker and come back to be reused. A
 * fresh buffer per batch left each restore worker holding batches worth of
 * its window until its collector ran (~60 MiB of a restore's peak here).
 * Sizes are rounded up to a quarter of a power of two (64 KiB at least), so
 * a returned buffer fits later batches of about its size and wastes < 25 %.
 */
const MIN_BYTES = 64 * 1024;

export function sizeClass(bytes: number): number {
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const step = 2 ** Math.floor(Math.log2(bytes)) / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private spareBytes = 0;

  /** Keeps at most `maxSpareBytes` of returned buffers; more are left to the collector. */
  constructor(private readonly maxSpareBytes: number) {}

  /** A buffer of at least `bytes` (its size class). */
  take(bytes: number): ArrayBuffer {
    const size = sizeClass(bytes);
    const buffer = this.spare.get(size)?.pop();
    if (!buffer) return new ArrayBuffer(size);
    this.spareBytes -= size;
    return buffer;
  }

  give(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (size !== sizeClass(size) || this.spareBytes + size > this.maxSpareBytes) return;
    let list = this.spare.get(size);
    if (!list) this.spare.set(size, (list = []));
    list.push(buffer);
    this.spareBytes += size;
  }
}
