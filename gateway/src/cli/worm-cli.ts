/**
 * @module Command-line verbs of the immutable store: points, verify,
 * policy, admin, hold, prune, audit. Each opens the site, the catalog and
 * the WORM services (so it reads and advances the same retention clock as
 * `serve`) and closes them again.
 */
import path from 'node:path';
import { UsageError, decodePointHeader, parseOptions, type OptionSpec } from '@bulwark/proto';
import { loadSite } from '../site/site.js';
import { requireDir, table } from './args.js';
import { Catalog } from '../catalog/catalog.js';
import { PackStore } from '../store/pack-store.js';
import { verifyStore } from '../verify/verify.js';
import { openWorm, auditPath, type WormServices } from '../retention/services.js';
import { DAY_MS } from '../retention/clock.js';
import { addAdmin, identifyAdmin, listAdmins, AdminError } from '../audit/admins.js';
import { readAudit } from '../audit/audit-log.js';
import { HoldError } from '../holds/holds.js';
import { PruneError } from '../prune/prune.js';
import { WormViolation } from '../retention/worm.js';

export const WORM_USAGE = `  points  --dir D [--json]         restore points with retention, expiry, holds and verification state
  verify  --dir D [--full] [--json] [--max-mibps N] [--dry-run]
                                   check catalog, pack footers, seals and Merkle roots (--full: re-hash
                                   every pack); marks damage and broken points; exit 3 on findings
  policy  set --dir D [--agent A|*] --keep-days N [--daily N] [--weekly N] [--monthly N] | list --dir D
  admin   add --dir D --name NAME [--key-out F] | list --dir D
  hold    place (--point P | --agent A) --reason R --dir D --admin-key-file F
          release HOLD --dir D --admin-key-file F     (asks a second admin)
          approve HOLDREQ --dir D --admin-key-file G  (must be another admin) | list --dir D [--json]
  prune   request --dir D --admin-key-file F | approve REQ --dir D --admin-key-file G | list --dir D [--json]
  audit   --dir D [--verify] [--json]  show the audit log; --verify checks its hash chain
`;

/** Every command here takes positionals (subcommands, ids). */
function parse<T extends OptionSpec>(args: string[], spec: T) {
  return parseOptions(args, spec, true);
}

interface Opened { dir: string; catalog: Catalog; store: PackStore; worm: WormServices }
async function withSite<T>(given: string | undefined, work: (o: Opened) => Promise<T>): Promise<T> {
  const dir = requireDir(given);
  const site = loadSite(dir);
  const catalog = await Catalog.open(site.paths.catalog);
  try {
    const store = await PackStore.open(site.paths.store);
    const worm = await openWorm(dir, catalog, store, { actor: 'cli' });
    return await work({ dir, catalog, store, worm });
  } catch (err) {
    if (err instanceof AdminError || err instanceof HoldError || err instanceof PruneError || err instanceof WormViolation || err instanceof RangeError) {
      process.stderr.write(`bulwark-gateway: ${err.message}\n`);
      process.exitCode = 4;
      return undefined as T;
    }
    throw err;
  } finally {
    await catalog.close();
  }
}

