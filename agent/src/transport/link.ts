/**
 * @module The agent's connection to its gateway: a `wss://` websocket with
 * mutual TLS 1.3, pinned to the site CA. It matches answers to requests by
 * request id and hands acknowledgements, credit and read data to listeners.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import {
  ErrorCode, MessagePool, PROTOCOL_VERSION, WholeMessageWriter, decodeFrame, encodeFrame, frameKind, MAX_FRAME_BYTES,
  type Frame, type HelloOk,
} from '@bulwark/proto';

export const AGENT_VERSION = '0.1.0';

export class GatewayError extends Error {
  constructor(readonly code: ErrorCode | 'REFUSED' | 'CONNECTION', message: string) {
    super(message);
    this.name = 'GatewayError';
  }
}

export interface TlsIdentity { keyPem?: string; certPem?: string; caPem?: string }

interface Pending { resolve(f: Frame): void; reject(e: Error): void }

/**
 * RFC 6455 masking protects intermediaries from scripts in browsers that
 * could craft bytes on the wire; this client is no browser and runs inside
 * TLS, so an all-zero key (which ws sends without touching the payload)
 * saves a copy and an XOR of every byte uploaded.
 */
const zeroMask = (mask: Buffer): void => { mask.fill(0); };

export interface OpenSocket { ws: WebSocket; writer: WholeMessageWriter }

/** Open a websocket and wait until it is open, turning refusals into readable errors. */
export function openSocket(url: string, tls: TlsIdentity & { rejectUnauthorized?: boolean }): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      key: tls.keyPem, cert: tls.certPem, ca: tls.caPem, minVersion: 'TLSv1.3',
      rejectUnauthorized: tls.rejectUnauthorized ?? true, perMessageDeflate: false, maxPayload: 2 * MAX_FRAME_BYTES, handshakeTimeout: 15_000, generateMask: zeroMask,
    });
    let socket: Duplex | undefined;
    // The upgraded response's socket is the one ws writes its frames to.
    ws.once('upgrade', (res) => { socket = res.socket; });
    ws.once('open', () => resolve({ ws, writer: new WholeMessageWriter(ws, socket!, true) }));
    ws.once('unexpected-response', (_req, res) => {
      const reason = res.headers['x-bulwark-error'] ?? `HTTP ${res.statusCode}`;
      ws.terminate();
      reject(new GatewayError('REFUSED', `gateway refused the connection: ${reason}`));
    });
    ws.once('error', (err) => reject(new GatewayError('CONNECTION', `cannot reach the gateway at ${url}: ${err.message}`)));
  });
}

export class GatewayLink extends EventEmitter {
  private nextRequest = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError?: Error;
  bytesSent = 0;
  bytesReceived = 0;
  /** Blob frames, reused once written: one leaving, one waiting, one being filled. */
  private readonly frames = new MessagePool(MAX_FRAME_BYTES, 3);

  constructor(private readonly ws: WebSocket, private readonly writer: WholeMessageWriter) {
    super();
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', (code, reason) => this.onClose(new GatewayError('CONNECTION', `connection to the gateway closed (${code}${reason.length ? `: ${reason}` : ''})`)));
    ws.on('error', (err) => this.onClose(new GatewayError('CONNECTION', `connection to the gateway failed: ${err.message}`)));
  }

  static async connect(gatewayUrl: string, tls: TlsIdentity): Promise<{ link: GatewayLink; hello: HelloOk }> {
    const { ws, writer } = await openSocket(`${gatewayUrl.replace(/\/$/, '')}/v1/agent`, tls);
    const link = new GatewayLink(ws, writer);
    const answer = await link.exchange({ hello: { protocolVersion: PROTOCOL_VERSION, agentVersion: AGENT_VERSION } }, 'helloOk');
    return { link, hello: answer.helloOk! };
  }

  get isOpen(): boolean { return !this.closedError && this.ws.readyState === WebSocket.OPEN; }

  private onMessage(data: Buffer): void {
    this.bytesReceived += data.length;
    let frame: Frame;
    try {
      frame = decodeFrame(data);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    const kind = frameKind(frame);
    const body = frame[kind] as { requestId?: number; flushRequestId?: number } | undefined;
    if (frame.error) {
      const err = new GatewayError(frame.error.code, frame.error.message);
      const waiter = frame.error.requestId ? this.pending.get(frame.error.requestId) : undefined;
      if (waiter) { this.pending.delete(frame.error.requestId!); waiter.reject(err); } else this.fail(err);
      return;
    }
    if (frame.ack) {
      if (frame.ack.blobIds?.length) this.emit('ack', frame.ack.blobIds);
      if (frame.ack.flushRequestId) this.settle(frame.ack.flushRequestId, frame);
      return;
    }
    if (frame.credit) { this.emit('credit', frame.credit.bytes); return; }
    // The frame's own memory, when the message has it to itself: its blobs' envelopes are views into it, and a consumer may take it over.
    if (frame.blobData) { this.emit('blobData', frame.blobData, data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : undefined); return; }
    if (frame.helloOk) { this.settle(0, frame); return; }
    if (body?.requestId !== undefined || kind === 'sessionOpened') { this.settle(body?.requestId ?? 0, frame); return; }
    this.settle(0, frame);
  }

  private settle(requestId: number, frame: Frame): void {
    const waiter = this.pending.get(requestId);
    if (!waiter) return;
    this.pending.delete(requestId);
    waiter.resolve(frame);
  }

  private fail(err: Error): void {
    this.onClose(err);
    this.ws.terminate();
  }

  private onClose(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
    this.emit('closed', err);
  }

  /** Send a frame; resolves once the frame before it has left, so at most one waits behind the socket. */
  async send(frame: Frame): Promise<void> {
    if (this.closedError) throw this.closedError;
    const bytes = encodeFrame(frame, this.frames);
    this.bytesSent += bytes.length;
    try {
      await this.writer.send(bytes, () => this.frames.give(bytes));
    } catch (err) {
      throw this.closedError ?? new GatewayError('CONNECTION', `connection to the gateway failed: ${(err as Error).message}`);
    }
    if (this.closedError) throw this.closedError;
  }

  /** Send a request frame and wait for the answer of the expected kind. */
  async exchange<K extends keyof Frame>(frame: Frame, expect: K): Promise<Frame> {
    const kind = frameKind(frame);
    const body = frame[kind] as { requestId?: number; flushRequestId?: number };
    let requestId = 0;
    if (kind !== 'hello' && kind !== 'openSession') {
      requestId = this.nextRequest++;
      body.requestId = requestId;
    }
    const answer = new Promise<Frame>((resolve, reject) => this.pending.set(requestId, { resolve, reject }));
    await this.send(frame);
    const reply = await answer;
    if (!reply[expect]) throw new GatewayError(ErrorCode.UNEXPECTED_FRAME, `gateway answered ${frameKind(reply)} where ${String(expect)} was expected`);
    return reply;
  }

  newRequestId(): number { return this.nextRequest++; }

  /** Wait for the answer to a request whose id the caller already put in a frame it sent. */
  awaitReply(requestId: number): Promise<Frame> {
    return new Promise((resolve, reject) => this.pending.set(requestId, { resolve, reject }));
  }

  close(): void {
    this.onClose(new GatewayError('CONNECTION', 'closed by the agent'));
    this.ws.close(1000);
  }

  /** Drop the connection abruptly (tests of resume use it). */
  terminate(): void { this.ws.terminate(); }
}
