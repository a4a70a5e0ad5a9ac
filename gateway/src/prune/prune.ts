/**
 * @module Two-person pruning. `request` computes a plan (expired, unheld
 * points; expired packs no remaining point references) and stores it;
 * `approve` by a different admin recomputes the plan against the state at
 * approval time and deletes only what is in both, through the WORM paths
 * (catalog deletePoint, store deletePack), reporting what was freed.
 */
import { randomBytes } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import type { AuditLog } from '../audit/audit-log.js';
import { requireSecondAdmin } from '../audit/admins.js';
import type { PackStore } from '../store/pack-store.js';
import type { Retention } from '../retention/retention.js';
import { WormViolation } from '../retention/worm.js';

export class PruneError extends Error {}

export interface PrunePlan { now: number; points: string[]; packs: { hash: string; bytes: number }[]; bytes: number }
export interface PruneResult { pointsRemoved: string[]; packsDeleted: string[]; bytesFreed: number; skipped: { object: string; reason: string }[] }
export interface PruneRequestRow { id: string; requested_by: string; requested_ms: number; plan: string; approved_by: string | null; approved_ms: number | null; result: string | null }

export class Pruner {
  constructor(private readonly catalog: Catalog, private readonly store: PackStore, private readonly retention: Retention, private readonly audit: AuditLog) {}

  /** What could be freed now. */
  async plan(): Promise<PrunePlan> {
    const now = await this.retention.clock.now();
    const db = this.catalog.db;
    const holds = await db.all<{ target_kind: string; target: string }>('SELECT target_kind, target FROM holds WHERE released_ms IS NULL');
    const heldPoints = new Set(holds.filter((h) => h.target_kind === 'point').map((h) => h.target));
    const heldAgents = new Set(holds.filter((h) => h.target_kind === 'agent').map((h) => h.target));
    const points = await db.all<{ id: Buffer; agent_id: string; retain_until: number }>('SELECT id, agent_id, retain_until FROM points');
    const expired = points.filter((p) => p.retain_until <= now && !heldPoints.has(p.id.toString('hex')) && !heldAgents.has(p.agent_id));
    const expiredSet = new Set(expired.map((p) => p.id.toString('hex')));
    const candidates = await db.all<{ seq: number; hash: Buffer; agent_id: string; size: number }>(
      'SELECT seq, hash, agent_id, size FROM packs WHERE state != \'deleted\' AND retain_until <= ?', [now]);
    const byAgent = new Map<string, typeof candidates>();
    for (const c of candidates) if (!heldAgents.has(c.agent_id)) byAgent.set(c.agent_id, [...(byAgent.get(c.agent_id) ?? []), c]);
    const packs: PrunePlan['packs'] = [];
    for (const [agentId, list] of byAgent) {
      const index = await this.catalog.blobIndex(agentId);
      const referenced = new Set<number>();
      const remaining = await db.all<{ id: Buffer; refs: Buffer }>('SELECT id, refs FROM points WHERE agent_id = ?', [agentId]);
      for (const p of remaining) if (!expiredSet.has(p.id.toString('hex'))) index.join(p.refs, (seq) => referenced.add(seq));
      for (const c of list) if (!referenced.has(c.seq)) packs.push({ hash: c.hash.toString('hex'), bytes: c.size });
    }
    return { now, points: [...expiredSet], packs, bytes: packs.reduce((a, p) => a + p.bytes, 0) };
  }

  async request(admin: string): Promise<{ id: string; plan: PrunePlan }> {
    const plan = await this.plan();
    const id = `prune-${randomBytes(5).toString('hex')}`;
    await this.catalog.db.transaction(async () => {
      await this.catalog.db.run('INSERT INTO prune_requests(id, requested_by, requested_ms, plan) VALUES (?, ?, ?, ?)', [id, admin, Date.now(), JSON.stringify(plan)]);
    });
    await this.audit.append({ actor: admin, action: 'prune.request', object: `prune ${id}`, detail: { points: plan.points.length, packs: plan.packs.length, bytes: plan.bytes } });
    return { id, plan };
  }

  async approve(admin: string, id: string): Promise<PruneResult> {
    const db = this.catalog.db;
    const request = await db.get<PruneRequestRow>('SELECT * FROM prune_requests WHERE id = ?', [id]);
    if (!request) throw new PruneError(`no prune request ${id}: see \`bulwark-gateway prune list\``);
    if (request.approved_ms !== null) throw new PruneError(`prune request ${id} was approved already`);
    await requireSecondAdmin(this.audit, { admin, requestedBy: request.requested_by, noun: 'prune', id, object: `prune ${id}`, refusedAction: 'prune.refused' }, (m) => new PruneError(m));
    const requested = JSON.parse(request.plan) as PrunePlan;
    const current = await this.plan();
    const result: PruneResult = { pointsRemoved: [], packsDeleted: [], bytesFreed: 0, skipped: [] };
    const nowPoints = new Set(current.points);
    for (const hex of requested.points) {
      if (!nowPoints.has(hex)) { result.skipped.push({ object: `point ${hex}`, reason: 'no longer expired and unheld (or gone)' }); continue; }
      try {
        await this.retention.deletePoint(admin, Buffer.from(hex, 'hex'));
        result.pointsRemoved.push(hex);
      } catch (err) {
        if (!(err instanceof WormViolation)) throw err;
        result.skipped.push({ object: `point ${hex}`, reason: err.reason });
      }
    }
    // References change when points go: plan the packs again after the points are removed.
    const afterPoints = await this.plan();
    const nowPacks = new Map(afterPoints.packs.map((p) => [p.hash, p.bytes]));
    for (const pack of requested.packs) {
      if (!nowPacks.has(pack.hash)) { result.skipped.push({ object: `pack ${pack.hash}`, reason: 'no longer expired and unreferenced (or gone)' }); continue; }
      try {
        await this.store.deletePack(Buffer.from(pack.hash, 'hex'));
        result.packsDeleted.push(pack.hash);
        result.bytesFreed += nowPacks.get(pack.hash)!;
      } catch (err) {
        if (!(err instanceof WormViolation)) throw err;
        result.skipped.push({ object: `pack ${pack.hash}`, reason: err.reason });
      }
    }
    await db.transaction(async () => {
      await db.run('UPDATE prune_requests SET approved_by = ?, approved_ms = ?, result = ? WHERE id = ?', [admin, Date.now(), JSON.stringify(result), id]);
    });
    await this.audit.append({ actor: admin, action: 'prune.approve', object: `prune ${id}`, detail: { requestedBy: request.requested_by, points: result.pointsRemoved.length, packs: result.packsDeleted.length, bytesFreed: result.bytesFreed, skipped: result.skipped.length } });
    return result;
  }

  list(): Promise<PruneRequestRow[]> { return this.catalog.db.all<PruneRequestRow>('SELECT * FROM prune_requests ORDER BY requested_ms'); }
}
