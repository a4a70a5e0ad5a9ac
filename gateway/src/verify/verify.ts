/**
 * @module Store verification (DESIGN.md §5). Metadata verify checks catalog
 * ↔ pack footers ↔ sizes ↔ seal state ↔ Merkle roots without reading blob
 * data; full verify also re-hashes every pack. Each finding names the
 * object and what is wrong with it.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { merkleRoot, decodePointHeader } from '@bulwark/proto';
import type { Catalog } from '../catalog/catalog.js';
import type { PackStore } from '../store/pack-store.js';
import { TRAILER_BYTES } from '../store/pack-format.js';

export interface VerifyFinding { object: string; problem: string }
export interface VerifyReport { packs: number; blobs: number; points: number; bytesHashed: number; seconds: number; findings: VerifyFinding[]; damagedPacks: string[]; brokenPoints: string[] }

const READ_BYTES = 8 * 1024 * 1024;

async function hashPack(path: string, size: number): Promise<Buffer> {
  const handle = await fsp.open(path, 'r');
  try {
    const hasher = new Blake3Hasher();
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    const end = size - TRAILER_BYTES;
    for (let at = 0; at < end;) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_BYTES, end - at), at);
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      at += bytesRead;
    }
    return hasher.digestBuffer();
  } finally {
    await handle.close();
  }
}

export async function verifyStore(catalog: Catalog, store: PackStore, options: { full: boolean }): Promise<VerifyReport> {
  const started = Date.now();
  const findings: VerifyFinding[] = [];
  const damaged = new Set<number>();
  const packs = await catalog.listPacks();
  let bytesHashed = 0;
  for (const pack of packs) {
    const hex = pack.hash.toString('hex');
    const path = store.packPath(pack.hash);
    const problem = (p: string) => { findings.push({ object: `pack ${hex}`, problem: p }); damaged.add(pack.seq); };
    let st: fs.Stats;
    try {
      st = await fsp.stat(path);
    } catch {
      problem('file is missing');
      continue;
    }
    if (st.size !== pack.size) { problem(`size is ${st.size}, catalog says ${pack.size}`); continue; }
    if ((st.mode & 0o222) !== 0) problem('is writable: a sealed pack must be read-only');
    let footer;
    try {
      footer = await store.readFooter(pack.hash);
    } catch (err) {
      problem(`footer unreadable: ${(err as Error).message}`);
      continue;
    }
    if (!footer.hash.equals(pack.hash)) { problem('footer hash differs from the catalog'); continue; }
    if (footer.entries.length !== pack.blob_count) problem(`footer lists ${footer.entries.length} blobs, catalog ${pack.blob_count}`);
    if (options.full) {
      const actual = await hashPack(path, st.size);
      bytesHashed += st.size;
      if (!actual.equals(pack.hash)) problem('content does not match its hash (bit rot or tampering)');
    }
  }
  // Every indexed blob must lie inside its pack as the footer says.
  const blobRows = await catalog.db.all<{ pack_seq: number; offset: number; length: number }>('SELECT pack_seq, offset, length FROM blobs');
  const packBySeq = new Map(packs.map((p) => [p.seq, p]));
  for (const b of blobRows) {
    const pack = packBySeq.get(b.pack_seq);
    if (!pack) { findings.push({ object: `blob in pack #${b.pack_seq}`, problem: 'its pack is not in the catalog' }); continue; }
    if (b.offset + b.length > pack.size - TRAILER_BYTES) { findings.push({ object: `blob at ${b.offset} in pack ${pack.hash.toString('hex')}`, problem: 'extends past the pack data' }); damaged.add(pack.seq); }
  }
  const brokenPoints: string[] = [];
  const points = await catalog.db.all<{ id: Buffer; header: Buffer; refs: Buffer; agent_id: string }>('SELECT id, header, refs, agent_id FROM points');
  for (const point of points) {
    const hex = point.id.toString('hex');
    const header = decodePointHeader(point.header);
    const reasons: string[] = [];
    if (!merkleRoot(point.refs).equals(header.merkleRoot)) reasons.push('reference list does not match its Merkle root');
    const ids: Buffer[] = [];
    for (let i = 0; i < point.refs.length; i += 32) ids.push(point.refs.subarray(i, i + 32));
    const located = await catalog.locateBlobs(point.agent_id, ids);
    let missing = 0;
    let inDamaged = 0;
    for (const id of ids) {
      const loc = located.get(id.toString('hex'));
      if (!loc) missing++;
      else if (damaged.has(loc.pack_seq)) inDamaged++;
    }
    if (missing) reasons.push(`${missing} referenced blob(s) are not in the catalog`);
    if (inDamaged) reasons.push(`${inDamaged} referenced blob(s) are in damaged packs`);
    if (reasons.length) { brokenPoints.push(hex); findings.push({ object: `point ${hex}`, problem: reasons.join('; ') }); }
  }
  return {
    packs: packs.length, blobs: blobRows.length, points: points.length, bytesHashed, seconds: (Date.now() - started) / 1000, findings,
    damagedPacks: [...damaged].map((s) => packBySeq.get(s)!.hash.toString('hex')), brokenPoints,
  };
}
