/**
 * @module A bare protocol client for adversarial tests: speaks frames (or
 * garbage) directly, with whatever certificate the test chooses.
 */
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, type Frame } from '@bulwark/proto';

export interface Identity { key?: string; cert?: string; ca: string }

export function agentIdentity(stateDir: string): Identity {
  return {
    key: fs.readFileSync(path.join(stateDir, 'tls/agent.key'), 'utf8'),
    cert: fs.readFileSync(path.join(stateDir, 'tls/agent.crt'), 'utf8'),
    ca: fs.readFileSync(path.join(stateDir, 'tls/ca.crt'), 'utf8'),
  };
}

export type Outcome = { kind: 'refused'; status: number; reason: string } | { kind: 'tls-error'; message: string } | { kind: 'open'; client: RawClient };

export class RawClient {
  readonly frames: Frame[] = [];
  closed?: { code: number; reason: string };
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => { try { this.frames.push(decodeFrame(d)); } catch { /* tests look at what decodes */ } this.notify(); });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this.notify(); });
    ws.on('error', () => this.notify());
  }

  private notify(): void { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }

  send(frame: Frame): void { this.ws.send(encodeFrame(frame)); }
  sendRaw(data: Buffer | string): void { this.ws.send(data); }

  async next(timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) throw new Error(`connection closed (${this.closed.code} ${this.closed.reason}) before a frame arrived`);
      if (Date.now() > deadline) throw new Error('no frame within the timeout');
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
    return this.frames.shift()!;
  }

  async waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
    return this.closed;
  }

  async hello(): Promise<Frame> {
    this.send({ hello: { protocolVersion: PROTOCOL_VERSION, agentVersion: 'test' } });
    return this.next();
  }

  close(): void { this.ws.terminate(); }
}

export function connectRaw(url: string, id: Identity, endpoint = '/v1/agent'): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url + endpoint, { key: id.key, cert: id.cert, ca: id.ca, minVersion: 'TLSv1.3', perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    ws.once('open', () => resolve({ kind: 'open', client: new RawClient(ws) }));
    ws.once('unexpected-response', (_req, res) => { resolve({ kind: 'refused', status: res.statusCode ?? 0, reason: String(res.headers['x-bulwark-error'] ?? '') }); ws.terminate(); });
    ws.once('error', (err) => resolve({ kind: 'tls-error', message: err.message }));
  });
}
