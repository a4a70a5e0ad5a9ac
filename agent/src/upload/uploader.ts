/**
 * @module Ask-then-send upload with credit flow control and resume.
 *
 * Blobs handed to `add` are first asked about ("which of these do you
 * lack?"); only missing ones are sent, in frames under the size limit, while
 * the gateway's credit lasts. A sent blob stays here until the gateway
 * acknowledges it as durable, and is then released (SealedBlob.release), as
 * is one the gateway already has. If the connection drops, the uploader
 * reconnects, resumes the session and asks again about everything not yet
 * acknowledged — acknowledged blobs are never sent twice.
 */
import { GatewayError, type GatewayLink } from '../transport/link.js';
import type { SealedBlob } from '../pipeline/chunk-pool.js';
import type { Frame } from '@bulwark/proto';

const QUERY_IDS = 1024;
const MAX_QUERIES_IN_FLIGHT = 4;
const FRAME_PAYLOAD_BYTES = 4 * 1024 * 1024;
const BUFFERED_LIMIT_BYTES = 24 * 1024 * 1024;
const RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000, 3000, 5000, 5000, 5000, 10000, 10000, 10000];

export type Connector = () => Promise<GatewayLink>;

export interface UploadStats { blobsOffered: number; blobsSent: number; bytesSent: number; reconnects: number; envelopeBytesSent: number }

export class Uploader {
  private link!: GatewayLink;
  private sessionId?: Buffer;
  private credit = 0;
  private queryBatch: SealedBlob[] = [];
  private queryTimer?: NodeJS.Timeout;
  private readonly queries = new Map<number, SealedBlob[]>();
  private sendQueue: SealedBlob[] = [];
  private readonly unacked = new Map<string, SealedBlob>();
  /** Ids the gateway holds or that are somewhere in this pipeline. */
  private readonly seen = new Set<string>();
  private bufferedBytes = 0;
  private waiters: (() => void)[] = [];
  private failure?: Error;
  private reconnecting?: Promise<void>;
  private finished = false;
  private closing = false;
  private pumping = false;
  private sealRequested = false;
  private linkBytesBefore = 0;
  readonly stats: UploadStats = { blobsOffered: 0, blobsSent: 0, bytesSent: 0, reconnects: 0, envelopeBytesSent: 0 };

  /** `windowBytes`: blobs held here until acknowledged (or answered as present) before `add` waits. */
  constructor(private readonly connect: Connector, private readonly windowBytes = BUFFERED_LIMIT_BYTES) {}

