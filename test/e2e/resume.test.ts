/**
 * Must-hold 3: cut the connection mid-upload; the agent resumes without
 * re-sending blobs the gateway acknowledged (bytes counted on the wire).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, backup, createSite, newToken, runOk, tempDir, type Site } from '../support/cluster.js';
import { CuttingProxy } from '../support/cutting-proxy.js';
import { Rng, digestTree } from '../support/trees.js';

const DATA_BYTES = 80 * 1024 * 1024;

describe('resume after a cut connection', () => {
  let site: Site;
  let proxy: CuttingProxy;
  let state: string;
  const work = tempDir('resume');
  const source = path.join(work, 'source');

  beforeAll(async () => {
    site = await createSite();
    proxy = new CuttingProxy(site.gateway.port);
    await proxy.start();
    state = path.join(work, 'state');
    await runOk(AGENT_CLI, ['enroll', '--state', state, '--gateway', `wss://127.0.0.1:${proxy.port}`, '--token', await newToken(site.dir)]);
    fs.mkdirSync(source);
    const rng = new Rng(3);
    // Incompressible, so bytes on the wire track data bytes one to one.
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(source, `f${i}.bin`), rng.bytes(DATA_BYTES / 40));
  });
  afterAll(async () => { await proxy.close(); await site.gateway.stop(); });

  it('re-sends nothing the gateway acknowledged, twice over', async () => {
    proxy.upstreamBytes = 0;
    proxy.cutAtBytes = DATA_BYTES * 0.35;
    const cut = setInterval(() => { if (proxy.cuts === 1 && proxy.cutAtBytes === Infinity && proxy.upstreamBytes > DATA_BYTES * 0.7) proxy.cutAtBytes = proxy.upstreamBytes + 1; }, 5);
    const result = await backup(state, [source]);
    clearInterval(cut);
    expect(proxy.cuts).toBe(2);
    expect(result.reconnects).toBe(2);
    // A blob the gateway already held, acknowledged or not, would land in a second pack if it were sent again.
    const { PackStore } = await import('../../gateway/dist/store/pack-store.js');
    const store = await PackStore.open(path.join(site.dir, 'store'));
    const stored = new Map<string, number>();
    for (const hash of await store.listSealedPacks()) {
      for (const entry of (await store.readFooter(hash)).entries) stored.set(entry.id.toString('hex'), (stored.get(entry.id.toString('hex')) ?? 0) + 1);
    }
    expect([...stored.values()].filter((n) => n > 1)).toEqual([]);
    // On the wire, each cut may cost only what was in flight: socket buffers, not acknowledged data.
    const overhead = proxy.upstreamBytes - DATA_BYTES;
    expect(overhead).toBeLessThan(proxy.cuts * 12 * 1024 * 1024 + 0.02 * DATA_BYTES);
    const target = path.join(work, 'restored');
    await runOk(AGENT_CLI, ['restore', '--state', state, result.point, '--to', target]);
    expect(digestTree(path.join(target, 'source'))).toEqual(digestTree(source));
  });
});
