/**
 * @module The immutable-store services of one gateway process, wired
 * together: audit log, retention clock, retention/WORM gate (installed in
 * the pack store), holds, pruning, and — inside `serve` — the clock ticker
 * and the verification schedule.
 */
import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import type { PackStore } from '../store/pack-store.js';
import type { Log } from '../log/log.js';
import { AuditLog } from '../audit/audit-log.js';
import { RetentionClock, systemTime, type TimeSource } from './clock.js';
import { Retention } from './retention.js';
import { Holds } from '../holds/holds.js';
import { Pruner } from '../prune/prune.js';
import { verifyStore, type VerifyReport } from '../verify/verify.js';
import { parseVerifySchedule, type VerifySchedule } from '../verify/config.js';
import { RestoreQuiet } from '../verify/restore-quiet.js';

export interface WormServices {
  audit: AuditLog; clock: RetentionClock; retention: Retention; holds: Holds; pruner: Pruner;
  /** Set while serving: verification of each new point and on a schedule. */
  verifier?: VerifyScheduler;
}

export function auditPath(siteDir: string): string { return path.join(siteDir, 'audit.log'); }

export async function openWorm(siteDir: string, catalog: Catalog, store: PackStore, options: { log?: Log; time?: TimeSource; actor?: string } = {}): Promise<WormServices> {
  const time = options.time ?? systemTime;
  const actor = options.actor ?? 'gateway';
  const audit = new AuditLog(auditPath(siteDir), catalog.db, options.log, () => time.wallMs());
  const clock = new RetentionClock(catalog.db, time, audit, actor);
  const retention = new Retention(catalog, clock, audit, actor);
  await retention.refresh();
  store.gate = retention;
  store.immutable.onUnsupported = (reason) => {
    void (async () => {
      if (await catalog.getMeta('immutable_unsupported')) return;
      await catalog.setMeta('immutable_unsupported', reason);
      await audit.append({ level: 'warn', actor, action: 'store.immutable-unsupported', object: store.packsDir, detail: `immutable flag unsupported (${reason}); sealed packs stay read-only (0444)` });
    })().catch((err) => options.log?.error(`audit: ${(err as Error).message}`));
  };
  return { audit, clock, retention, holds: new Holds(catalog, audit, () => time.wallMs()), pruner: new Pruner(catalog, store, retention, audit) };
}

/** Deletions approved before a crash whose file is still there: finish them (deletePack re-checks). */
export async function finishDeletions(catalog: Catalog, store: PackStore, log?: Log): Promise<void> {
  const rows = await catalog.db.all<{ hash: Buffer }>('SELECT hash FROM packs WHERE state = \'deleted\'');
  for (const { hash } of rows) {
    try { await store.deletePack(hash); } catch (err) { log?.error(`finishing the deletion of pack ${hash.toString('hex')}: ${(err as Error).message}`); }
  }
}

/**
 * Verification inside serve: one run at a time, after each commit and on the
 * site.json schedule. Periods count from the last run, or from the site's
 * creation before the first: a new store has had no time to rot (each
 * point's packs get a metadata check after its commit), and on a fresh site
 * a full verify 5 s after start fell on its first restores.
 */
export class VerifyScheduler {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private readonly restores = new RestoreQuiet();

  constructor(private readonly catalog: Catalog, private readonly store: PackStore, private readonly worm: WormServices, readonly schedule: VerifySchedule, private readonly log?: Log, private readonly sinceMs = Date.now()) {}

  static fromSiteConfig(config: unknown, catalog: Catalog, store: PackStore, worm: WormServices, log?: Log): VerifyScheduler {
    const { verify, createdMs } = config as { verify?: unknown; createdMs?: unknown };
    return new VerifyScheduler(catalog, store, worm, parseVerifySchedule(verify), log, typeof createdMs === 'number' ? createdMs : undefined);
  }

  /** A restore read is being served: scheduled full verifies hold their reads until restores pause. */
  restoreReading(): void {
    this.restores.mark();
  }

  start(): void {
    for (const full of [false, true]) {
      const hours = full ? this.schedule.fullEveryHours : this.schedule.metadataEveryHours;
      if (!hours) continue;
      const check = () => void this.runIfDue(full).catch((err) => this.log?.error(`scheduled verify: ${(err as Error).message}`));
      const timer = setInterval(check, Math.min(hours * 3_600_000, 600_000));
      timer.unref();
      this.timers.push(timer);
      setTimeout(check, 5_000).unref();
    }
    const tick = setInterval(() => void this.worm.retention.refresh().catch((err) => this.log?.error(`retention clock: ${(err as Error).message}`)), 60_000);
    tick.unref();
    this.timers.push(tick);
  }

  /** The scheduled metadata or full verify, if its period has passed; whether it ran. */
  async runIfDue(full: boolean): Promise<boolean> {
    const hours = full ? this.schedule.fullEveryHours : this.schedule.metadataEveryHours;
    const key = full ? 'verify_last_full_ms' : 'verify_last_metadata_ms';
    const last = Number((await this.catalog.getMeta(key)) ?? this.sinceMs);
    if (!hours || Date.now() - last < hours * 3_600_000) return false;
    await this.catalog.setMeta(key, String(Date.now()));
    await this.run({ full });
    return true;
  }

  /** After a commit: the point's refs and the packs it uses, metadata only. */
  afterCommit(pointId: Buffer): void {
    if (!this.schedule.afterBackup) return;
    void this.run({ full: false, pointId }).catch((err) => this.log?.error(`verify after backup: ${(err as Error).message}`));
  }

  run(options: { full: boolean; pointId?: Buffer }): Promise<VerifyReport | undefined> {
    const next = this.queue.then(async () => {
      if (this.stopped) return undefined;
      const report = await verifyStore(this.catalog, this.store, { ...options, maxMiBps: options.full ? this.schedule.fullMaxMiBps : 0, beforeRead: () => this.restores.settled(), audit: this.worm.audit, actor: 'gateway' });
      if (report.findings.length) this.log?.error(`verify (${report.mode}${options.pointId ? ` of point ${options.pointId.toString('hex')}` : ''}): ${report.findings.length} problem(s); ${report.brokenPoints.length} point(s) broken`);
      return report;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.queue;
  }
}
