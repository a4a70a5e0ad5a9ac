import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Db } from '../catalog/sqlite.js';
import { RetentionClock, type TimeSource } from './clock.js';
import { AuditLog, readAudit } from '../audit/audit-log.js';

class FakeTime implements TimeSource {
  wall = Date.UTC(2026, 0, 1);
  mono = 1_000_000_000n;
  boot = 'boot-1';
  wallMs() { return this.wall; }
  monotonicNs() { return this.mono; }
  bootId() { return this.boot; }
  advance(ms: number) { this.wall += ms; this.mono += BigInt(ms) * 1_000_000n; }
}

async function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-clock-'));
  const db = await Db.open(path.join(dir, 'c.db'));
  await db.exec(RetentionClock.SCHEMA);
  const time = new FakeTime();
  const audit = new AuditLog(path.join(dir, 'audit.log'), db, undefined, () => time.wallMs());
  return { db, time, audit, clock: new RetentionClock(db, time, audit), file: path.join(dir, 'audit.log') };
}

describe('RetentionClock', () => {
  it('counts monotonic time only; wall jumps change nothing and are alerts', async () => {
    const { time, clock, file } = await setup();
    expect(await clock.now()).toBe(0);
    time.advance(3_600_000);
    expect(await clock.now()).toBe(3_600_000);
    time.wall += 10 * 365 * 86_400_000; // wall forward 10 years
    expect(await clock.now()).toBe(3_600_000);
    time.wall -= 11 * 365 * 86_400_000; // and back past where it was
    time.advance(1000);
    expect(await clock.now()).toBe(3_601_000);
    const { entries, problems } = readAudit(file);
    expect(problems).toEqual([]);
    const jumps = entries.filter((e) => e.action === 'clock.wall-jump');
    expect(jumps.map((e) => e.level)).toEqual(['alert', 'alert']);
  });

  it('credits no downtime across a reboot, and a second process continues the same clock', async () => {
    const { db, time, audit, clock, file } = await setup();
    await clock.now();
    time.advance(60_000);
    const other = new RetentionClock(db, time, audit); // another process, same boot
    expect(await other.now()).toBe(60_000);
    time.advance(5_000);
    expect(await clock.now()).toBe(65_000);
    time.boot = 'boot-2';
    time.mono = 42n;
    time.wall += 86_400_000;
    expect(await clock.now()).toBe(65_000);
    time.advance(1000);
    expect(await clock.now()).toBe(66_000);
    expect(readAudit(file).entries.some((e) => e.action === 'clock.reboot')).toBe(true);
  });

  it('the audit chain shows an edited entry', async () => {
    const { time, clock, file } = await setup();
    await clock.now();
    time.wall += 365 * 86_400_000;
    await clock.now();
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"alert"', '"info"'));
    expect(readAudit(file).problems.join('\n')).toMatch(/hash does not match/);
  });
});
