import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../catalog/catalog.js';
import { PackStore } from '../store/pack-store.js';
import { DEFAULT_VERIFY } from '../verify/config.js';
import { RestoreQuiet } from '../verify/restore-quiet.js';
import { openWorm, VerifyScheduler, type WormServices } from './services.js';

const HOUR_MS = 3_600_000;

describe('scheduled verification', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-verify-schedule-'));
  let catalog: Catalog;
  let store: PackStore;
  let worm: WormServices;

  beforeAll(async () => {
    // Removable afterwards: no immutable flag.
    store = await PackStore.open(path.join(dir, 'store'), { supported: false, set: async () => false, clear: async () => false });
    catalog = await Catalog.open(path.join(dir, 'catalog.db'));
    worm = await openWorm(dir, catalog, store);
    const writer = store.openPack('agent-a', { class: 'default', retainUntil: 30 * 86_400_000 });
    await writer.append(Array.from({ length: 4 }, () => ({ id: randomBytes(32), envelope: randomBytes(256 * 1024) })));
    await catalog.recordPack(await writer.seal(), Date.now());
  });
  afterAll(async () => {
    await catalog.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts each period from the site\'s creation until the first run, then from the last run', async () => {
    const schedule = { ...DEFAULT_VERIFY, metadataEveryHours: 24, fullEveryHours: 168 };
    const fresh = new VerifyScheduler(catalog, store, worm, schedule, undefined, Date.now() - HOUR_MS);
    expect(await fresh.runIfDue(true)).toBe(false);
    expect(await fresh.runIfDue(false)).toBe(false);
    expect(await catalog.getMeta('verify_last_full_ms')).toBeUndefined();

    const old = new VerifyScheduler(catalog, store, worm, schedule, undefined, Date.now() - 200 * HOUR_MS);
    expect(await old.runIfDue(true)).toBe(true);
    expect(Number(await catalog.getMeta('verify_last_full_ms'))).toBeGreaterThan(Date.now() - 60_000);
    // Just ran: not due again, whatever the site's age.
    expect(await old.runIfDue(true)).toBe(false);
    expect(await old.runIfDue(false)).toBe(true);
  });

  it('holds a full verify\'s reads while restores read, not a metadata verify', async () => {
    const scheduler = new VerifyScheduler(catalog, store, worm, DEFAULT_VERIFY);
    const idle = performance.now();
    expect((await scheduler.run({ full: true }))?.bytesHashed).toBeGreaterThan(1024 * 1024);
    expect(performance.now() - idle).toBeLessThan(900);

    // A restore reads every 200 ms for 1.2 s: the full verify starts hashing only once they have stopped for 1 s.
    const reading = setInterval(() => scheduler.restoreReading(), 200);
    scheduler.restoreReading();
    setTimeout(() => clearInterval(reading), 1200);
    const started = performance.now();
    const metadata = await scheduler.run({ full: false });
    expect(metadata?.packs).toBe(1);
    expect(performance.now() - started).toBeLessThan(900);
    const full = await scheduler.run({ full: true });
    expect(full?.findings).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
    clearInterval(reading);
  });
});

describe('restore quiet', () => {
  it('settles at once with no restore, and a quiet period after the last read', async () => {
    let now = 0;
    const quiet = new RestoreQuiet(50, () => now);
    await quiet.settled();
    quiet.mark();
    let settled = false;
    const waiting = quiet.settled().then(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 70));
    expect(settled).toBe(false); // the clock has not moved: still inside the quiet period
    now = 40;
    quiet.mark(); // another read: quiet until 90
    now = 89;
    await new Promise((r) => setTimeout(r, 70));
    expect(settled).toBe(false);
    now = 90;
    await waiting;
    expect(settled).toBe(true);
  });
});
