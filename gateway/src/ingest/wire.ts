/**
 * @module Sending frames on a websocket with backpressure, and turning a
 * failure into the typed Error frame the peer expects before we hang up.
 */
import type { WebSocket } from 'ws';
import { encodeFrame, ErrorCode, type Frame } from '@bulwark/proto';

const HIGH_WATER_BYTES = 16 * 1024 * 1024;

export class PeerError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly requestId = 0, readonly fatal = false) {
    super(message);
  }
}

export class FrameSender {
  constructor(private readonly ws: WebSocket) {}

  /** Resolves once the socket's buffer has room again; never buffers without bound. */
  send(frame: Frame): Promise<void> {
    return this.sendEncoded(encodeFrame(frame));
  }

  /** An encoded frame; `written` runs once the socket no longer needs its bytes (also when it failed). */
  async sendEncoded(bytes: Buffer, written?: () => void): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) { written?.(); throw new Error('connection closed'); }
    this.ws.send(bytes, written && (() => written()));
    while (this.ws.bufferedAmount > HIGH_WATER_BYTES && this.ws.readyState === this.ws.OPEN) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  sendError(code: ErrorCode, message: string, requestId = 0): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeFrame({ error: { code, message, requestId } }));
  }

  /** Send a typed error and close: used for anything that ends the conversation. */
  fail(code: ErrorCode, message: string): void {
    this.sendError(code, message);
    this.ws.close(1008, message.slice(0, 120));
  }
}
