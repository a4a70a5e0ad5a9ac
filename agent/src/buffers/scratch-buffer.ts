/**
 * @module A buffer a thread reuses for work it hands on or writes out at
 * once: it grows to the largest size asked for and is never freed, so a
 * backup's bytes do not each become garbage for the collector.
 */
import { pageAlignedBuffer } from '@bulwark/proto/direct-io';

export class ScratchBuffer {
  private buffer: Buffer = Buffer.alloc(0);

  /** `pageAligned`: the buffer starts on a page boundary, so what is opened into it can be written direct without a copy. */
  constructor(private readonly pageAligned = false) {}

  /** The first `bytes` bytes. Growing drops the old contents; the caller knows when that is safe. */
  take(bytes: number): Buffer {
    if (this.buffer.length < bytes) this.buffer = this.pageAligned ? pageAlignedBuffer(bytes) : Buffer.allocUnsafeSlow(bytes);
    return this.buffer.subarray(0, bytes);
  }
}
