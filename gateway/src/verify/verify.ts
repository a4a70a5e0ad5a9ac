/**
 * @module Store verification (DESIGN.md §5, FORMAT.md "Verification").
 * Metadata verify checks, without reading blob data: every pack's size,
 * seal state (read-only), footer (end marker, content hash, entry count and
 * an aggregate of its index) against the catalog's blob rows (aggregated in
 * SQLite), and every point's reference list against its Merkle root and the
 * blob index (one sorted merge-join per agent). Full verify also re-hashes
 * every pack, optionally throttled. Findings are applied: a damaged pack is
 * quarantined (state 'damaged', its blob rows removed so the next backup of
 * that source re-sends them), every point referencing it is marked broken,
 * and each is audited as an alert; a broken point whose references are all
 * healthy again is marked ok ("healed"). Nothing else stops.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { merkleRoot, decodePointHeader } from '@bulwark/proto';
import type { Catalog, PackRow } from '../catalog/catalog.js';
import type { PackStore } from '../store/pack-store.js';
import { INDEX_ENTRY_BYTES, PACK_END_MAGIC, TRAILER_BYTES, parseHeader } from '../store/pack-format.js';
import type { AuditLog } from '../audit/audit-log.js';

export interface VerifyFinding { object: string; problem: string }
export interface VerifyReport {
  mode: 'metadata' | 'full'; packs: number; blobs: number; points: number; bytesHashed: number; seconds: number;
  findings: VerifyFinding[]; damagedPacks: string[]; brokenPoints: string[]; healedPoints: string[]; quarantinedPacks: string[];
}
export interface VerifyOptions {
  full: boolean;
  /** Full verify read budget in MiB/s (0 or undefined: unthrottled). */
  maxMiBps?: number;
  /** Only the packs and the point of this restore point (the after-backup check). */
  pointId?: Buffer;
  /** Record findings in the catalog and the audit log (default true). */
  apply?: boolean;
  audit?: AuditLog;
  actor?: string;
  wallMs?: () => number;
  /** Awaited before each full-verify read: lets the caller hold the verify back (while restores read). */
  beforeRead?: () => Promise<void>;
}

const READ_BYTES = 8 * 1024 * 1024;
const TAIL_BYTES = 64 * 1024;
const HEAD_BYTES = 4096;
const MIX = 65521;

interface Aggregate { n: number; len: number; off: number; mix: number; end: number }

/** Footer of a pack reduced to what metadata verify compares; throws with the reason if the file is not a sealed pack. */
function scanFooter(fd: number, size: number, head: Buffer, tail: Buffer): { hash: Buffer; agg: Aggregate; agentId: string } {
  const headLength = fs.readSync(fd, head, 0, Math.min(head.length, size), 0);
  const { agentId, headerBytes } = parseHeader(head.subarray(0, headLength));
  if (size < TRAILER_BYTES + 4) throw new Error('too short for a footer');
  let tailLength = Math.min(tail.length, size);
  fs.readSync(fd, tail, 0, tailLength, size - tailLength);
  let t = tail.subarray(0, tailLength);
  if (!t.subarray(tailLength - 8).equals(PACK_END_MAGIC)) throw new Error('no end marker (truncated or unsealed)');
  const footerLength = t.readUInt32LE(tailLength - TRAILER_BYTES + 32);
  if (footerLength < 4 || footerLength + TRAILER_BYTES > size) throw new Error('footer length out of range');
  if (footerLength + TRAILER_BYTES > tailLength) {
    tailLength = footerLength + TRAILER_BYTES;
    t = Buffer.allocUnsafe(tailLength);
    fs.readSync(fd, t, 0, tailLength, size - tailLength);
  }
  const index = t.subarray(tailLength - TRAILER_BYTES - footerLength, tailLength - TRAILER_BYTES);
  const count = index.readUInt32LE(index.length - 4);
  if (count * INDEX_ENTRY_BYTES + 4 !== index.length) throw new Error('index size does not match its entry count');
  const dataEnd = size - TRAILER_BYTES - footerLength;
  const agg: Aggregate = { n: count, len: 0, off: 0, mix: 0, end: 0 };
  for (let i = 0; i < count; i++) {
    const at = i * INDEX_ENTRY_BYTES + 32;
    const offset = index.readUInt32LE(at) + index.readUInt32LE(at + 4) * 2 ** 32;
    const length = index.readUInt32LE(at + 8);
    if (offset < headerBytes || offset + length > dataEnd) throw new Error(`index entry ${i} points outside the data`);
    agg.len += length; agg.off += offset; agg.mix += (offset % MIX) * (length % MIX);
    if (offset + length > agg.end) agg.end = offset + length;
  }
  return { hash: Buffer.from(t.subarray(tailLength - TRAILER_BYTES, tailLength - TRAILER_BYTES + 32)), agg, agentId };
}

