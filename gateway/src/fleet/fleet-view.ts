/**
 * @module The fleet view: every enrolled agent with online/offline, last
 * heartbeat, last backup and its result, version and an inventory summary.
 * The one place presence is decided: online means the last word was
 * "online" and a heartbeat arrived within the offline timeout.
 */
import type { Inventory } from '@bulwark/proto';
import type { Catalog } from '../catalog/catalog.js';
import type { FleetAgentRow, FleetStore } from './fleet-store.js';

/** Offline after this long without a heartbeat, unless `serve --offline-after` says otherwise. */
export const DEFAULT_OFFLINE_AFTER_MS = 30_000;

export type PresenceState = 'online' | 'offline' | 'never seen' | 'revoked';

export function presenceOf(row: Pick<FleetAgentRow, 'online' | 'last_seen_ms'> | undefined, nowMs: number, offlineAfterMs: number): PresenceState {
  if (!row || row.last_seen_ms === null || row.last_seen_ms === 0) return row?.online ? 'offline' : 'never seen';
  return row.online && nowMs - row.last_seen_ms <= offlineAfterMs ? 'online' : 'offline';
}

export interface FleetViewRow {
  id: string; hostname: string; enrolled: string; revoked: string | null; certificateExpires: string;
  points: number; lastPoint: string | null;
  status: PresenceState; online: boolean; lastHeartbeat: string | null; version: string | null;
  lastBackup: { at: string; ok: boolean; message: string; point: string | null } | null;
  runningCommand: string | null;
  inventory: { os: string; arch: string; cpu: string; cores: number; memoryBytes: number; volumes: number; diskBytes: number } | null;
  lastRejection: { at: string; what: string } | null;
  lastAlert: { at: string; what: string } | null;
}

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

export async function fleetView(catalog: Catalog, store: FleetStore, nowMs = Date.now()): Promise<FleetViewRow[]> {
  const offlineAfterMs = Number(await store.getMeta('offline_after_ms')) || DEFAULT_OFFLINE_AFTER_MS;
  const fleet = new Map((await store.listAgents()).map((r) => [r.agent_id, r]));
  const points = await catalog.listPoints();
  return (await catalog.listAgents()).map((a) => {
    const own = points.filter((p) => p.agent_id === a.id);
    const f = fleet.get(a.id);
    const status: PresenceState = a.revoked_ms ? 'revoked' : presenceOf(f, nowMs, offlineAfterMs);
    let inventory: FleetViewRow['inventory'] = null;
    let inv: Inventory | undefined;
    try { inv = f?.inventory ? JSON.parse(f.inventory) as Inventory : undefined; } catch { inv = undefined; }
    if (inv) {
      const volumes = inv.volumes ?? [];
      inventory = {
        os: [inv.os, inv.osRelease].filter(Boolean).join(' '), arch: inv.arch, cpu: inv.cpu, cores: inv.cores, memoryBytes: inv.memoryBytes,
        volumes: volumes.length, diskBytes: volumes.reduce((n, v) => n + (v.sizeBytes || 0), 0),
      };
    }
    return {
      id: a.id, hostname: a.hostname, enrolled: new Date(a.enrolled_ms).toISOString(), revoked: iso(a.revoked_ms),
      certificateExpires: new Date(a.cert_not_after_ms).toISOString(),
      points: own.length, lastPoint: own.length ? new Date(own[own.length - 1].created_ms).toISOString() : null,
      status, online: status === 'online', lastHeartbeat: iso(f?.last_seen_ms), version: f?.agent_version ?? null,
      lastBackup: f?.last_backup_ms ? { at: iso(f.last_backup_ms)!, ok: f.last_backup_ok === 1, message: f.last_backup_message ?? '', point: f.last_backup_point } : null,
      runningCommand: status === 'online' ? f?.running_command ?? null : null,
      inventory,
      lastRejection: f?.last_rejection ? { at: iso(f.last_rejection_ms)!, what: f.last_rejection } : null,
      lastAlert: f?.last_alert ? { at: iso(f.last_alert_ms)!, what: f.last_alert } : null,
    };
  });
}