function count(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number ≥ 0, not ${value}`);
  return n;
}

export const wormCommands: Record<string, (args: string[]) => Promise<void>> = {
  async points(args) {
    const { values } = parse(args, { dir: { type: 'string' }, json: { type: 'boolean' } });
    await withSite(values.dir, async ({ catalog, worm }) => {
      const now = await worm.clock.now();
      const active = await worm.holds.active();
      const rows = (await catalog.listPoints()).map((p) => {
        const h = decodePointHeader(p.header);
        const hex = p.id.toString('hex');
        const holds = [...(active.points.get(hex) ?? []), ...(active.agents.get(p.agent_id) ?? [])];
        const until = p.retain_until ?? Number.MAX_SAFE_INTEGER;
        return {
          id: hex, agent: p.agent_id, kind: h.kind, created: new Date(p.created_ms).toISOString(), blobs: h.blobCount, logicalBytes: h.logicalBytes,
          retainUntil: until, expiresInDays: Number(((until - now) / DAY_MS).toFixed(3)), estimatedExpiry: until >= Number.MAX_SAFE_INTEGER ? null : worm.clock.estimateWall(until, now).toISOString(),
          generations: p.generations ? p.generations.split(',') : [], held: holds.length > 0, holds,
          state: p.state, brokenReason: p.broken_reason ?? null, verifiedAt: p.verified_ms ? new Date(p.verified_ms).toISOString() : null,
        };
      });
      if (values.json) { console.log(JSON.stringify(rows, null, 2)); return; }
      console.log(table(['POINT', 'AGENT', 'KIND', 'CREATED', 'BYTES', 'EXPIRES (est.)', 'HOLD', 'STATE'],
        rows.map((r) => [r.id.slice(0, 16), r.agent, r.kind, r.created, String(r.logicalBytes), r.estimatedExpiry ?? 'never', r.held ? r.holds.join(',') : '-', r.state])));
    });
  },

  async verify(args) {
    const { values } = parse(args, { dir: { type: 'string' }, full: { type: 'boolean' }, json: { type: 'boolean' }, 'max-mibps': { type: 'string' }, 'dry-run': { type: 'boolean' } });
    await withSite(values.dir, async ({ catalog, store, worm }) => {
      const full = values.full ?? false;
      const report = await verifyStore(catalog, store, { full, maxMiBps: count('max-mibps', values['max-mibps'], 0), apply: !values['dry-run'], audit: worm.audit, actor: 'cli' });
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(`${full ? 'Full' : 'Metadata'} verify of ${report.packs} packs, ${report.blobs} blobs, ${report.points} points in ${report.seconds.toFixed(2)} s${full ? ` (${(report.bytesHashed / 1048576 / Math.max(report.seconds, 0.001)).toFixed(0)} MiB/s)` : ''}.`);
        for (const f of report.findings) console.log(`  PROBLEM ${f.object}: ${f.problem}`);
        for (const h of report.healedPoints) console.log(`  healed point ${h}`);
        if (report.quarantinedPacks.length) console.log(`  ${report.quarantinedPacks.length} damaged pack(s) stay quarantined until they expire.`);
        console.log(report.findings.length === 0 ? 'Everything verifies.' : `${report.findings.length} problem(s); ${report.brokenPoints.length} point(s) broken. The next backup of each affected source re-sends what is missing.`);
      }
      if (report.findings.length > 0) process.exitCode = 3;
    });
  },

  async policy(args) {
    const [sub, ...rest] = args;
    const { values } = parse(rest, { dir: { type: 'string' }, agent: { type: 'string' }, 'keep-days': { type: 'string' }, daily: { type: 'string' }, weekly: { type: 'string' }, monthly: { type: 'string' }, json: { type: 'boolean' } });
    await withSite(values.dir, async ({ catalog, worm }) => {
      if (sub === 'set') {
        const agentId = values.agent ?? '*';
        if (agentId !== '*' && !(await catalog.getAgent(agentId))) throw new UsageError(`no agent ${agentId}`);
        if (values['keep-days'] === undefined) throw new UsageError('policy set needs --keep-days N');
        const policy = { agentId, keepDays: count('keep-days', values['keep-days'], 30), daily: count('daily', values.daily, 0), weekly: count('weekly', values.weekly, 0), monthly: count('monthly', values.monthly, 0) };
        await worm.retention.setPolicy('cli', policy);
        console.log(`Policy for ${agentId === '*' ? 'every source without its own' : `agent ${agentId}`}: keep ${policy.keepDays} days; daily ${policy.daily} days, weekly ${policy.weekly} weeks, monthly ${policy.monthly} months. Applies to new points; nothing stored is shortened.`);
      } else if (sub === 'list') {
        const list = await worm.retention.listPolicies();
        if (values.json) { console.log(JSON.stringify(list, null, 2)); return; }
        console.log(table(['SOURCE', 'KEEP DAYS', 'DAILY', 'WEEKLY', 'MONTHLY'], list.map((p) => [p.agentId, String(p.keepDays), String(p.daily), String(p.weekly), String(p.monthly)])));
      } else throw new UsageError('policy takes set or list');
    });
  },

  async admin(args) {
    const [sub, ...rest] = args;
    const { values } = parse(rest, { dir: { type: 'string' }, name: { type: 'string' }, 'key-out': { type: 'string' } });
    await withSite(values.dir, async ({ catalog, worm }) => {
      if (sub === 'add') {
        if (!values.name) throw new UsageError('admin add needs --name NAME');
        const file = path.resolve(values['key-out'] ?? `bulwark-admin-${values.name}.key`);
        await addAdmin(catalog, values.name, file);
        await worm.audit.append({ actor: 'cli', action: 'admin.add', object: `admin ${values.name}` });
        console.log(`Admin ${values.name} created. API key written to ${file} (0600): hand it to that person only.`);
      } else if (sub === 'list') {
        for (const a of await listAdmins(catalog)) console.log(`${a.name}  since ${new Date(a.created_ms).toISOString()}`);
      } else throw new UsageError('admin takes add or list');
    });
  },

  async hold(args) {
    const [sub, ...rest] = args;
    const { values, positionals } = parse(rest, { dir: { type: 'string' }, point: { type: 'string' }, agent: { type: 'string' }, reason: { type: 'string' }, 'admin-key-file': { type: 'string' }, json: { type: 'boolean' } });
    await withSite(values.dir, async ({ catalog, worm }) => {
      if (sub === 'place') {
        const admin = await identifyAdmin(catalog, values['admin-key-file']);
        const hold = await worm.holds.place(admin, { point: values.point, agent: values.agent }, values.reason ?? '');
        console.log(`Placed ${hold.id} on ${hold.target_kind} ${hold.target}: nothing it covers expires until it is released by two admins.`);
      } else if (sub === 'release') {
        if (positionals.length !== 1) throw new UsageError('hold release takes one hold id');
        const admin = await identifyAdmin(catalog, values['admin-key-file']);
        const request = await worm.holds.requestRelease(admin, positionals[0]);
        console.log(`Release of ${positionals[0]} requested as ${request.id}; another admin must run \`bulwark-gateway hold approve ${request.id}\`.`);
      } else if (sub === 'approve') {
        if (positionals.length !== 1) throw new UsageError('hold approve takes one release request id');
        const admin = await identifyAdmin(catalog, values['admin-key-file']);
        const hold = await worm.holds.approveRelease(admin, positionals[0]);
        console.log(`Released ${hold.id} on ${hold.target_kind} ${hold.target}.`);
      } else if (sub === 'list') {
        const list = await worm.holds.list();
        if (values.json) { console.log(JSON.stringify(list, null, 2)); return; }
        console.log(table(['HOLD', 'ON', 'REASON', 'PLACED BY', 'RELEASED'], list.holds.map((h) => [h.id, `${h.target_kind} ${h.target}`, h.reason, h.placed_by, h.released_by ? `by ${h.released_by}` : '-'])));
        for (const r of list.releases.filter((x) => !x.approved_ms)) console.log(`pending release ${r.id} of ${r.hold_id}, requested by ${r.requested_by}`);
      } else throw new UsageError('hold takes place, release, approve or list');
    });
  },

  async prune(args) {
    const [sub, ...rest] = args;
    const { values, positionals } = parse(rest, { dir: { type: 'string' }, 'admin-key-file': { type: 'string' }, json: { type: 'boolean' } });
    await withSite(values.dir, async ({ catalog, worm }) => {
      if (sub === 'request') {
        const admin = await identifyAdmin(catalog, values['admin-key-file']);
        const { id, plan } = await worm.pruner.request(admin);
        if (values.json) { console.log(JSON.stringify({ id, plan }, null, 2)); return; }
        console.log(`Prune request ${id}: ${plan.points.length} expired point(s), ${plan.packs.length} pack(s), ${plan.bytes} bytes. Another admin must run \`bulwark-gateway prune approve ${id}\`.`);
      } else if (sub === 'approve') {
        if (positionals.length !== 1) throw new UsageError('prune approve takes one request id');
        const admin = await identifyAdmin(catalog, values['admin-key-file']);
        const result = await worm.pruner.approve(admin, positionals[0]);
        if (values.json) { console.log(JSON.stringify(result, null, 2)); return; }
        console.log(`Pruned: ${result.pointsRemoved.length} point(s) removed, ${result.packsDeleted.length} pack(s) deleted, ${result.bytesFreed} bytes freed.`);
        for (const s of result.skipped) console.log(`  kept ${s.object}: ${s.reason}`);
      } else if (sub === 'list') {
        const rows = await worm.pruner.list();
        if (values.json) { console.log(JSON.stringify(rows.map((r) => ({ ...r, plan: JSON.parse(r.plan), result: r.result ? JSON.parse(r.result) : null })), null, 2)); return; }
        for (const r of rows) console.log(`${r.id}  requested by ${r.requested_by}  ${r.approved_by ? `approved by ${r.approved_by}` : 'pending'}`);
      } else throw new UsageError('prune takes request, approve or list');
    });
  },

  async audit(args) {
    const { values } = parse(args, { dir: { type: 'string' }, verify: { type: 'boolean' }, json: { type: 'boolean' } });
    if (!values.dir) throw new UsageError('--dir D is required: the site directory');
    loadSite(values.dir);
    const { entries, problems } = readAudit(auditPath(values.dir));
    if (values.json) console.log(JSON.stringify(values.verify ? { entries: entries.length, problems } : entries, null, 2));
    else {
      if (!values.verify) for (const e of entries) console.log(`${e.seq} ${e.time} ${e.level.padEnd(5)} ${e.actor} ${e.action} ${e.object} ${typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)}`);
      if (values.verify) console.log(problems.length ? problems.join('\n') : `Audit chain intact: ${entries.length} entries.`);
    }
    if (values.verify && problems.length) process.exitCode = 3;
  },
};
