/**
 * @module Retention decisions, computed in one place (FORMAT.md
 * "Retention"): the policy of each source, the retain-until of a new point
 * (keep days plus daily/weekly/monthly generations) and of a new pack, and
 * whether a point or a pack may be deleted now. Durations are counted on the
 * retention clock; the wall calendar only picks which points start a day,
 * week or month. Nothing is ever shortened.
 */
import type { Catalog, PointRow } from '../catalog/catalog.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { PackDeleteGate } from '../store/pack-store.js';
import type { PackRetention } from '../store/pack-format.js';
import { DAY_MS, type RetentionClock } from './clock.js';
import { WormViolation } from './worm.js';

export interface Policy { agentId: string; keepDays: number; daily: number; weekly: number; monthly: number }
/** The site default: `agentId` '*'. */
export const DEFAULT_POLICY: Policy = { agentId: '*', keepDays: 30, daily: 0, weekly: 0, monthly: 0 };

export function policyClass(policy: Policy): string { return policy.agentId === '*' ? 'default' : `agent:${policy.agentId}`; }

export interface HoldRef { id: string; target_kind: 'point' | 'agent'; target: string }

export class Retention implements PackDeleteGate {
  private policies = new Map<string, Policy>();

  constructor(readonly catalog: Catalog, readonly clock: RetentionClock, readonly audit: AuditLog, readonly actor = 'gateway') {}

  /** Read the clock and the policies (call at start and now and then). */
  async refresh(): Promise<number> {
    const now = await this.clock.now();
    const rows = await this.catalog.db.all<{ agent_id: string; keep_days: number; daily: number; weekly: number; monthly: number }>('SELECT * FROM policies');
    this.policies = new Map(rows.map((r) => [r.agent_id, { agentId: r.agent_id, keepDays: r.keep_days, daily: r.daily, weekly: r.weekly, monthly: r.monthly }]));
    return now;
  }

  policyFor(agentId: string): Policy {
    return this.policies.get(agentId) ?? this.policies.get('*') ?? DEFAULT_POLICY;
  }

  async setPolicy(actor: string, policy: Policy): Promise<void> {
    for (const [k, v] of Object.entries({ keepDays: policy.keepDays, daily: policy.daily, weekly: policy.weekly, monthly: policy.monthly })) {
      if (!Number.isInteger(v) || v < 0 || v > 100_000) throw new RangeError(`${k} must be a whole number from 0 to 100000, not ${v}`);
    }
    if (policy.keepDays < 1) throw new RangeError('keepDays must be at least 1');
    await this.catalog.db.transaction(async () => {
      await this.catalog.db.run('INSERT OR REPLACE INTO policies(agent_id, keep_days, daily, weekly, monthly, updated_ms) VALUES (?, ?, ?, ?, ?, ?)',
        [policy.agentId, policy.keepDays, policy.daily, policy.weekly, policy.monthly, this.clock.time.wallMs()]);
    });
    this.policies.set(policy.agentId, policy);
    await this.audit.append({ actor, action: 'policy.set', object: policy.agentId === '*' ? 'default policy' : `agent ${policy.agentId}`, detail: { ...policy, note: 'applies to new points and packs; existing retention is never shortened' } });
  }

  async listPolicies(): Promise<Policy[]> {
    await this.refresh();
    const list = [...this.policies.values()];
    if (!this.policies.has('*')) list.unshift(DEFAULT_POLICY);
    return list.sort((a, b) => (a.agentId === '*' ? -1 : b.agentId === '*' ? 1 : a.agentId.localeCompare(b.agentId)));
  }

  /** Retention a new pack of this agent is born with: seal time plus the keep days of its class. */
  packRetention(agentId: string): PackRetention {
    const policy = this.policyFor(agentId);
    return { class: policyClass(policy), retainUntil: this.clock.current() + policy.keepDays * DAY_MS };
  }

  /**
   * Retain-until of a point committed now (inside the commit transaction):
   * keep days, or longer if it is the first of its UTC day, ISO week or month
   * for this agent and the policy keeps such generations.
   */
  async pointRetention(agentId: string, committedWallMs: number): Promise<{ retainUntil: number; generations: string }> {
    // Read fresh: a policy set from the CLI applies to the very next point (and refreshes the pack cache).
    for (const r of await this.catalog.db.all<{ agent_id: string; keep_days: number; daily: number; weekly: number; monthly: number }>('SELECT * FROM policies WHERE agent_id IN (?, \'*\')', [agentId])) {
      this.policies.set(r.agent_id, { agentId: r.agent_id, keepDays: r.keep_days, daily: r.daily, weekly: r.weekly, monthly: r.monthly });
    }
    const policy = this.policyFor(agentId);
    const now = this.clock.current();
    let keepDays = policy.keepDays;
    const generations: string[] = [];
    const firstSince = async (startMs: number) => !(await this.catalog.db.get('SELECT 1 FROM points WHERE agent_id = ? AND committed_ms >= ? AND committed_ms <= ? LIMIT 1', [agentId, startMs, committedWallMs]));
    const d = new Date(committedWallMs);
    const dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    const weekStart = dayStart - ((d.getUTCDay() + 6) % 7) * DAY_MS;
    const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    if (policy.daily > 0 && (await firstSince(dayStart))) { generations.push('daily'); keepDays = Math.max(keepDays, policy.daily); }
    if (policy.weekly > 0 && (await firstSince(weekStart))) { generations.push('weekly'); keepDays = Math.max(keepDays, policy.weekly * 7); }
    if (policy.monthly > 0 && (await firstSince(monthStart))) { generations.push('monthly'); keepDays = Math.max(keepDays, policy.monthly * 31); }
    return { retainUntil: now + keepDays * DAY_MS, generations: generations.join(',') };
  }

