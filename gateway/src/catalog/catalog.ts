/**
 * @module The gateway catalog: agents, enrollment tokens, sealed packs, the
 * blob index and restore points. Format in ../store/FORMAT.md ("Catalog").
 * A blob row exists only for a blob inside a sealed, fsynced pack, and a
 * point row only when every blob it references has a row: that is the
 * crash-safety invariant the rest of the gateway leans on.
 */
import { BLOB_ID_BYTES } from '@bulwark/proto';
import { Db } from './sqlite.js';
import { RetentionClock } from '../retention/clock.js';

/** Retain-until of rows written before retention existed: forever (only ever errs on keeping). */
export const NEVER = Number.MAX_SAFE_INTEGER;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  cert_fingerprint TEXT NOT NULL,
  cert_not_after_ms INTEGER NOT NULL,
  sign_public_key BLOB NOT NULL,
  sealed_master_key BLOB,
  enrolled_ms INTEGER NOT NULL,
  revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  secret_hash BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms INTEGER,
  used_by TEXT
);
CREATE TABLE IF NOT EXISTS packs (
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  agent_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  blob_count INTEGER NOT NULL,
  sealed_ms INTEGER NOT NULL,
  class TEXT NOT NULL DEFAULT 'unassigned',
  retain_until INTEGER NOT NULL DEFAULT ${NEVER},
  state TEXT NOT NULL DEFAULT 'sealed',
  damage TEXT,
  verified_ms INTEGER,
  deleted_ms INTEGER
);
CREATE TABLE IF NOT EXISTS blobs (
  agent_id TEXT NOT NULL,
  id BLOB NOT NULL,
  pack_seq INTEGER NOT NULL REFERENCES packs(seq),
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  PRIMARY KEY (agent_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS points (
  id BLOB PRIMARY KEY,
  agent_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  committed_ms INTEGER NOT NULL,
  header BLOB NOT NULL,
  agent_signature BLOB NOT NULL,
  gateway_signature BLOB NOT NULL,
  refs BLOB NOT NULL,
  state TEXT NOT NULL DEFAULT 'ok',
  retain_until INTEGER NOT NULL DEFAULT ${NEVER},
  generations TEXT NOT NULL DEFAULT '',
  verified_ms INTEGER,
  broken_reason TEXT
);
CREATE INDEX IF NOT EXISTS points_by_agent ON points(agent_id, created_ms);
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pack_seq, offset, length);
CREATE TABLE IF NOT EXISTS policies (
  agent_id TEXT PRIMARY KEY, keep_days INTEGER NOT NULL, daily INTEGER NOT NULL DEFAULT 0, weekly INTEGER NOT NULL DEFAULT 0,
  monthly INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS admins (name TEXT PRIMARY KEY, key_hash BLOB NOT NULL UNIQUE, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holds (
  id TEXT PRIMARY KEY, target_kind TEXT NOT NULL, target TEXT NOT NULL, reason TEXT NOT NULL,
  placed_by TEXT NOT NULL, placed_ms INTEGER NOT NULL, released_by TEXT, released_ms INTEGER
);
CREATE TABLE IF NOT EXISTS hold_releases (
  id TEXT PRIMARY KEY, hold_id TEXT NOT NULL REFERENCES holds(id), requested_by TEXT NOT NULL, requested_ms INTEGER NOT NULL,
  approved_by TEXT, approved_ms INTEGER
);
CREATE TABLE IF NOT EXISTS prune_requests (
  id TEXT PRIMARY KEY, requested_by TEXT NOT NULL, requested_ms INTEGER NOT NULL, plan TEXT NOT NULL,
  approved_by TEXT, approved_ms INTEGER, result TEXT
);
${RetentionClock.SCHEMA};
`;

/** Columns added after version 1 of the catalog; added to older catalogs at open. */
const ADDED_COLUMNS: Record<string, string[]> = {
  packs: ['class TEXT NOT NULL DEFAULT \'unassigned\'', `retain_until INTEGER NOT NULL DEFAULT ${NEVER}`, 'state TEXT NOT NULL DEFAULT \'sealed\'', 'damage TEXT', 'verified_ms INTEGER', 'deleted_ms INTEGER'],
  points: [`retain_until INTEGER NOT NULL DEFAULT ${NEVER}`, 'generations TEXT NOT NULL DEFAULT \'\'', 'verified_ms INTEGER', 'broken_reason TEXT'],
};

export interface AgentRow {
  id: string; hostname: string; cert_fingerprint: string; cert_not_after_ms: number;
  sign_public_key: Buffer; sealed_master_key: Buffer | null; enrolled_ms: number; revoked_ms: number | null;
}
export interface TokenRow { id: string; secret_hash: Buffer; created_ms: number; expires_ms: number; used_ms: number | null; used_by: string | null }
export interface PackRow {
  seq: number; hash: Buffer; agent_id: string; size: number; blob_count: number; sealed_ms: number;
  class: string; retain_until: number; state: 'sealed' | 'damaged' | 'deleted'; damage: string | null; verified_ms: number | null; deleted_ms: number | null;
}
export interface BlobLocation { id: Buffer; pack_seq: number; offset: number; length: number; hash: Buffer }
export interface PointRow {
  id: Buffer; agent_id: string; created_ms: number; committed_ms: number; header: Buffer;
  agent_signature: Buffer; gateway_signature: Buffer; refs: Buffer; state: string;
  retain_until?: number; generations?: string; verified_ms?: number | null; broken_reason?: string | null;
}
export interface SealedPackRecord { hash: Buffer; agentId: string; size: number; entries: { id: Buffer; offset: number; length: number }[]; class?: string; retainUntil?: number }

/** SQLite caps bound parameters per statement; stay well under it. */
const IDS_PER_QUERY = 500;
const ROWS_PER_INSERT = 1000;

export class Catalog {
  private constructor(readonly db: Db) {}

  static async open(path: string): Promise<Catalog> {
    const db = await Db.open(path);
    await db.exec(SCHEMA.split('\n').filter((l) => !l.startsWith('CREATE INDEX IF NOT EXISTS blobs_by_pack')).join('\n'));
    for (const [table, columns] of Object.entries(ADDED_COLUMNS)) {
      const have = new Set((await db.all<{ name: string }>(`PRAGMA table_info(${table})`)).map((c) => c.name));
      for (const column of columns) if (!have.has(column.split(' ')[0])) await db.exec(`ALTER TABLE ${table} ADD COLUMN ${column}`);
    }
    await db.exec('CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pack_seq, offset, length)');
    return new Catalog(db);
  }

  close(): Promise<void> { return this.db.close(); }

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]))?.value;
  }
  setMeta(key: string, value: string): Promise<void> {
    return this.db.transaction(async () => { await this.db.run('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)', [key, value]); });
  }

  // ---- tokens and agents

  addToken(row: Omit<TokenRow, 'used_ms' | 'used_by'>): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.run('INSERT INTO tokens(id, secret_hash, created_ms, expires_ms) VALUES (?, ?, ?, ?)', [row.id, row.secret_hash, row.created_ms, row.expires_ms]);
    });
  }
  getToken(id: string): Promise<TokenRow | undefined> { return this.db.get<TokenRow>('SELECT * FROM tokens WHERE id = ?', [id]); }

  /** Consume a token and create the agent in one step, so a token enrolls at most one agent. */
  enrollAgent(tokenId: string, nowMs: number, agent: Omit<AgentRow, 'sealed_master_key' | 'revoked_ms'>): Promise<boolean> {
    return this.db.transaction(async () => {
      const used = await this.db.run('UPDATE tokens SET used_ms = ?, used_by = ? WHERE id = ? AND used_ms IS NULL AND expires_ms > ?', [nowMs, agent.id, tokenId, nowMs]);
      if (used.changes !== 1) return false;
      await this.db.run(
        'INSERT INTO agents(id, hostname, cert_fingerprint, cert_not_after_ms, sign_public_key, enrolled_ms) VALUES (?, ?, ?, ?, ?, ?)',
        [agent.id, agent.hostname, agent.cert_fingerprint, agent.cert_not_after_ms, agent.sign_public_key, agent.enrolled_ms],
      );
      return true;
    });
  }
  getAgent(id: string): Promise<AgentRow | undefined> { return this.db.get<AgentRow>('SELECT * FROM agents WHERE id = ?', [id]); }
  listAgents(): Promise<AgentRow[]> { return this.db.all<AgentRow>('SELECT * FROM agents ORDER BY enrolled_ms'); }
  revokeAgent(id: string, nowMs: number): Promise<boolean> {
    return this.db.transaction(async () => (await this.db.run('UPDATE agents SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL', [nowMs, id])).changes === 1);
  }
  depositKey(id: string, sealed: Buffer): Promise<void> {
    return this.db.transaction(async () => { await this.db.run('UPDATE agents SET sealed_master_key = ? WHERE id = ? AND sealed_master_key IS NULL', [sealed, id]); });
  }

  // ---- packs and blobs

  /** Record a sealed pack and all its blobs; returns the pack's sequence number. */
  recordPack(pack: SealedPackRecord, nowMs: number): Promise<number> {
    return this.db.transaction(async () => {
      const existing = await this.db.get<{ seq: number }>('SELECT seq FROM packs WHERE hash = ?', [pack.hash]);
      if (existing) return existing.seq;
      const { lastID } = await this.db.run(
        'INSERT INTO packs(hash, agent_id, size, blob_count, sealed_ms, class, retain_until) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [pack.hash, pack.agentId, pack.size, pack.entries.length, nowMs, pack.class ?? 'unassigned', pack.retainUntil ?? NEVER],
      );
      for (let i = 0; i < pack.entries.length; i += ROWS_PER_INSERT) {
        const slice = pack.entries.slice(i, i + ROWS_PER_INSERT);
        const params: unknown[] = [];
        for (const e of slice) params.push(pack.agentId, e.id, lastID, e.offset, e.length);
        // A blob already stored elsewhere keeps its first copy; this one is dead weight in the pack.
        await this.db.run(`INSERT OR IGNORE INTO blobs(agent_id, id, pack_seq, offset, length) VALUES ${slice.map(() => '(?, ?, ?, ?, ?)').join(', ')}`, params);
      }
      return lastID;
    });
  }

  listPacks(): Promise<PackRow[]> { return this.db.all<PackRow>('SELECT * FROM packs ORDER BY seq'); }

  /**
   * Indexes (into `ids`) of the blobs this agent does not have in a sealed pack.
   * The ids go in as one concatenated parameter that SQLite walks itself: a
   * commit checks every reference of the point, and binding and returning a
   * row per id cost ten times the lookups.
   */
  async missingBlobs(agentId: string, ids: Buffer[]): Promise<number[]> {
    if (ids.length === 0) return [];
    for (const id of ids) if (id.length !== BLOB_ID_BYTES) throw new Error(`a blob id is ${BLOB_ID_BYTES} bytes, not ${id.length}`);
    const rows = await this.db.all<{ i: number }>(
      `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?3)
       SELECT i FROM k WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE agent_id = ?1 AND id = substr(?2, i * ${BLOB_ID_BYTES} + 1, ${BLOB_ID_BYTES}))`,
      [agentId, Buffer.concat(ids), ids.length],
    );
    return rows.map((r) => r.i);
  }

  async locateBlobs(agentId: string, ids: Buffer[]): Promise<Map<string, BlobLocation>> {
    const found = new Map<string, BlobLocation>();
    for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
      const slice = ids.slice(i, i + IDS_PER_QUERY);
      const rows = await this.db.all<BlobLocation>(
        `SELECT b.id, b.pack_seq, b.offset, b.length, p.hash FROM blobs b JOIN packs p ON p.seq = b.pack_seq WHERE b.agent_id = ? AND b.id IN (${slice.map(() => '?').join(',')})`,
        [agentId, ...slice],
      );
      for (const r of rows) found.set(r.id.toString('hex'), r);
    }
    return found;
  }

  // ---- points

  /**
   * Insert a point if every referenced blob is durable; returns the ids that are not.
   * `retention` runs inside the transaction and gives the point's retain-until and generations.
   */
  commitPoint(point: PointRow, retention?: () => Promise<{ retainUntil: number; generations: string }>): Promise<{ missing: number; conflict: boolean }> {
    return this.db.transaction(async () => {
      if (await this.db.get('SELECT 1 FROM points WHERE id = ?', [point.id])) return { missing: 0, conflict: true };
      const ids: Buffer[] = [];
      for (let i = 0; i < point.refs.length; i += 32) ids.push(point.refs.subarray(i, i + 32));
      const missing = await this.missingBlobs(point.agent_id, ids);
      if (missing.length > 0) return { missing: missing.length, conflict: false };
      const kept = retention ? await retention() : { retainUntil: point.retain_until ?? NEVER, generations: point.generations ?? '' };
      point.retain_until = kept.retainUntil;
      point.generations = kept.generations;
      await this.db.run(
        'INSERT INTO points(id, agent_id, created_ms, committed_ms, header, agent_signature, gateway_signature, refs, state, retain_until, generations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [point.id, point.agent_id, point.created_ms, point.committed_ms, point.header, point.agent_signature, point.gateway_signature, point.refs, point.state, kept.retainUntil, kept.generations],
      );
      return { missing: 0, conflict: false };
    });
  }

  listPoints(agentId?: string): Promise<Omit<PointRow, 'refs'>[]> {
    const cols = 'id, agent_id, created_ms, committed_ms, header, agent_signature, gateway_signature, state, retain_until, generations, verified_ms, broken_reason';
    return agentId
      ? this.db.all(`SELECT ${cols} FROM points WHERE agent_id = ? ORDER BY created_ms`, [agentId])
      : this.db.all(`SELECT ${cols} FROM points ORDER BY created_ms`);
  }
  getPoint(id: Buffer): Promise<PointRow | undefined> { return this.db.get<PointRow>('SELECT * FROM points WHERE id = ?', [id]); }

  /**
   * The one way a restore point leaves the catalog. `check` (retention/retention.ts)
   * runs inside the transaction and throws WormViolation unless the point has
   * expired on the retention clock and is not held.
   */
  deletePoint(id: Buffer, check: (row: PointRow) => Promise<void>): Promise<void> {
    return this.db.transaction(async () => this.deletePointInTransaction(id, check));
  }

  /** deletePoint for callers already inside a catalog transaction (prune). */
  async deletePointInTransaction(id: Buffer, check: (row: PointRow) => Promise<void>): Promise<void> {
    const row = await this.db.get<PointRow>('SELECT * FROM points WHERE id = ?', [id]);
    if (!row) return;
    await check(row);
    await this.db.run('DELETE FROM points WHERE id = ?', [id]);
  }

  /**
   * Sorted blob index of one agent: concatenated ids (ascending, as SQLite
   * orders blobs: bytewise) and their pack sequence numbers, for merge-joins
   * against sorted reference lists.
   */
  async blobIndex(agentId: string): Promise<BlobIndex> {
    const row = await this.db.get<{ ids: string | null; seqs: string | null }>(
      'SELECT group_concat(h, \'\') AS ids, group_concat(pack_seq) AS seqs FROM (SELECT hex(id) AS h, pack_seq FROM blobs WHERE agent_id = ? ORDER BY id)', [agentId],
    );
    const ids = Buffer.from(row?.ids ?? '', 'hex');
    const seqs = new Float64Array(ids.length / 32);
    if (row?.seqs) { let i = 0; for (const s of row.seqs.split(',')) seqs[i++] = Number(s); }
    return new BlobIndex(ids, seqs);
  }
}

/** An agent's blob ids in ascending order with the pack each lives in. */
export class BlobIndex {
  constructor(readonly ids: Buffer, readonly seqs: Float64Array) {}
  get count(): number { return this.seqs.length; }

  /**
   * Merge-join a sorted reference list: calls `found(packSeq)` for each ref
   * that is indexed, returns how many are not.
   */
  join(refs: Buffer, found: (packSeq: number) => void): number {
    const n = refs.length / 32;
    let j = 0;
    let missing = 0;
    for (let i = 0; i < n; i++) {
      const at = i * 32;
      let c = 1;
      while (j < this.count && (c = this.ids.compare(refs, at, at + 32, j * 32, j * 32 + 32)) < 0) j++;
      if (j < this.count && c === 0) found(this.seqs[j]);
      else missing++;
    }
    return missing;
  }
}
