/**
 * Flow control must not depend on the two sides' sizes agreeing: an agent
 * whose window of unacknowledged blobs is smaller than the gateway's pack
 * still finishes (it asks the gateway to seal), and what it sent is stored.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSite, enrollAgent, type Site } from '../support/cluster.js';

describe('upload window smaller than a pack', () => {
  let site: Site;
  let stateDir: string;
  beforeAll(async () => { site = await createSite(); stateDir = await enrollAgent(site); });
  afterAll(async () => { await site.gateway.stop(); });

  it('finishes and every blob is acknowledged', async () => {
    const { Uploader } = await import('../../agent/dist/upload/uploader.js');
    const { connectAgent } = await import('../../agent/dist/jobs/connect.js');
    const { loadState } = await import('../../agent/dist/state/state.js');
    const state = loadState(stateDir);
    // 4 MiB window against the gateway's 16 MiB packs: without a seal request no pack would ever fill.
    const uploader = new Uploader(() => connectAgent(state), 4 * 1024 * 1024);
    await uploader.start();
    const ids: Buffer[] = [];
    for (let i = 0; i < 24; i++) {
      const id = crypto.randomBytes(32);
      ids.push(id);
      await uploader.add([{ id, envelope: crypto.randomBytes(1024 * 1024) }]);
    }
    await uploader.finish();
    uploader.close();
    expect(uploader.stats.blobsSent).toBe(24);
    const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
    const catalog = await Catalog.open(`${site.dir}/catalog.db`);
    try {
      expect(await catalog.missingBlobs(state.config.agentId, ids)).toEqual([]);
    } finally {
      await catalog.close();
    }
  }, 60_000);
});
