/**
 * @module Binary websocket messages sent as one socket write. ws writes a
 * message as two buffers, its header and the payload, corked into one
 * writev, and Node's TLS socket copies a writev's buffers into one freshly
 * allocated buffer before it encrypts: every byte of a backup (agent) or a
 * restore (gateway) was copied once more, into memory faulted in anew (a
 * twentieth of the agent's CPU in a 2 GiB volume backup). A payload made by
 * `allocMessage` has room in front of it for the header, so header and
 * payload leave as one buffer and are encrypted where they lie.
 *
 * Node also merges chunks that wait in a socket's buffer into one writev,
 * so the writer hands the socket one message at a time, in order, the next
 * once the last is written; small messages go through it too, or they would
 * wait beside a large one. What ws writes by itself (pongs, a close) is
 * written at once: close only once the writer is idle.
 */

/** The largest websocket frame header: 2 bytes, a 64-bit length, a 4-byte mask key (RFC 6455 §5.2). */
export const MESSAGE_HEADROOM = 14;

const withHeadroom = new WeakSet<ArrayBufferLike>();

/** `bytes` of memory with MESSAGE_HEADROOM free bytes in front, for `WholeMessageWriter`. */
export function allocMessage(bytes: number): Buffer {
  const whole = Buffer.allocUnsafeSlow(MESSAGE_HEADROOM + bytes);
  withHeadroom.add(whole.buffer);
  return whole.subarray(MESSAGE_HEADROOM);
}

/** Whether `payload` starts MESSAGE_HEADROOM bytes into memory from allocMessage. */
export function hasHeadroom(payload: Uint8Array): boolean {
  return payload.byteOffset === MESSAGE_HEADROOM && withHeadroom.has(payload.buffer);
}

/** Where encoded messages go, and come back once written. */
export interface MessageBuffers { take(bytes: number): Buffer; give(message: Buffer): void }

/**
 * Reused message buffers of one size, each with its headroom; larger
 * messages (a single big blob) get a buffer of their own. Memory faulted in
 * once instead of for every message.
 */
export class MessagePool implements MessageBuffers {
  private readonly free: Buffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();
  constructor(private readonly capacity: number, private readonly keep: number) {}

  take(bytes: number): Buffer {
    if (bytes > this.capacity) return allocMessage(bytes);
    let buffer = this.free.pop();
    if (!buffer) { buffer = allocMessage(this.capacity); this.mine.add(buffer.buffer); }
    return buffer.subarray(0, bytes);
  }

  /** Hand back what take() gave once nothing reads or writes it; anything else is ignored. */
  give(message: Buffer): void {
    if (!this.mine.has(message.buffer) || this.free.length >= this.keep) return;
    this.free.push(Buffer.from(message.buffer, MESSAGE_HEADROOM, this.capacity));
  }
}

/** What the writer needs of a ws WebSocket. */
export interface MessageSocket {
  readonly readyState: number;
  readonly OPEN: number;
  send(data: Buffer, cb?: (err?: Error) => void): void;
}

/** What the writer needs of the TLS (or TCP) socket under it. */
export interface ByteStream {
  write(chunk: Uint8Array, cb?: (err?: Error | null) => void): boolean;
}

/** Writes a binary message's frame header into the headroom before `payload`; returns the whole frame. */
export function frameInPlace(payload: Buffer, masked: boolean): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const headerBytes = 2 + lengthBytes + (masked ? 4 : 0);
  const frame = Buffer.from(payload.buffer, payload.byteOffset - headerBytes, headerBytes + length);
  frame[0] = 0x82; // FIN, binary
  frame[1] = (masked ? 0x80 : 0) | (lengthBytes === 0 ? length : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) frame.writeUInt16BE(length, 2);
  else if (lengthBytes === 8) frame.writeBigUInt64BE(BigInt(length), 2);
  // A client's mask key is all zeros: the payload goes as it is (see the agent's link).
  if (masked) frame.fill(0, 2 + lengthBytes, headerBytes);
  return frame;
}

/** Messages without headroom (small ones, which ws frames) wait for their write only past this much unsent. */
const SMALL_MESSAGE_HIGH_WATER_BYTES = 16 * 1024 * 1024;

interface Queued { payload: Buffer; written?: () => void; resolve(): void; reject(err: Error): void }

export class WholeMessageWriter {
  /** Messages not yet handed to the socket, in order. */
  private readonly queue: Queued[] = [];
  private writing = false;
  private unsentBytes = 0;
  /** When the last message with headroom has left: the next one waits for it. */
  private lastWhole: Promise<void> = Promise.resolve();
  private idleWaiters: (() => void)[] = [];

  /** `masked`: this end is the client, whose frames carry a (zero) mask key. */
  constructor(private readonly ws: MessageSocket, private readonly socket: ByteStream, private readonly masked: boolean) {}

  /**
   * Sends `payload` as one binary message, after every message sent before
   * it. One with headroom resolves once the one with headroom before it has
   * left (so at most one waits; rejects if that one failed); one without
   * resolves at once unless much is unsent. `written` runs once this
   * message's bytes are no longer needed, whether it went out or not.
   */
  send(payload: Buffer, written?: () => void): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) { written?.(); return Promise.reject(new Error('connection closed')); }
    let entry!: Queued;
    const left = new Promise<void>((resolve, reject) => { entry = { payload, written, resolve, reject }; });
    left.catch(() => undefined);
    this.queue.push(entry);
    this.unsentBytes += payload.length;
    this.pump();
    if (!hasHeadroom(payload)) return this.unsentBytes > SMALL_MESSAGE_HIGH_WATER_BYTES ? left : Promise.resolve();
    const previous = this.lastWhole;
    this.lastWhole = left;
    return previous;
  }

  /** Resolves once every message sent so far has been written (or failed). */
  idle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * One write at a time, the next once the last is done: chunks that wait
   * in a socket's buffer are merged into a writev, which copies them all.
   */
  private pump(): void {
    if (this.writing) return;
    if (this.queue.length > 0 && this.ws.readyState !== this.ws.OPEN) {
      // Nothing more can leave: what waits fails, in order.
      for (let entry; (entry = this.queue.shift());) this.finish(entry, new Error('connection closed'));
    }
    const entry = this.queue.shift();
    if (!entry) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    this.writing = true;
    const done = (err?: Error | null) => { this.writing = false; this.finish(entry, err); this.pump(); };
    if (hasHeadroom(entry.payload)) this.socket.write(frameInPlace(entry.payload, this.masked), done);
    else this.ws.send(entry.payload, done);
  }

  private finish(entry: Queued, err?: Error | null): void {
    this.unsentBytes -= entry.payload.length;
    entry.written?.();
    if (err) entry.reject(err); else entry.resolve();
  }
}
