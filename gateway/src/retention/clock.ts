/**
 * @module The retention clock (FORMAT.md "Retention clock"). Retention time
 * accrues only from the monotonic clock and is persisted in the catalog, so
 * setting the wall clock forward or back can neither expire nor shorten
 * anything. A wall-clock jump (wall delta and monotonic delta disagree by
 * more than a minute) is audited and alerted. After a reboot the monotonic
 * clock restarts: the downtime is not credited (retention only gets longer).
 * Every retain-until value in the store is in retention-clock milliseconds.
 */
import fs from 'node:fs';
import type { Db } from '../catalog/sqlite.js';
import type { AuditInput } from '../audit/audit-log.js';

/** Where time comes from; tests inject their own. */
export interface TimeSource {
  wallMs(): number;
  /** CLOCK_MONOTONIC: shared by every process of one boot. */
  monotonicNs(): bigint;
  bootId(): string;
}

let cachedBootId: string | undefined;
export const systemTime: TimeSource = {
  wallMs: () => Date.now(),
  monotonicNs: () => process.hrtime.bigint(),
  bootId: () => {
    if (cachedBootId === undefined) {
      try { cachedBootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { cachedBootId = 'unknown-boot'; }
    }
    return cachedBootId;
  },
};

/** Wall and monotonic deltas may drift apart by this much before it is called a jump. */
export const WALL_JUMP_TOLERANCE_MS = 60_000;
export const DAY_MS = 86_400_000;

interface ClockRow { boot_id: string; mono_ns: string; elapsed_ms: number; wall_ms: number }
export interface ClockReading { elapsedMs: number; wallMs: number }

export interface AuditSink { append(entry: AuditInput): Promise<unknown> }

export class RetentionClock {
  /** This process's last reading, for the synchronous `current()`. */
  private anchor?: { elapsedMs: number; monoNs: bigint; boot: string };

  constructor(private readonly db: Db, readonly time: TimeSource = systemTime, private readonly audit?: AuditSink, private readonly actor = 'gateway') {}

  static readonly SCHEMA = `CREATE TABLE IF NOT EXISTS retention_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1), boot_id TEXT NOT NULL, mono_ns TEXT NOT NULL, elapsed_ms INTEGER NOT NULL, wall_ms INTEGER NOT NULL)`;

  /** Advance the persisted clock to now and return the elapsed retention time (ms). */
  async now(): Promise<number> {
    const events: AuditInput[] = [];
    const elapsed = await this.db.transaction(async () => {
      const wall = this.time.wallMs();
      const mono = this.time.monotonicNs();
      const boot = this.time.bootId();
      const row = await this.db.get<ClockRow>('SELECT boot_id, mono_ns, elapsed_ms, wall_ms FROM retention_clock WHERE id = 1');
      if (!row) {
        await this.db.run('INSERT INTO retention_clock(id, boot_id, mono_ns, elapsed_ms, wall_ms) VALUES (1, ?, ?, 0, ?)', [boot, mono.toString(), wall]);
        events.push({ actor: this.actor, action: 'clock.start', object: 'retention-clock', detail: { bootId: boot, wall: new Date(wall).toISOString() } });
        this.anchor = { elapsedMs: 0, monoNs: mono, boot };
        return 0;
      }
      const lastMono = BigInt(row.mono_ns);
      let elapsed = row.elapsed_ms;
      let newMono = mono;
      const wallDelta = wall - row.wall_ms;
      if (row.boot_id === boot && mono >= lastMono) {
        const monoMs = Number((mono - lastMono) / 1_000_000n);
        elapsed += monoMs;
        newMono = lastMono + BigInt(monoMs) * 1_000_000n; // carry the sub-millisecond rest
        if (Math.abs(wallDelta - monoMs) > WALL_JUMP_TOLERANCE_MS) {
          events.push({
            level: 'alert', actor: this.actor, action: 'clock.wall-jump', object: 'retention-clock',
            detail: { jumpMs: wallDelta - monoMs, from: new Date(row.wall_ms + monoMs).toISOString(), to: new Date(wall).toISOString(), effect: 'none: retention counts monotonic time only' },
          });
        }
      } else {
        events.push({ level: 'warn', actor: this.actor, action: 'clock.reboot', object: 'retention-clock', detail: { previousBoot: row.boot_id, bootId: boot, wallSinceLastTickMs: wallDelta, effect: 'downtime not counted' } });
        if (wallDelta < -WALL_JUMP_TOLERANCE_MS) {
          events.push({ level: 'alert', actor: this.actor, action: 'clock.wall-jump', object: 'retention-clock', detail: { jumpMs: wallDelta, from: new Date(row.wall_ms).toISOString(), to: new Date(wall).toISOString(), acrossReboot: true, effect: 'none: retention counts monotonic time only' } });
        }
      }
      await this.db.run('UPDATE retention_clock SET boot_id = ?, mono_ns = ?, elapsed_ms = ?, wall_ms = ? WHERE id = 1', [boot, newMono.toString(), elapsed, wall]);
      this.anchor = { elapsedMs: elapsed, monoNs: newMono, boot };
      return elapsed;
    });
    for (const event of events) await this.audit?.append(event);
    return elapsed;
  }

  /** Elapsed retention time without touching the catalog: the last reading of this process plus monotonic time since. */
  current(): number {
    const a = this.anchor;
    if (!a) throw new Error('retention clock not read yet: call now() first');
    const mono = this.time.monotonicNs();
    if (this.time.bootId() !== a.boot || mono < a.monoNs) return a.elapsedMs;
    return a.elapsedMs + Number((mono - a.monoNs) / 1_000_000n);
  }

  /** Best estimate of the wall date at which a retention time is reached (display only). */
  estimateWall(retentionMs: number, nowElapsed = this.current()): Date {
    return new Date(this.time.wallMs() + (retentionMs - nowElapsed));
  }
}
