/**
 * Issue 4, must-holds 1, 2 and 4: every delete/modify path refuses a sealed,
 * unexpired item (CLI, the gateway's own store and catalog modules, the
 * file itself); moving the wall clock forward 10 years or back 1 year
 * expires and shortens nothing and is audited; prune or hold release
 * approved by the admin who requested it is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_CLI, backup, createSite, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { Rng } from '../support/trees.js';

const YEAR_MS = 365 * 86_400_000;

describe('WORM store, retention clock, four eyes', () => {
  let site: Site;
  let state: string;
  let point: string;
  const work = tempDir('worm');
  const keyA = path.join(work, 'alice.key');
  const keyB = path.join(work, 'bob.key');

  beforeAll(async () => {
    const source = path.join(work, 'source');
    fs.mkdirSync(source);
    const rng = new Rng(9);
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(source, `f${i}`), rng.bytes(400_000));
    site = await createSite();
    state = await enrollAgent(site);
    await runOk(GATEWAY_CLI, ['policy', 'set', '--dir', site.dir, '--keep-days', '7', '--daily', '14']);
    point = (await backup(state, [source])).point;
    await runOk(GATEWAY_CLI, ['admin', 'add', '--dir', site.dir, '--name', 'alice', '--key-out', keyA]);
    await runOk(GATEWAY_CLI, ['admin', 'add', '--dir', site.dir, '--name', 'bob', '--key-out', keyB]);
  });
  afterAll(async () => { await site.gateway.stop(); });

  async function pointsJson(): Promise<{ id: string; retainUntil: number; expiresInDays: number; held: boolean; holds: string[]; generations: string[]; state: string }[]> {
    return JSON.parse((await runOk(GATEWAY_CLI, ['points', '--dir', site.dir, '--json'])).stdout);
  }
  async function packFiles(): Promise<string[]> {
    const out: string[] = [];
    const root = path.join(site.dir, 'store', 'packs');
    for (const d of fs.readdirSync(root)) for (const f of fs.readdirSync(path.join(root, d))) out.push(path.join(root, d, f));
    return out;
  }
  /** The gateway's own modules, in this process, on the live site; `time` replaces the clock's time source. */
  async function openModules(time?: { wallMs(): number; monotonicNs(): bigint; bootId(): string }) {
    const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
    const { PackStore } = await import('../../gateway/dist/store/pack-store.js');
    const { openWorm } = await import('../../gateway/dist/retention/services.js');
    const catalog = await Catalog.open(path.join(site.dir, 'catalog.db'));
    const store = await PackStore.open(path.join(site.dir, 'store'));
    const worm = await openWorm(site.dir, catalog, store, { time, actor: 'test' });
    return { catalog, store, worm };
  }

  it('gives the point its retention: daily generation 14 days on the retention clock', async () => {
    const p = (await pointsJson()).find((x) => x.id === point)!;
    expect(p.generations).toEqual(['daily']);
    expect(p.expiresInDays).toBeGreaterThan(13.9);
    expect(p.expiresInDays).toBeLessThanOrEqual(14);
    expect(p.state).toBe('ok');
  });

  it('refuses every delete or modify path for sealed, unexpired items', async () => {
    const files = await packFiles();
    expect(files.length).toBeGreaterThan(0);
    // The file itself: read-only and, here (ext4, root), immutable — even root cannot write, rename or unlink it.
    for (const file of files) {
      expect(fs.statSync(file).mode & 0o222).toBe(0);
      expect(() => fs.appendFileSync(file, 'x')).toThrow(/EPERM|EACCES/);
      expect(() => fs.unlinkSync(file)).toThrow(/EPERM|EACCES/);
      expect(() => fs.renameSync(file, `${file}.moved`)).toThrow(/EPERM|EACCES/);
    }
    // The gateway's own store and catalog modules.
    const { catalog, store, worm } = await openModules();
    try {
      for (const file of files) {
        const hash = Buffer.from(path.basename(file, '.pack'), 'hex');
        await expect(store.deletePack(hash)).rejects.toThrow(/WORM: refusing .*(retained|retains it) for/);
      }
      await expect(worm.retention.deletePoint('test', Buffer.from(point, 'hex'))).rejects.toThrow(/WORM: refusing .*(retained|retains it) for/);
      await expect(catalog.deletePoint(Buffer.from(point, 'hex'), worm.retention.pointDeletionCheck(await worm.clock.now()))).rejects.toThrow(/WORM/);
      // A store with no retention gate refuses everything.
      const { PackStore } = await import('../../gateway/dist/store/pack-store.js');
      const bare = await PackStore.open(path.join(site.dir, 'store'));
      await expect(bare.deletePack(Buffer.from(path.basename(files[0], '.pack'), 'hex'))).rejects.toThrow(/no retention gate/);
    } finally { await catalog.close(); }
    // The CLI: a two-person prune of unexpired data deletes nothing.
    const request = JSON.parse((await runOk(GATEWAY_CLI, ['prune', 'request', '--dir', site.dir, '--admin-key-file', keyA, '--json'])).stdout);
    expect(request.plan.points).toEqual([]);
    expect(request.plan.packs).toEqual([]);
    const approved = JSON.parse((await runOk(GATEWAY_CLI, ['prune', 'approve', request.id, '--dir', site.dir, '--admin-key-file', keyB, '--json'])).stdout);
    expect(approved).toMatchObject({ pointsRemoved: [], packsDeleted: [], bytesFreed: 0 });
    expect((await packFiles()).sort()).toEqual(files.sort());
    expect((await pointsJson()).map((p) => p.id)).toContain(point);
    const audit = await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir]);
    expect(audit.stdout).toMatch(/worm\.refused/);
  });

  it('moving the wall clock 10 years forward or 1 year back expires and shortens nothing, and is audited', async () => {
    const before = (await pointsJson()).find((p) => p.id === point)!;
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    for (const shift of [10 * YEAR_MS, -YEAR_MS]) {
      const time = { wallMs: () => Date.now() + shift, monotonicNs: () => process.hrtime.bigint(), bootId: () => bootId };
      const { catalog, store, worm } = await openModules(time);
      try {
        const plan = await worm.pruner.plan();
        expect(plan.points).toEqual([]);
        expect(plan.packs).toEqual([]);
        const row = await catalog.getPoint(Buffer.from(point, 'hex'));
        expect(row!.retain_until).toBe(before.retainUntil);
        for (const file of await packFiles()) await expect(store.deletePack(Buffer.from(path.basename(file, '.pack'), 'hex'))).rejects.toThrow(/WORM/);
        await expect(worm.retention.deletePoint('test', Buffer.from(point, 'hex'))).rejects.toThrow(/WORM/);
        // Elapsed retention time moved by seconds, not years.
        expect(before.retainUntil - (await worm.clock.now())).toBeGreaterThan(13.9 * 86_400_000);
      } finally { await catalog.close(); }
      // The next reading with the real clock sees the jump back as well.
      const { catalog: c2, worm: w2 } = await openModules();
      await w2.clock.now();
      await c2.close();
    }
    const after = (await pointsJson()).find((p) => p.id === point)!;
    expect(after.retainUntil).toBe(before.retainUntil);
    expect(after.expiresInDays).toBeGreaterThan(before.expiresInDays - 0.01);
    const audit = JSON.parse((await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir, '--json'])).stdout) as { level: string; action: string; detail: { jumpMs: number } }[];
    const jumps = audit.filter((e) => e.action === 'clock.wall-jump');
    expect(jumps.every((e) => e.level === 'alert')).toBe(true);
    expect(jumps.some((e) => e.detail.jumpMs > 9 * YEAR_MS)).toBe(true);
    expect(jumps.some((e) => e.detail.jumpMs < -0.9 * YEAR_MS)).toBe(true);
    expect((await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir, '--verify'])).stdout).toMatch(/Audit chain intact/);
  });

  it('a reboot credits no downtime and is audited', async () => {
    const { catalog, worm } = await openModules({ wallMs: () => Date.now() + 30 * 86_400_000, monotonicNs: () => 5_000_000n, bootId: () => 'another-boot' });
    try {
      const before = await worm.clock.now();
      const row = (await catalog.db.get('SELECT elapsed_ms FROM retention_clock')) as { elapsed_ms: number };
      expect(row.elapsed_ms).toBe(before);
      expect((await pointsJson()).find((p) => p.id === point)!.expiresInDays).toBeGreaterThan(13.9);
    } finally { await catalog.close(); }
    const audit = await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir]);
    expect(audit.stdout).toMatch(/clock\.reboot .*downtime not counted/);
  });

  it('refuses a prune or a hold release approved by the admin who requested it', async () => {
    const request = JSON.parse((await runOk(GATEWAY_CLI, ['prune', 'request', '--dir', site.dir, '--admin-key-file', keyA, '--json'])).stdout);
    const same = await run(GATEWAY_CLI, ['prune', 'approve', request.id, '--dir', site.dir, '--admin-key-file', keyA]);
    expect(same.code).not.toBe(0);
    expect(same.stderr).toMatch(/four-eyes rule: alice requested prune .* cannot approve it/);
    const list = JSON.parse((await runOk(GATEWAY_CLI, ['prune', 'list', '--dir', site.dir, '--json'])).stdout) as { id: string; approved_by: string | null }[];
    expect(list.find((r) => r.id === request.id)!.approved_by).toBeNull();
    const noKey = await run(GATEWAY_CLI, ['prune', 'approve', request.id, '--dir', site.dir]);
    expect(noKey.stderr).toMatch(/--admin-key-file/);

    // Legal hold: one admin places; releasing needs a second.
    const placed = await runOk(GATEWAY_CLI, ['hold', 'place', '--dir', site.dir, '--point', point, '--reason', 'case 42', '--admin-key-file', keyA]);
    const holdId = /Placed (hold-[0-9a-f]+)/.exec(placed.stdout)![1];
    const held = (await pointsJson()).find((p) => p.id === point)!;
    expect(held.held).toBe(true);
    expect(held.holds).toEqual([holdId]);
    const release = await runOk(GATEWAY_CLI, ['hold', 'release', holdId, '--dir', site.dir, '--admin-key-file', keyA]);
    const reqId = /as (hrq-[0-9a-f]+)/.exec(release.stdout)![1];
    const selfApprove = await run(GATEWAY_CLI, ['hold', 'approve', reqId, '--dir', site.dir, '--admin-key-file', keyA]);
    expect(selfApprove.code).not.toBe(0);
    expect(selfApprove.stderr).toMatch(/four-eyes rule/);
    expect((await pointsJson()).find((p) => p.id === point)!.held).toBe(true);
    await runOk(GATEWAY_CLI, ['hold', 'approve', reqId, '--dir', site.dir, '--admin-key-file', keyB]);
    expect((await pointsJson()).find((p) => p.id === point)!.held).toBe(false);
    const audit = await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir]);
    expect(audit.stdout).toMatch(/alert +alice prune\.refused/);
    expect(audit.stdout).toMatch(/alert +alice hold\.release-refused/);
  });
});
