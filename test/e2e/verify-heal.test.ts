/**
 * Issue 4, must-hold 3: flip one byte in a pack, truncate a pack, remove a
 * pack, corrupt a catalog row (protection lowered by the test). Metadata
 * verify finds the structural cases, full verify finds all; the points are
 * marked broken, and the next backup of the source heals the chain
 * (proved by restore and by a clean verify).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, GATEWAY_CLI, backup, createSite, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { Rng, digestTree } from '../support/trees.js';

interface Report { findings: { object: string; problem: string }[]; brokenPoints: string[]; healedPoints: string[]; damagedPacks: string[] }

describe('verification finds damage and the next backup heals it', () => {
  let site: Site;
  let state: string;
  const work = tempDir('heal');
  const source = path.join(work, 'source');
  const rng = new Rng(44);

  beforeAll(async () => {
    fs.mkdirSync(source);
    site = await createSite();
    // Only on-demand verification here, so the scheduled runs inside serve cannot race the assertions.
    await site.gateway.stop();
    const configFile = path.join(site.dir, 'site.json');
    fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), verify: { metadataEveryHours: 0, fullEveryHours: 0 } }));
    await site.gateway.start(site.gateway.port);
    state = await enrollAgent(site);
  });
  /** Points that lost blobs only they referenced (their own manifest): they stay broken, which is the truth. */
  const stale = new Set<string>();
  const unexpected = (r: Report) => r.findings.filter((f) => !stale.has(f.object.replace(/^point /, '')));
  afterAll(async () => { await site.gateway.stop(); });

  async function newestPack(): Promise<{ file: string; seq: number; hash: string }> {
    const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
    const catalog = await Catalog.open(path.join(site.dir, 'catalog.db'));
    try {
      const row = (await catalog.db.get('SELECT seq, hash FROM packs WHERE size > 100000 ORDER BY seq DESC LIMIT 1')) as { seq: number; hash: Buffer };
      const hex = row.hash.toString('hex');
      return { file: path.join(site.dir, 'store', 'packs', hex.slice(0, 2), `${hex}.pack`), seq: row.seq, hash: hex };
    } finally { await catalog.close(); }
  }
  function lowerProtection(file: string): void {
    execFileSync('chattr', ['-i', file]);
    fs.chmodSync(file, 0o644);
  }
  async function verify(full: boolean): Promise<{ code: number; report: Report }> {
    const r = await run(GATEWAY_CLI, ['verify', '--dir', site.dir, '--json', ...(full ? ['--full'] : [])]);
    return { code: r.code, report: JSON.parse(r.stdout) as Report };
  }
  async function points(): Promise<{ id: string; state: string }[]> {
    return JSON.parse((await runOk(GATEWAY_CLI, ['points', '--dir', site.dir, '--json'])).stdout);
  }

  const cases: { name: string; structural: boolean; damage: (p: { file: string; seq: number }) => Promise<void> }[] = [
    { name: 'one flipped byte', structural: false, damage: async ({ file }) => { lowerProtection(file); const fd = fs.openSync(file, 'r+'); const b = Buffer.alloc(1); fs.readSync(fd, b, 0, 1, 1000); b[0] ^= 0x20; fs.writeSync(fd, b, 0, 1, 1000); fs.closeSync(fd); } },
    { name: 'a truncated pack', structural: true, damage: async ({ file }) => { lowerProtection(file); fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2)); } },
    { name: 'a removed pack', structural: true, damage: async ({ file }) => { lowerProtection(file); fs.unlinkSync(file); } },
    {
      name: 'a corrupt catalog row', structural: true, damage: async ({ seq }) => {
        const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
        const catalog = await Catalog.open(path.join(site.dir, 'catalog.db'));
        try {
          const one = (await catalog.db.get('SELECT agent_id, id FROM blobs WHERE pack_seq = ? LIMIT 1', [seq])) as { agent_id: string; id: Buffer };
          await catalog.db.run('UPDATE blobs SET offset = offset + 1 WHERE agent_id = ? AND id = ?', [one.agent_id, one.id]);
        } finally { await catalog.close(); }
      },
    },
  ];

  for (const [round, c] of cases.entries()) {
    it(`finds ${c.name}, marks the point broken, and heals on the next backup`, async () => {
      const dir = path.join(source, `round-${round}`);
      fs.mkdirSync(dir);
      for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(dir, `f${i}`), i % 2 ? rng.bytes(300_000 + rng.int(500_000)) : rng.text(300_000));
      const first = await backup(state, [source]);
      expect(unexpected((await verify(true)).report)).toEqual([]);
      const pack = await newestPack();
      await c.damage(pack);

      const meta = await run(GATEWAY_CLI, ['verify', '--dir', site.dir, '--json', '--dry-run']);
      const metaReport = JSON.parse(meta.stdout) as Report;
      if (c.structural) {
        expect(meta.code).toBe(3);
        expect(metaReport.damagedPacks).toContain(pack.hash);
      } else {
        // Lowering the protection is itself seen (seal state); the flipped byte needs the full re-hash.
        expect(metaReport.damagedPacks).toEqual([]);
        expect(metaReport.findings).toEqual([{ object: `pack ${pack.hash}`, problem: 'is writable: a sealed pack must be read-only' }]);
      }
      const full = await verify(true);
      expect(full.code).toBe(3);
      expect(full.report.damagedPacks).toContain(pack.hash);
      expect(full.report.brokenPoints).toContain(first.point);
      expect((await points()).find((p) => p.id === first.point)?.state).toBe('broken');
      const audit = await runOk(GATEWAY_CLI, ['audit', '--dir', site.dir]);
      expect(audit.stdout).toMatch(/alert +\S+ verify\.pack-damaged/);

      // The next backup re-sends what is missing; the new point and, here, the old one verify clean.
      const healed = await backup(state, [source]);
      expect(healed.blobsSent).toBeGreaterThan(0);
      const after = await verify(true);
      const states = await points();
      expect(states.find((p) => p.id === healed.point)?.state).toBe('ok');
      // The damaged point heals too unless the damage took blobs only it used (its own manifest, which no later backup re-creates).
      if (states.find((p) => p.id === first.point)?.state === 'ok') expect(after.report.healedPoints).toContain(first.point);
      else {
        expect(after.report.findings.find((f) => f.object === `point ${first.point}`)?.problem).toMatch(/still broken: \d+ referenced blob\(s\) are not stored/);
        stale.add(first.point);
      }
      expect(unexpected(after.report)).toEqual([]);
      expect(after.report.damagedPacks).toEqual([]);
      const target = path.join(work, `restored-${round}`);
      await runOk(AGENT_CLI, ['restore', '--state', state, healed.point, '--to', target]);
      expect(digestTree(path.join(target, 'source'))).toEqual(digestTree(source));
    });
  }
});
