/**
 * @module One authenticated agent on the wire: the conversation of
 * PROTOCOL.md from Hello to close. Frames are handled strictly in arrival
 * order; a frame that breaks the protocol ends the connection with a typed
 * error and writes nothing.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  ErrorCode, MAX_FRAME_BYTES, MessagePool, freeNow, PROTOCOL_VERSION, ProtocolError, decodeFrame, decodePointHeader, encodePointHeader, frameKind, merkleRoot,
  type ByteStream, type CommitPoint, type Frame, type PointSummary, type ReadBlobs, type RecoveryOpen,
} from '@bulwark/proto';
import type { Catalog, PointRow } from '../catalog/catalog.js';
import type { BlobStore } from '../store/pack-store.js';
import { sign, verify } from '../keys/signing.js';
import { openSealedMasterKey, WrongRestorePassword } from '../keys/recovery.js';
import type { Site } from '../site/site.js';
import { FrameSender, PeerError } from './wire.js';
import { PackSink } from './pack-sink.js';
import type { StoreGuard } from '../guard/store-guard.js';
import { readBlobFrames } from './blob-reader.js';
import type { Log } from '../log/log.js';
import type { WormServices } from '../retention/services.js';

const INITIAL_CREDIT_BYTES = 64 * 1024 * 1024;
const READ_FRAME_BYTES = 4 * 1024 * 1024;
const PAUSE_QUEUED_BYTES = 32 * 1024 * 1024;
const MAX_IDS_PER_QUERY = 65_536;

export interface GatewayContext { site: Site; catalog: Catalog; store: BlobStore; log: Log; worm?: WormServices; guard?: StoreGuard }

export class AgentConnection {
  private readonly sender: FrameSender;
  private helloDone = false;
  private readonly sink: PackSink;
  private queue: Promise<void> = Promise.resolve();
  private queuedBytes = 0;
  private paused = false;
  private closed = false;
  private deferredCredit = 0;
  /** Other agents whose points this connection may read (restore password proven). */
  private readonly grants = new Set<string>();
  /** Restore frames, reused once written: one leaving, one waiting, one being read, one handed over. */
  private readonly frames = new MessagePool(READ_FRAME_BYTES, 5);

  /** `socket`: the upgraded request's, under `ws`. */
  constructor(private readonly ws: WebSocket, socket: ByteStream, readonly agentId: string, private readonly ctx: GatewayContext) {
    this.sender = new FrameSender(ws, socket);
    this.sink = new PackSink(ctx.store, ctx.catalog, agentId, (ids) => this.onSealed(ids), ctx.worm ? () => ctx.worm!.retention.packRetention(agentId) : undefined, ctx.guard ? (sealed) => ctx.guard!.seal(sealed) : undefined);
    ws.on('message', (data: Buffer, isBinary: boolean) => this.enqueue(data, isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => ctx.log.warn(`agent ${agentId}: connection error: ${err.message}`));
  }

  private enqueue(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    const bytes = data.length;
    this.queuedBytes += bytes;
    if (this.queuedBytes > PAUSE_QUEUED_BYTES && !this.paused) { this.paused = true; this.ws.pause(); }
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      try {
        if (!isBinary) throw new ProtocolError(ErrorCode.MALFORMED_FRAME, 'text messages are not part of the protocol');
        const frame = decodeFrame(data);
        await this.handle(frame);
        // Appended, a blob frame's bytes are in the pack's staging memory and its ids copied: nothing reads it again.
        if (frame.blobData) freeNow(data);
      } catch (err) {
        this.onFailure(err);
      } finally {
        this.queuedBytes -= bytes;
        if (this.paused && this.queuedBytes < PAUSE_QUEUED_BYTES / 2) { this.paused = false; this.ws.resume(); }
      }
    });
  }

  private onFailure(err: unknown): void {
    if (this.ws.readyState !== this.ws.OPEN) return; // the peer left; nothing to answer
    if (err instanceof ProtocolError) {
      this.ctx.log.warn(`agent ${this.agentId}: ${err.message}; closing`);
      this.closed = true;
      this.sender.fail(err.code, err.message);
    } else if (err instanceof PeerError && !err.fatal) {
      this.sender.sendError(err.code, err.message, err.requestId);
    } else if (err instanceof PeerError) {
      this.closed = true;
      this.sender.fail(err.code, err.message);
    } else {
      this.ctx.log.error(`agent ${this.agentId}: ${(err as Error).stack ?? err}`);
      this.closed = true;
      this.sender.fail(ErrorCode.INTERNAL, `gateway error: ${(err as Error).message}`);
    }
  }

  private async onClose(): Promise<void> {
    this.closed = true;
    // Keep what arrived: it is complete blob by blob, and the agent will ask before re-sending.
    try { await this.sink.flush(); } catch (err) { this.ctx.log.error(`agent ${this.agentId}: ${(err as Error).message}`); }
  }

  private onSealed(ids: Buffer[]): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.sender.send({ ack: { blobIds: ids } }).catch(() => undefined);
    if (this.deferredCredit > 0 && this.sink.backlog <= 2) {
      const bytes = this.deferredCredit;
      this.deferredCredit = 0;
      this.sender.send({ credit: { bytes } }).catch(() => undefined);
    }
  }

  private async handle(frame: Frame): Promise<void> {
    const kind = frameKind(frame);
    if (!this.helloDone) {
      if (!frame.hello) throw new ProtocolError(ErrorCode.UNEXPECTED_FRAME, `expected hello first, got ${kind}`);
      if (frame.hello.protocolVersion !== PROTOCOL_VERSION) {
        throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `protocol version ${frame.hello.protocolVersion} is not supported; this gateway speaks version ${PROTOCOL_VERSION}`);
      }
      this.helloDone = true;
      const agent = await this.ctx.catalog.getAgent(this.agentId);
      await this.sender.send({ helloOk: { protocolVersion: PROTOCOL_VERSION, siteId: this.ctx.site.config.siteId, agentId: this.agentId, maxFrameBytes: MAX_FRAME_BYTES, needsKeyDeposit: !agent?.sealed_master_key } });
      return;
    }
    if (frame.depositKey) return this.ctx.catalog.depositKey(this.agentId, frame.depositKey.sealedMasterKey);
    if (frame.openSession) {
      // Packs of this session take the policy as it is now, even if `policy set` ran in another process.
      await this.ctx.worm?.retention.refresh();
      await this.sender.send({ sessionOpened: { sessionId: frame.openSession.resumeSessionId?.length ? frame.openSession.resumeSessionId : randomBytes(16), resumed: !!frame.openSession.resumeSessionId?.length, creditBytes: INITIAL_CREDIT_BYTES } });
      return;
    }
    if (frame.haveQuery) {
      const { requestId, blobIds = [] } = frame.haveQuery;
      if (blobIds.length > MAX_IDS_PER_QUERY) throw new PeerError(ErrorCode.BAD_REQUEST, `at most ${MAX_IDS_PER_QUERY} ids per query`, requestId);
      checkIds(blobIds, requestId);
      const missing = (await this.ctx.catalog.missingBlobs(this.agentId, blobIds)).filter((i) => !this.sink.has(blobIds[i]));
      await this.sender.send({ haveAnswer: { requestId, missing } });
      return;
    }
    if (frame.blobData) {
      const blobs = frame.blobData.blobs ?? [];
      checkIds(blobs.map((b) => b.id), 0);
      let bytes = 0;
      for (const b of blobs) {
        if (!b.envelope?.length) throw new ProtocolError(ErrorCode.BAD_REQUEST, 'a blob has no data');
        bytes += b.envelope.length;
      }
      await this.sink.append(blobs);
      if (this.sink.backlog > 2) this.deferredCredit += bytes;
      else await this.sender.send({ credit: { bytes } });
      return;
    }
    if (frame.flush) {
      await this.sink.flush();
      await this.sender.send({ ack: { flushRequestId: frame.flush.requestId } });
      return;
    }
    if (frame.commitPoint) return this.commit(frame.commitPoint);
    if (frame.listPoints) {
      const owner = this.readableAgent(frame.listPoints.agentId, frame.listPoints.requestId);
      const rows = await this.ctx.catalog.listPoints(owner);
      await this.sender.send({ pointList: { requestId: frame.listPoints.requestId, points: rows.map(summary) } });
      return;
    }
    if (frame.getPoint) {
      const { requestId, pointId } = frame.getPoint;
      const row = pointId?.length ? await this.ctx.catalog.getPoint(pointId) : undefined;
      if (!row) throw new PeerError(ErrorCode.NOT_FOUND, `no restore point ${pointId?.toString('hex') ?? ''}`, requestId);
      this.readableAgent(row.agent_id, requestId);
      await this.sender.send({ pointData: { requestId, summary: summary(row), refs: row.refs } });
      return;
    }
    if (frame.readBlobs) return this.read(frame.readBlobs);
    if (frame.recoveryOpen) return this.recover(frame.recoveryOpen);
    throw new ProtocolError(ErrorCode.UNEXPECTED_FRAME, `${kind} is not a request an agent may send`);
  }

  private readableAgent(agentId: string | undefined, requestId: number): string {
    if (!agentId || agentId === this.agentId) return this.agentId;
    if (this.grants.has(agentId)) return agentId;
    throw new PeerError(ErrorCode.FORBIDDEN, `points of agent ${agentId} belong to another host: restoring them here needs the restore password`, requestId);
  }

  private async commit(commit: CommitPoint): Promise<void> {
    const { requestId, header, refs, agentSignature } = commit;
    const fail = (code: ErrorCode, message: string) => new PeerError(code, message, requestId);
    if (!header || !header.pointId || header.pointId.length !== 16) throw fail(ErrorCode.BAD_REQUEST, 'commit needs a header with a 16-byte point id');
    if (header.agentId !== this.agentId) throw fail(ErrorCode.FORBIDDEN, `this connection is agent ${this.agentId}; it cannot commit a point for ${header.agentId}`);
    if (!refs || refs.length % 32 !== 0 || refs.length === 0) throw fail(ErrorCode.BAD_REQUEST, 'the reference list must be a non-empty list of 32-byte blob ids');
    for (let i = 32; i < refs.length; i += 32) {
      if (Buffer.compare(refs.subarray(i - 32, i), refs.subarray(i, i + 32)) >= 0) throw fail(ErrorCode.BAD_REQUEST, 'the reference list must be sorted and free of duplicates');
    }
    if (!header.merkleRoot || !merkleRoot(refs).equals(header.merkleRoot)) throw fail(ErrorCode.BAD_REQUEST, 'the Merkle root does not match the reference list');
    if (header.blobCount !== refs.length / 32) throw fail(ErrorCode.BAD_REQUEST, 'blob count does not match the reference list');
    const agent = await this.ctx.catalog.getAgent(this.agentId);
    const headerBytes = encodePointHeader(header);
    if (!agent || !verify(headerBytes, agentSignature ?? Buffer.alloc(0), agent.sign_public_key)) throw fail(ErrorCode.FORBIDDEN, 'the point is not signed by this agent\'s key');
    await this.sink.flush();
    const gatewaySignature = sign(Buffer.concat([headerBytes, agentSignature]), this.ctx.site.signing);
    const row: PointRow = {
      id: header.pointId, agent_id: this.agentId, created_ms: header.createdUnixMs, committed_ms: Date.now(), header: headerBytes,
      agent_signature: agentSignature, gateway_signature: gatewaySignature, refs, state: 'ok',
    };
    const retention = this.ctx.worm?.retention;
    const result = await this.ctx.catalog.commitPoint(row, retention ? () => retention.pointRetention(this.agentId, row.committed_ms) : undefined);
    if (result.conflict) throw fail(ErrorCode.CONFLICT, `a restore point with id ${header.pointId.toString('hex')} already exists`);
    if (result.missing > 0) throw fail(ErrorCode.CONFLICT, `${result.missing} referenced blobs are not stored; send them and commit again`);
    this.ctx.log.info(`agent ${this.agentId}: committed point ${header.pointId.toString('hex')} (${header.blobCount} blobs, ${header.logicalBytes} bytes)`);
    await this.sender.send({ pointCommitted: { requestId, pointId: header.pointId, gatewaySignature } });
    this.ctx.worm?.verifier?.afterCommit(header.pointId);
  }

  private async read(request: ReadBlobs): Promise<void> {
    const { requestId, blobIds = [] } = request;
    const owner = this.readableAgent(request.agentId, requestId);
    if (blobIds.length > MAX_IDS_PER_QUERY) throw new PeerError(ErrorCode.BAD_REQUEST, `at most ${MAX_IDS_PER_QUERY} ids per read`, requestId);
    checkIds(blobIds, requestId);
    this.ctx.worm?.verifier?.restoreReading();
    const found = await this.ctx.catalog.locateBlobs(owner, blobIds);
    const missing: number[] = [];
    const wanted = blobIds.map((id, index) => ({ index, location: found.get(id.toString('hex')) }));
    wanted.forEach((w) => { if (!w.location) missing.push(w.index); });
    const located = wanted.filter((w) => w.location).sort((a, b) => a.location!.pack_seq - b.location!.pack_seq || a.location!.offset - b.location!.offset);
    for await (const frame of readBlobFrames(this.ctx.store, requestId, located.map((w) => w.location!), READ_FRAME_BYTES, this.frames)) {
      await this.sender.sendEncoded(frame, () => this.frames.give(frame));
    }
    await this.sender.send({ readDone: { requestId, missing } });
  }

  private async recover(request: RecoveryOpen): Promise<void> {
    const { requestId, sourceAgentId, restorePassword } = request;
    const source = await this.ctx.catalog.getAgent(sourceAgentId);
    if (!source?.sealed_master_key) throw new PeerError(ErrorCode.NOT_FOUND, `agent ${sourceAgentId} is unknown or has deposited no key`, requestId);
    let masterKey: Buffer;
    try {
      masterKey = openSealedMasterKey(this.ctx.site.recovery, restorePassword, source.sealed_master_key);
    } catch (err) {
      this.ctx.log.warn(`agent ${this.agentId}: recovery of ${sourceAgentId} refused: ${(err as Error).message}`);
      if (err instanceof WrongRestorePassword) throw new PeerError(ErrorCode.FORBIDDEN, err.message, requestId);
      throw err;
    }
    this.grants.add(sourceAgentId);
    this.ctx.log.info(`agent ${this.agentId}: restore password accepted; may read points of ${sourceAgentId}`);
    await this.sender.send({ recoveryGrant: { requestId, sourceAgentId, masterKey, signPublicKey: source.sign_public_key } });
  }
}

function checkIds(ids: Buffer[], requestId: number): void {
  for (const id of ids) if (!id || id.length !== 32) throw new PeerError(ErrorCode.BAD_REQUEST, 'blob ids are 32 bytes', requestId, true);
}

function summary(row: Omit<PointRow, 'refs'>): PointSummary {
  return { header: decodePointHeader(row.header), agentSignature: row.agent_signature, gatewaySignature: row.gateway_signature, state: row.state };
}
