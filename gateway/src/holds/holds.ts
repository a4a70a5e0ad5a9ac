/**
 * @module Legal holds on a restore point or a whole source (agent). A held
 * point never expires, and no pack of a held source is deleted. One admin
 * places a hold; releasing it is two-person: one admin requests, a
 * different admin approves.
 */
import { randomBytes } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import type { AuditLog } from '../audit/audit-log.js';
import { requireSecondAdmin } from '../audit/admins.js';

export class HoldError extends Error {}

export interface HoldRow {
  id: string; target_kind: 'point' | 'agent'; target: string; reason: string; placed_by: string; placed_ms: number;
  released_by: string | null; released_ms: number | null;
}
export interface ReleaseRow { id: string; hold_id: string; requested_by: string; requested_ms: number; approved_by: string | null; approved_ms: number | null }

export class Holds {
  constructor(private readonly catalog: Catalog, private readonly audit: AuditLog, private readonly wallMs: () => number = Date.now) {}

  async place(admin: string, target: { point?: string; agent?: string }, reason: string): Promise<HoldRow> {
    if (!!target.point === !!target.agent) throw new HoldError('a hold is on either --point P or --agent A');
    if (!reason.trim()) throw new HoldError('a hold needs --reason: why it is placed (case number, request)');
    const db = this.catalog.db;
    let kind: 'point' | 'agent';
    let object: string;
    if (target.point) {
      const point = /^[0-9a-f]{32}$/.test(target.point) ? await this.catalog.getPoint(Buffer.from(target.point, 'hex')) : undefined;
      if (!point) throw new HoldError(`no restore point ${target.point}: see \`bulwark-gateway points\``);
      kind = 'point'; object = target.point;
    } else {
      if (!(await this.catalog.getAgent(target.agent!))) throw new HoldError(`no agent ${target.agent}`);
      kind = 'agent'; object = target.agent!;
    }
    const row: HoldRow = { id: `hold-${randomBytes(5).toString('hex')}`, target_kind: kind, target: object, reason, placed_by: admin, placed_ms: this.wallMs(), released_by: null, released_ms: null };
    await db.transaction(async () => {
      await db.run('INSERT INTO holds(id, target_kind, target, reason, placed_by, placed_ms) VALUES (?, ?, ?, ?, ?, ?)', [row.id, kind, object, reason, admin, row.placed_ms]);
    });
    await this.audit.append({ actor: admin, action: 'hold.place', object: `${kind} ${object}`, detail: { hold: row.id, reason } });
    return row;
  }

  async requestRelease(admin: string, holdId: string): Promise<ReleaseRow> {
    const hold = await this.catalog.db.get<HoldRow>('SELECT * FROM holds WHERE id = ?', [holdId]);
    if (!hold) throw new HoldError(`no hold ${holdId}: see \`bulwark-gateway hold list\``);
    if (hold.released_ms !== null) throw new HoldError(`hold ${holdId} was released already`);
    const row: ReleaseRow = { id: `hrq-${randomBytes(5).toString('hex')}`, hold_id: holdId, requested_by: admin, requested_ms: this.wallMs(), approved_by: null, approved_ms: null };
    await this.catalog.db.transaction(async () => {
      await this.catalog.db.run('INSERT INTO hold_releases(id, hold_id, requested_by, requested_ms) VALUES (?, ?, ?, ?)', [row.id, holdId, admin, row.requested_ms]);
    });
    await this.audit.append({ actor: admin, action: 'hold.release-request', object: `hold ${holdId}`, detail: { request: row.id } });
    return row;
  }

  async approveRelease(admin: string, requestId: string): Promise<HoldRow> {
    const db = this.catalog.db;
    const request = await db.get<ReleaseRow>('SELECT * FROM hold_releases WHERE id = ?', [requestId]);
    if (!request) throw new HoldError(`no release request ${requestId}: see \`bulwark-gateway hold list\``);
    if (request.approved_ms !== null) throw new HoldError(`release request ${requestId} was approved already`);
    await requireSecondAdmin(this.audit, { admin, requestedBy: request.requested_by, noun: 'release', id: requestId, object: `hold ${request.hold_id}`, refusedAction: 'hold.release-refused' }, (m) => new HoldError(m));
    await db.transaction(async () => {
      const now = this.wallMs();
      await db.run('UPDATE hold_releases SET approved_by = ?, approved_ms = ? WHERE id = ?', [admin, now, requestId]);
      await db.run('UPDATE holds SET released_by = ?, released_ms = ? WHERE id = ? AND released_ms IS NULL', [admin, now, request.hold_id]);
    });
    await this.audit.append({ actor: admin, action: 'hold.release', object: `hold ${request.hold_id}`, detail: { request: requestId, requestedBy: request.requested_by } });
    return (await db.get<HoldRow>('SELECT * FROM holds WHERE id = ?', [request.hold_id]))!;
  }

  async list(): Promise<{ holds: HoldRow[]; releases: ReleaseRow[] }> {
    return {
      holds: await this.catalog.db.all<HoldRow>('SELECT * FROM holds ORDER BY placed_ms'),
      releases: await this.catalog.db.all<ReleaseRow>('SELECT * FROM hold_releases ORDER BY requested_ms'),
    };
  }

  /** Active hold ids per point hex and per agent, for listings. */
  async active(): Promise<{ points: Map<string, string[]>; agents: Map<string, string[]> }> {
    const rows = await this.catalog.db.all<HoldRow>('SELECT * FROM holds WHERE released_ms IS NULL');
    const points = new Map<string, string[]>();
    const agents = new Map<string, string[]>();
    for (const r of rows) {
      const map = r.target_kind === 'point' ? points : agents;
      map.set(r.target, [...(map.get(r.target) ?? []), r.id]);
    }
    return { points, agents };
  }
}