  // ---- holds and expiry

  /** Active holds on a point (by id or its whole source). Call with the catalog in a transaction or not. */
  async holdsOn(pointHex: string, agentId: string): Promise<HoldRef[]> {
    return this.catalog.db.all<HoldRef>(
      'SELECT id, target_kind, target FROM holds WHERE released_ms IS NULL AND ((target_kind = \'point\' AND target = ?) OR (target_kind = \'agent\' AND target = ?))', [pointHex, agentId],
    );
  }

  /** The check catalog.deletePoint runs: expired on the retention clock and not held. */
  pointDeletionCheck(now: number): (row: PointRow) => Promise<void> {
    return async (row) => {
      const hex = row.id.toString('hex');
      const until = row.retain_until ?? Number.MAX_SAFE_INTEGER;
      if (until > now) throw new WormViolation(`point ${hex}`, `it is retained for ${formatDuration(until - now)} more on the retention clock`);
      const holds = await this.holdsOn(hex, row.agent_id);
      if (holds.length) throw new WormViolation(`point ${hex}`, `it is under legal hold ${holds.map((h) => h.id).join(', ')}`);
    };
  }

  /** Delete one point through the WORM checks (refusals are audited). */
  async deletePoint(actor: string, id: Buffer): Promise<void> {
    const now = await this.clock.now();
    try {
      await this.catalog.deletePoint(id, this.pointDeletionCheck(now));
    } catch (err) {
      if (err instanceof WormViolation) await this.audit.append({ level: 'warn', actor, action: 'worm.refused', object: err.object, detail: err.reason });
      throw err;
    }
    await this.audit.append({ actor, action: 'point.delete', object: `point ${id.toString('hex')}`, detail: 'expired and not held' });
  }

  /** PackDeleteGate: the only approval store.deletePack accepts. */
  async approveDeletion(hash: Buffer, headerRetention: PackRetention | undefined, actor = this.actor): Promise<void> {
    const hex = hash.toString('hex');
    const now = await this.clock.now();
    let freed = 0;
    try {
      await this.catalog.db.transaction(async () => {
        const pack = await this.catalog.db.get<{ seq: number; agent_id: string; retain_until: number; state: string; size: number }>('SELECT seq, agent_id, retain_until, state, size FROM packs WHERE hash = ?', [hash]);
        if (!pack) throw new WormViolation(`pack ${hex}`, 'the catalog does not know it; only catalogued, expired packs may be deleted');
        if (headerRetention && headerRetention.retainUntil > now) throw new WormViolation(`pack ${hex}`, `its sealed header retains it for ${formatDuration(headerRetention.retainUntil - now)} more`);
        if (pack.state === 'deleted') return; // approved before; finishing an interrupted delete
        if (pack.retain_until > now) throw new WormViolation(`pack ${hex}`, `it is retained for ${formatDuration(pack.retain_until - now)} more on the retention clock`);
        const agentHold = await this.catalog.db.get<{ id: string }>('SELECT id FROM holds WHERE released_ms IS NULL AND target_kind = \'agent\' AND target = ?', [pack.agent_id]);
        if (agentHold) throw new WormViolation(`pack ${hex}`, `its source ${pack.agent_id} is under legal hold ${agentHold.id}`);
        const ids = (await this.catalog.db.all<{ id: Buffer }>('SELECT id FROM blobs WHERE pack_seq = ?', [pack.seq])).map((r) => r.id);
        if (ids.length) {
          const points = await this.catalog.db.all<{ id: Buffer; refs: Buffer; retain_until: number }>('SELECT id, refs, retain_until FROM points WHERE agent_id = ?', [pack.agent_id]);
          for (const p of points) {
            if (!ids.some((id) => sortedRefsInclude(p.refs, id))) continue;
            const pointHex = p.id.toString('hex');
            if (p.retain_until > now) throw new WormViolation(`pack ${hex}`, `unexpired point ${pointHex} references its blobs`);
            const held = await this.holdsOn(pointHex, pack.agent_id);
            if (held.length) throw new WormViolation(`pack ${hex}`, `point ${pointHex}, under legal hold ${held[0].id}, references its blobs`);
            throw new WormViolation(`pack ${hex}`, `point ${pointHex} still references its blobs: prune the point first`);
          }
        }
        await this.catalog.db.run('UPDATE packs SET state = \'deleted\', deleted_ms = ? WHERE seq = ?', [this.clock.time.wallMs(), pack.seq]);
        await this.catalog.db.run('DELETE FROM blobs WHERE pack_seq = ?', [pack.seq]);
        freed = pack.size;
      });
    } catch (err) {
      if (err instanceof WormViolation) await this.audit.append({ level: 'warn', actor, action: 'worm.refused', object: err.object, detail: err.reason });
      throw err;
    }
    if (freed) await this.audit.append({ actor, action: 'pack.delete', object: `pack ${hex}`, detail: { bytes: freed } });
  }
}

/** Binary search of a 32-byte id in a sorted reference list. */
export function sortedRefsInclude(refs: Buffer, id: Buffer): boolean {
  let lo = 0;
  let hi = refs.length / 32 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = refs.compare(id, 0, 32, mid * 32, mid * 32 + 32);
    if (c === 0) return true;
    if (c < 0) lo = mid + 1; else hi = mid - 1;
  }
  return false;
}

export function formatDuration(ms: number): string {
  if (ms >= 2 * DAY_MS) return `${(ms / DAY_MS).toFixed(1)} days`;
  if (ms >= 7_200_000) return `${(ms / 3_600_000).toFixed(1)} hours`;
  return `${Math.ceil(ms / 60_000)} minutes`;
}