  /** Connect and open the session. Blobs may be added meanwhile: they wait for the link. */
  async start(): Promise<void> {
    try {
      await this.attach(await this.connect());
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
    this.wake();
  }

  private async attach(link: GatewayLink): Promise<void> {
    this.link = link;
    link.on('ack', (ids: Buffer[]) => this.onAck(ids));
    link.on('credit', (bytes: number) => { this.credit += bytes; this.wake(); });
    link.on('closed', (err: Error) => this.onLinkClosed(link, err));
    const opened = (await link.exchange({ openSession: { resumeSessionId: this.sessionId } }, 'sessionOpened')).sessionOpened!;
    this.sessionId = opened.sessionId;
    this.credit = opened.creditBytes;
  }

  private onLinkClosed(link: GatewayLink, err: Error): void {
    this.stats.bytesSent = this.linkBytesBefore + link.bytesSent;
    if (link !== this.link || this.closing) return;
    if (err instanceof GatewayError && typeof err.code === 'number') { this.fail(err); return; }
    this.startReconnect();
  }

  private startReconnect(): Promise<void> {
    this.reconnecting ??= this.reconnect().finally(() => { this.reconnecting = undefined; this.wake(); });
    return this.reconnecting;
  }

  private async reconnect(): Promise<void> {
    const old = this.link;
    this.linkBytesBefore += old.bytesSent;
    let lastError: Error | undefined;
    for (const delay of RECONNECT_DELAYS_MS) {
      await new Promise((r) => setTimeout(r, delay));
      try {
        await this.attach(await this.connect());
        lastError = undefined;
        break;
      } catch (err) {
        lastError = err as Error;
        if (err instanceof GatewayError && err.code === 'REFUSED') break;
      }
    }
    if (lastError) { this.fail(new GatewayError('CONNECTION', `lost the gateway and could not reconnect: ${lastError.message}`)); return; }
    this.stats.reconnects++;
    // Everything whose fate is unknown is asked about again; only what the gateway lacks is re-sent.
    const again: SealedBlob[] = [];
    for (const blobs of this.queries.values()) again.push(...blobs);
    this.queries.clear();
    for (const blob of this.unacked.values()) again.push(blob);
    this.unacked.clear();
    this.queryBatch = again.concat(this.queryBatch);
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    // Whatever changed (answers, acks, a new link), partial query batches must not wait for more adds that may never come.
    void this.pump(true);
  }

  private waitForChange(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private onAck(ids: Buffer[]): void {
    for (const id of ids) {
      const key = id.toString('hex');
      const blob = this.unacked.get(key);
      if (blob) { this.unacked.delete(key); this.bufferedBytes -= blob.envelope.length; blob.release?.(); }
    }
    this.wake();
  }

  /** Offer blobs; resolves when there is room for more. */
  async add(blobs: SealedBlob[]): Promise<void> {
    if (this.failure) throw this.failure;
    for (const blob of blobs) {
      this.stats.blobsOffered++;
      const key = blob.id.toString('hex');
      if (this.seen.has(key)) { blob.release?.(); continue; }
      this.seen.add(key);
      this.queryBatch.push(blob);
      this.bufferedBytes += blob.envelope.length;
    }
    if (this.queryBatch.length >= QUERY_IDS) void this.pump();
    else this.queryTimer ??= setTimeout(() => { this.queryTimer = undefined; void this.pump(true); }, 2);
    while (this.bufferedBytes > this.windowBytes && !this.failure) {
      this.askToSealIfStalled();
      await this.waitForChange();
    }
    if (this.failure) throw this.failure;
  }

  /**
   * Everything is sent and the window is full of blobs waiting for their
   * pack to fill: a gateway whose packs are larger than this window would
   * never seal one. A Flush makes it seal now, so progress never depends on
   * the two sides' sizes agreeing.
   */
  private askToSealIfStalled(): void {
    if (this.sealRequested || !this.link?.isOpen || this.reconnecting || this.unacked.size === 0 || this.sendQueue.length > 0 || this.queries.size > 0) return;
    const link = this.link;
    this.sealRequested = true;
    // Give the gateway's own sealing a moment first: a full pack seals without being asked.
    setTimeout(() => {
      if (link !== this.link || this.sendQueue.length > 0 || this.unacked.size === 0) { this.sealRequested = false; return; }
      link.exchange({ flush: { requestId: 0 } }, 'ack').catch(() => undefined).finally(() => { this.sealRequested = false; this.wake(); });
    }, 50);
  }

  private async pump(drainQueries = false): Promise<void> {
    if (this.pumping || this.reconnecting || this.failure || !this.link) return;
    this.pumping = true;
    try {
      while (!this.failure && !this.reconnecting && this.link.isOpen) {
        if (this.queries.size < MAX_QUERIES_IN_FLIGHT && (this.queryBatch.length >= QUERY_IDS || ((drainQueries || this.finished) && this.queryBatch.length > 0))) {
          this.sendQuery(this.queryBatch.splice(0, QUERY_IDS));
          continue;
        }
        if (this.sendQueue.length > 0 && this.credit > 0) {
          await this.sendFrame();
          continue;
        }
        break;
      }
    } catch (err) {
      if (!(err instanceof GatewayError && err.code === 'CONNECTION')) this.fail(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  private sendQuery(blobs: SealedBlob[]): void {
    const requestId = this.link.newRequestId();
    this.queries.set(requestId, blobs);
    const link = this.link;
    const reply = link.awaitReply(requestId);
    link.send({ haveQuery: { requestId, blobIds: blobs.map((b) => b.id) } }).catch(() => undefined);
    reply.then((frame: Frame) => {
      const batch = this.queries.get(requestId);
      if (!batch || link !== this.link) return;
      this.queries.delete(requestId);
      const missing = new Set(frame.haveAnswer?.missing ?? []);
      batch.forEach((blob, i) => {
        if (missing.has(i)) this.sendQueue.push(blob);
        else { this.bufferedBytes -= blob.envelope.length; blob.release?.(); }
      });
      this.wake();
    }, (err: Error) => {
      if (err instanceof GatewayError && typeof err.code === 'number') this.fail(err);
    });
  }

  private async sendFrame(): Promise<void> {
    const blobs: SealedBlob[] = [];
    let bytes = 0;
    while (this.sendQueue.length > 0 && (blobs.length === 0 || bytes + this.sendQueue[0].envelope.length + 64 <= FRAME_PAYLOAD_BYTES)) {
      const blob = this.sendQueue.shift()!;
      blobs.push(blob);
      bytes += blob.envelope.length + 64;
    }
    for (const blob of blobs) this.unacked.set(blob.id.toString('hex'), blob);
    this.credit -= bytes;
    this.stats.blobsSent += blobs.length;
    for (const b of blobs) this.stats.envelopeBytesSent += b.envelope.length;
    await this.link.send({ blobData: { blobs } });
  }

  /** Send everything, then wait until the gateway has made all of it durable. */
  async finish(): Promise<void> {
    this.finished = true;
    for (;;) {
      if (this.failure) throw this.failure;
      void this.pump(true);
      const idle = this.queryBatch.length === 0 && this.queries.size === 0 && this.sendQueue.length === 0 && !this.reconnecting;
      if (idle) {
        try {
          await this.link.exchange({ flush: { requestId: 0 } }, 'ack');
        } catch (err) {
          if (err instanceof GatewayError && err.code === 'CONNECTION') { await this.startReconnect(); continue; }
          throw err;
        }
        if (this.unacked.size === 0 && this.queryBatch.length === 0 && this.sendQueue.length === 0) break;
        continue;
      }
      await Promise.race([this.waitForChange(), new Promise((r) => setTimeout(r, 200))]);
    }
    this.stats.bytesSent = this.linkBytesBefore + this.link.bytesSent;
  }

  /** A request on the current link that survives one reconnect. */
  async request<K extends keyof Frame>(build: () => Frame, expect: K): Promise<Frame> {
    try {
      return await this.link.exchange(build(), expect);
    } catch (err) {
      if (!(err instanceof GatewayError && err.code === 'CONNECTION')) throw err;
      await this.startReconnect();
      if (this.failure) throw this.failure;
      return this.link.exchange(build(), expect);
    }
  }

  totalBytesSent(): number { return this.linkBytesBefore + (this.link?.bytesSent ?? 0); }

  close(): void {
    this.closing = true;
    clearTimeout(this.queryTimer);
    this.link?.close();
  }
}
