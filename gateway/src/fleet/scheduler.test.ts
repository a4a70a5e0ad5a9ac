import { describe, expect, it } from 'vitest';
import { Db } from '../catalog/sqlite.js';
import { FleetStore } from './fleet-store.js';
import { Scheduler, jitterFor, latestDueSlot, slotDueMs, type Clock } from './scheduler.js';
import { signCommand } from './commands.js';
import { createSigningKey } from '../keys/signing.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup(period = 60_000, jitter = 10_000) {
  const store = await FleetStore.open(await Db.open(':memory:'));
  const clock = { t: 1_000_000 } as { t: number } & Clock;
  clock.now = () => clock.t;
  const key = createSigningKey();
  const scheduler = new Scheduler(store, (agent, action, ttl) => signCommand(key, 'site-x', agent, action, { ttlMs: ttl, nowMs: clock.t }), clock, quiet, () => undefined, { baseMs: 1000, maxAttempts: 3, capMs: 10_000 });
  await store.upsertPolicy({ id: 'p', paths: '["/data"]', period_ms: period, jitter_ms: jitter, anchor_ms: clock.t, updated_ms: clock.t });
  await store.assign('p', 'agt-a', 0);
  return { store, clock, scheduler };
}

describe('schedule slots', () => {
  const s = { id: 'p', period_ms: 60_000, jitter_ms: 10_000, anchor_ms: 0 };
  it('puts jitter within bounds and keeps it stable', () => {
    for (let k = 1; k < 50; k++) {
      const j = jitterFor(s, 'agt-a', k);
      expect(j).toBeGreaterThanOrEqual(0);
      expect(j).toBeLessThanOrEqual(10_000);
      expect(jitterFor(s, 'agt-a', k)).toBe(j);
    }
  });
  it('finds the latest due slot', () => {
    expect(latestDueSlot(s, 'agt-a', 0)).toBe(0);
    expect(latestDueSlot(s, 'agt-a', slotDueMs(s, 'agt-a', 3))).toBe(3);
    expect(latestDueSlot(s, 'agt-a', slotDueMs(s, 'agt-a', 3) - 1)).toBe(2);
  });
});

describe('Scheduler', () => {
  it('runs each slot once, on time', async () => {
    const { store, clock, scheduler } = await setup();
    await scheduler.tick();
    expect(await store.listRuns()).toHaveLength(0);
    clock.t += 60_000 + 10_001;
    await scheduler.tick();
    await scheduler.tick();
    const runs = await store.listRuns();
    expect(runs.map((r) => r.slot)).toEqual([1]);
    expect((await store.getCommand(runs[0].command_id))?.state).toBe('pending');
  });

  it('collapses missed slots into one catch-up run', async () => {
    const { store, clock, scheduler } = await setup();
    clock.t += 5 * 60_000 + 10_001;
    await scheduler.tick();
    await scheduler.tick();
    expect((await store.listRuns()).map((r) => r.slot)).toEqual([5]);
  });

  it('retries a failed run with back-off, up to the limit', async () => {
    const { store, clock, scheduler } = await setup(60_000, 0);
    clock.t += 60_000;
    await scheduler.tick();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const open = (await store.listRuns()).find((r) => r.state === 'sent')!;
      expect(open.attempt).toBe(attempt);
      await scheduler.finished(open.command_id, false, 'disk full');
      clock.t += 999 * 2 ** (attempt - 1);
      await scheduler.tick();
      expect((await store.listRuns()).filter((r) => r.state === 'sent')).toHaveLength(0);
      clock.t += 2 ** (attempt - 1);
      await scheduler.tick();
    }
    const runs = await store.listRuns();
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(runs.every((r) => r.slot === 1)).toBe(true);
  });
});