class Throttle {
  private readonly started = process.hrtime.bigint();
  private bytes = 0;
  constructor(private readonly mibps: number, private readonly beforeRead?: () => Promise<void>) {}
  async take(n: number): Promise<void> {
    await this.beforeRead?.();
    if (!this.mibps) return;
    this.bytes += n;
    const dueMs = (this.bytes / (this.mibps * 1048576)) * 1000;
    const elapsedMs = Number(process.hrtime.bigint() - this.started) / 1e6;
    if (dueMs > elapsedMs + 1) await new Promise((r) => setTimeout(r, dueMs - elapsedMs));
  }
}

/** BLAKE3 of [0, end) with two buffers: the next read is in flight while the current one is hashed. */
async function hashRange(path: string, end: number, buffers: Buffer[], throttle: Throttle): Promise<Buffer> {
  await throttle.take(0);
  const handle = await fsp.open(path, 'r');
  try {
    const hasher = new Blake3Hasher();
    let at = 0;
    let which = 0;
    let pending = end > 0 ? handle.read(buffers[0], 0, Math.min(READ_BYTES, end), 0) : undefined;
    while (pending) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = buffers[which];
      at += bytesRead;
      which ^= 1;
      pending = at < end ? handle.read(buffers[which], 0, Math.min(READ_BYTES, end - at), at) : undefined;
      hasher.update(current.subarray(0, bytesRead));
      await throttle.take(bytesRead);
    }
    return hasher.digestBuffer();
  } finally {
    await handle.close();
  }
}

