/**
 * Issue 4: pruning really frees space once retention has run out on the
 * retention clock — and only then: a point still under retention, and the
 * packs it uses, survive and restore exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, GATEWAY_CLI, backup, createSite, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { Rng, digestTree } from '../support/trees.js';

const DAY_NS = 86_400_000_000_000n;

describe('prune after expiry', () => {
  let site: Site;
  let state: string;
  const work = tempDir('prune');
  const shortLived = path.join(work, 'short');
  const longLived = path.join(work, 'long');
  let expiring: string;
  let kept: string;

  beforeAll(async () => {
    const rng = new Rng(21);
    for (const dir of [shortLived, longLived]) {
      fs.mkdirSync(dir);
      for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(dir, `f${i}`), rng.bytes(300_000));
    }
    site = await createSite();
    state = await enrollAgent(site);
    await runOk(GATEWAY_CLI, ['admin', 'add', '--dir', site.dir, '--name', 'alice', '--key-out', path.join(work, 'alice.key')]);
    await runOk(GATEWAY_CLI, ['admin', 'add', '--dir', site.dir, '--name', 'bob', '--key-out', path.join(work, 'bob.key')]);
    await runOk(GATEWAY_CLI, ['policy', 'set', '--dir', site.dir, '--keep-days', '1']);
    expiring = (await backup(state, [shortLived])).point;
    await runOk(GATEWAY_CLI, ['policy', 'set', '--dir', site.dir, '--keep-days', '30']);
    kept = (await backup(state, [longLived])).point;
    await site.gateway.stop();
  });
  afterAll(async () => { await site.gateway.stop(); });

  it('two admins free exactly the expired point and its packs; the rest restores', async () => {
    const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
    const { PackStore } = await import('../../gateway/dist/store/pack-store.js');
    const { openWorm } = await import('../../gateway/dist/retention/services.js');
    const catalog = await Catalog.open(path.join(site.dir, 'catalog.db'));
    const store = await PackStore.open(path.join(site.dir, 'store'));
    // Two days pass on a monotonic clock of another boot: the only way retention time advances.
    let offset = 0n;
    const time = { wallMs: () => Date.now(), monotonicNs: () => 1_000_000_000n + offset, bootId: () => 'test-boot' };
    const worm = await openWorm(site.dir, catalog, store, { time, actor: 'test' });
    const packsBefore = (await catalog.listPacks()).filter((p) => p.state === 'sealed');
    try {
      expect((await worm.pruner.plan()).points).toEqual([]);
      await worm.clock.now();
      offset = 2n * DAY_NS;
      const plan = await worm.pruner.plan();
      expect(plan.points).toEqual([expiring]);
      expect(plan.bytes).toBeGreaterThan(1_000_000);
      const request = await worm.pruner.request('alice');
      await expect(worm.pruner.approve('alice', request.id)).rejects.toThrow(/four-eyes/);
      const result = await worm.pruner.approve('bob', request.id);
      expect(result.pointsRemoved).toEqual([expiring]);
      expect(result.packsDeleted.length).toBeGreaterThan(0);
      expect(result.bytesFreed).toBe(plan.bytes);
      for (const hash of result.packsDeleted) expect(fs.existsSync(store.packPath(Buffer.from(hash, 'hex')))).toBe(false);
      const packsAfter = (await catalog.listPacks()).filter((p) => p.state === 'sealed');
      expect(packsAfter.length).toBe(packsBefore.length - result.packsDeleted.length);
    } finally {
      await catalog.close();
    }
    await site.gateway.start(site.gateway.port);
    const target = path.join(work, 'restored');
    await runOk(AGENT_CLI, ['restore', '--state', state, kept, '--to', target]);
    expect(digestTree(path.join(target, 'long'))).toEqual(digestTree(longLived));
    const gone = await run(AGENT_CLI, ['restore', '--state', state, expiring, '--to', path.join(work, 'gone')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/no restore point/);
    expect((await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir, '--verify'])).stdout).toMatch(/Audit chain intact/);
  });
});
