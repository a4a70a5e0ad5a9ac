/**
 * @module Sending frames on a websocket with backpressure, and turning a
 * failure into the typed Error frame the peer expects before we hang up.
 */
import type { WebSocket } from 'ws';
import { encodeFrame, ErrorCode, WholeMessageWriter, type ByteStream, type Frame } from '@bulwark/proto';

export class PeerError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly requestId = 0, readonly fatal = false) {
    super(message);
  }
}

/** How long a failing connection's last frames may take to leave before it is closed anyway. */
const CLOSE_AFTER_MS = 5000;

export class FrameSender {
  private readonly writer: WholeMessageWriter;

  /** `socket`: the one ws writes to (the upgraded request's). */
  constructor(private readonly ws: WebSocket, socket: ByteStream) {
    this.writer = new WholeMessageWriter(ws, socket, false);
  }

  /** Frames leave in the order sent; a blob frame resolves once the one before it has left (WholeMessageWriter.send). */
  send(frame: Frame): Promise<void> {
    return this.sendEncoded(encodeFrame(frame));
  }

  /** An encoded frame; `written` runs once the socket no longer needs its bytes (also when it failed). */
  sendEncoded(bytes: Buffer, written?: () => void): Promise<void> {
    return this.writer.send(bytes, written);
  }

  sendError(code: ErrorCode, message: string, requestId = 0): void {
    this.writer.send(encodeFrame({ error: { code, message, requestId } })).catch(() => undefined);
  }

  /** Send a typed error and close: used for anything that ends the conversation. */
  fail(code: ErrorCode, message: string): void {
    this.sendError(code, message);
    this.close(1008, message.slice(0, 120));
  }

  /** Close once the frames sent before have left, but not later than CLOSE_AFTER_MS (a peer may stop reading). */
  close(code: number, reason: string): void {
    const close = () => this.ws.close(code, reason);
    const timer = setTimeout(close, CLOSE_AFTER_MS);
    timer.unref();
    void this.writer.idle().then(() => { clearTimeout(timer); close(); });
  }
}