export async function verifyStore(catalog: Catalog, store: PackStore, options: VerifyOptions): Promise<VerifyReport> {
  const started = process.hrtime.bigint();
  const wallMs = options.wallMs ?? Date.now;
  const db = catalog.db;
  const findings: VerifyFinding[] = [];
  const damage = new Map<number, string>();
  const mode = options.full ? 'full' : 'metadata';

  // Scope: the whole store, or one point and the packs it uses.
  type PointScan = { id: Buffer; agent_id: string; header: Buffer; refs: Buffer; state: string };
  const points: PointScan[] = options.pointId
    ? await db.all<PointScan>('SELECT id, agent_id, header, refs, state FROM points WHERE id = ?', [options.pointId])
    : await db.all<PointScan>('SELECT id, agent_id, header, refs, state FROM points ORDER BY agent_id');
  const indexes = new Map<string, Awaited<ReturnType<Catalog['blobIndex']>>>();
  const indexOf = async (agentId: string) => {
    let index = indexes.get(agentId);
    if (!index) { index = await catalog.blobIndex(agentId); indexes.set(agentId, index); }
    return index;
  };
  let packs: PackRow[];
  if (options.pointId) {
    const seqs = new Set<number>();
    for (const p of points) (await indexOf(p.agent_id)).join(p.refs, (s) => seqs.add(s));
    packs = seqs.size ? await db.all<PackRow>(`SELECT * FROM packs WHERE seq IN (${[...seqs].join(',')})`) : [];
  } else {
    packs = await db.all<PackRow>('SELECT * FROM packs WHERE state != \'deleted\' ORDER BY seq');
  }
  const aggregates = new Map<number, Aggregate>();
  const aggSql = `SELECT pack_seq, count(*) AS n, total(length) AS len, total(offset) AS off, total((offset % ${MIX}) * (length % ${MIX})) AS mix, max(offset + length) AS e FROM blobs`;
  const aggRows = options.pointId
    ? (packs.length ? await db.all<{ pack_seq: number; n: number; len: number; off: number; mix: number; e: number }>(`${aggSql} WHERE pack_seq IN (${packs.map((p) => p.seq).join(',')}) GROUP BY pack_seq`) : [])
    : await db.all<{ pack_seq: number; n: number; len: number; off: number; mix: number; e: number }>(`${aggSql} GROUP BY pack_seq`);
  let blobCount = 0;
  for (const r of aggRows) { aggregates.set(r.pack_seq, { n: r.n, len: r.len, off: r.off, mix: r.mix, end: r.e }); blobCount += r.n; }

  const quarantined: string[] = [];
  const head = Buffer.allocUnsafe(HEAD_BYTES);
  const tail = Buffer.allocUnsafe(TAIL_BYTES);
  const buffers = options.full ? [Buffer.allocUnsafe(READ_BYTES), Buffer.allocUnsafe(READ_BYTES)] : [];
  const throttle = new Throttle(options.maxMiBps ?? 0, options.beforeRead);
  let bytesHashed = 0;
  let checked = 0;
  for (const pack of packs) {
    const hex = pack.hash.toString('hex');
    if (pack.state === 'damaged') { quarantined.push(hex); continue; }
    if (pack.state === 'deleted') continue;
    if (++checked % 256 === 0) await new Promise((r) => setImmediate(r)); // let ingest run
    const problem = (p: string) => { findings.push({ object: `pack ${hex}`, problem: p }); if (!damage.has(pack.seq)) damage.set(pack.seq, p); };
    const path = store.packPath(pack.hash);
    let fd: number;
    try { fd = fs.openSync(path, 'r'); } catch (err) { problem((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file is missing' : `cannot open: ${(err as Error).message}`); continue; }
    try {
      const st = fs.fstatSync(fd);
      if (st.size !== pack.size) { problem(`size is ${st.size} bytes, the catalog says ${pack.size} (truncated or replaced)`); continue; }
      if ((st.mode & 0o222) !== 0) findings.push({ object: `pack ${hex}`, problem: 'is writable: a sealed pack must be read-only' });
      let footer: ReturnType<typeof scanFooter>;
      try { footer = scanFooter(fd, st.size, head, tail); } catch (err) { problem(`footer unreadable: ${(err as Error).message}`); continue; }
      if (!footer.hash.equals(pack.hash)) { problem('footer content hash differs from the catalog'); continue; }
      if (footer.agentId !== pack.agent_id) { problem(`header names agent ${footer.agentId}, the catalog ${pack.agent_id}`); continue; }
      if (footer.agg.n !== pack.blob_count) { problem(`footer lists ${footer.agg.n} blobs, the catalog ${pack.blob_count}`); continue; }
      const rows = aggregates.get(pack.seq) ?? { n: 0, len: 0, off: 0, mix: 0, end: 0 };
      const same = rows.n === footer.agg.n && rows.len === footer.agg.len && rows.off === footer.agg.off && rows.mix === footer.agg.mix && rows.end === footer.agg.end;
      // Fewer rows than entries is legitimate when some blobs were indexed in an earlier pack first: compare exactly.
      if (!same) {
        const mismatch = await exactRowCheck(catalog, store, pack);
        if (mismatch) { problem(mismatch); continue; }
      }
      if (options.full) {
        const actual = await hashRange(path, st.size - TRAILER_BYTES, buffers, throttle);
        bytesHashed += st.size;
        if (!actual.equals(pack.hash)) { problem('content does not match its hash (bit rot or tampering)'); continue; }
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  // Points: Merkle root, count, and every reference in a healthy pack.
  const broken: { id: Buffer; hex: string; reason: string; was: string }[] = [];
  const healed: Buffer[] = [];
  const okIds: Buffer[] = [];
  for (const point of points) {
    const hex = point.id.toString('hex');
    const reasons: string[] = [];
    let header: ReturnType<typeof decodePointHeader> | undefined;
    try { header = decodePointHeader(point.header); } catch { reasons.push('header does not decode'); }
    if (point.refs.length % 32 !== 0) reasons.push('reference list is not a whole number of ids');
    else {
      if (header && (!header.merkleRoot || !merkleRoot(point.refs).equals(header.merkleRoot))) reasons.push('reference list does not match its Merkle root');
      if (header && header.blobCount !== point.refs.length / 32) reasons.push(`header says ${header.blobCount} blobs, the list has ${point.refs.length / 32}`);
      let inDamaged = 0;
      const missing = (await indexOf(point.agent_id)).join(point.refs, (seq) => { if (damage.has(seq)) inDamaged++; });
      if (missing) reasons.push(`${missing} referenced blob(s) are not stored`);
      if (inDamaged) reasons.push(`${inDamaged} referenced blob(s) are in damaged packs`);
    }
    if (reasons.length) {
      broken.push({ id: point.id, hex, reason: reasons.join('; '), was: point.state });
      findings.push({ object: `point ${hex}`, problem: `${point.state === 'broken' ? 'still broken' : 'broken'}: ${reasons.join('; ')}` });
    } else if (point.state === 'broken') healed.push(point.id);
    else okIds.push(point.id);
  }

  const report: VerifyReport = {
    mode, packs: packs.length, blobs: blobCount, points: points.length, bytesHashed, seconds: 0, findings,
    damagedPacks: [...damage.keys()].map((s) => packs.find((p) => p.seq === s)!.hash.toString('hex')),
    brokenPoints: broken.map((b) => b.hex), healedPoints: healed.map((h) => h.toString('hex')), quarantinedPacks: quarantined,
  };

  if (options.apply !== false) {
    const now = wallMs();
    await db.transaction(async () => {
      for (const [seq, reason] of damage) {
        await db.run('UPDATE packs SET state = \'damaged\', damage = ?, verified_ms = ? WHERE seq = ?', [reason, now, seq]);
        await db.run('DELETE FROM blobs WHERE pack_seq = ?', [seq]);
      }
      for (const b of broken) await db.run('UPDATE points SET state = \'broken\', broken_reason = ?, verified_ms = ? WHERE id = ?', [b.reason, now, b.id]);
      for (const id of healed) await db.run('UPDATE points SET state = \'ok\', broken_reason = NULL, verified_ms = ? WHERE id = ?', [now, id]);
      if (options.pointId) { for (const id of okIds) await db.run('UPDATE points SET verified_ms = ? WHERE id = ?', [now, id]); }
      else {
        await db.run('UPDATE points SET verified_ms = ? WHERE state = \'ok\'', [now]);
        await db.run('UPDATE packs SET verified_ms = ? WHERE state = \'sealed\'', [now]);
      }
    });
    const audit = options.audit;
    const actor = options.actor ?? 'verify';
    if (audit) {
      for (const [seq, reason] of damage) await audit.alert(actor, 'verify.pack-damaged', `pack ${packs.find((p) => p.seq === seq)!.hash.toString('hex')}`, { reason, effect: 'quarantined; its blobs will be re-sent by the next backup of the source' });
      for (const b of broken) if (b.was !== 'broken') await audit.alert(actor, 'verify.point-broken', `point ${b.hex}`, b.reason);
      for (const id of healed) await audit.append({ actor, action: 'verify.point-healed', object: `point ${id.toString('hex')}`, detail: 'every reference is in a healthy pack again' });
      if (!options.pointId || findings.length) {
        await audit.append({ level: findings.length ? 'warn' : 'info', actor, action: `verify.${mode}`, object: options.pointId ? `point ${options.pointId.toString('hex')}` : 'store', detail: { packs: packs.length, points: points.length, findings: findings.length } });
      }
    }
  }
  report.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return report;
}

/** Compare a pack's catalog rows with its footer entry by entry; returns the problem or undefined. */
async function exactRowCheck(catalog: Catalog, store: PackStore, pack: PackRow): Promise<string | undefined> {
  const footer = await store.readFooter(pack.hash);
  const entries = new Map(footer.entries.map((e) => [e.id.toString('hex'), e]));
  const rows = await catalog.db.all<{ id: Buffer; offset: number; length: number }>('SELECT id, offset, length FROM blobs WHERE pack_seq = ?', [pack.seq]);
  for (const r of rows) {
    const e = entries.get(r.id.toString('hex'));
    if (!e) return `catalog row for blob ${r.id.toString('hex')} names this pack, whose footer does not list it`;
    if (e.offset !== r.offset || e.length !== r.length) return `catalog row for blob ${r.id.toString('hex')} says offset ${r.offset} length ${r.length}, the footer ${e.offset}/${e.length}`;
    entries.delete(r.id.toString('hex'));
  }
  // What is left must be indexed in another pack (a second copy is dead weight).
  const left = [...entries.values()].map((e) => e.id);
  if (left.length) {
    const missing = await catalog.missingBlobs(pack.agent_id, left);
    if (missing.length) return `${missing.length} blob(s) in its footer have no catalog row anywhere`;
  }
  return undefined;
}
