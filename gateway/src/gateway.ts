/**
 * @module A running gateway: opens the site, repairs what a crash left, and
 * serves agents. Used by `bulwark-gateway serve` and by tests in-process.
 */
import fs from 'node:fs';
import { loadSite } from './site/site.js';
import { Catalog } from './catalog/catalog.js';
import { PackStore } from './store/pack-store.js';
import { startIngestServer, type IngestServer } from './ingest/server.js';
import { consoleLog, type Log } from './log/log.js';
import type { GatewayContext } from './ingest/agent-connection.js';

export interface RunningGateway { ctx: GatewayContext; server: IngestServer; stop(): Promise<void> }

export async function openGateway(dir: string, log: Log = consoleLog()): Promise<GatewayContext> {
  const site = loadSite(dir);
  const catalog = await Catalog.open(site.paths.catalog);
  const store = await PackStore.open(site.paths.store);
  await recoverStore(store, catalog, log);
  return { site, catalog, store, log };
}

/** After a crash: drop unsealed packs, index sealed packs the catalog missed. */
export async function recoverStore(store: PackStore, catalog: Catalog, log: Log): Promise<void> {
  const discarded = await store.discardIncoming();
  if (discarded > 0) log.warn(`discarded ${discarded} unsealed pack(s) left by an interrupted upload (never acknowledged)`);
  const known = new Set((await catalog.listPacks()).map((p) => p.hash.toString('hex')));
  for (const hash of await store.listSealedPacks()) {
    if (known.has(hash.toString('hex'))) continue;
    try {
      const footer = await store.readFooter(hash);
      if (!footer.hash.equals(hash)) throw new Error('footer hash does not match the file name');
      const size = fs.statSync(store.packPath(hash)).size;
      await catalog.recordPack({ hash, agentId: footer.agentId, size, entries: footer.entries }, Date.now());
      log.warn(`indexed sealed pack ${hash.toString('hex').slice(0, 16)}… that a crash left out of the catalog`);
    } catch (err) {
      log.error(`sealed pack ${hash.toString('hex')} is unreadable and stays out of the catalog: ${(err as Error).message}`);
    }
  }
}

export async function serveGateway(dir: string, host: string, port: number, log: Log = consoleLog()): Promise<RunningGateway> {
  const ctx = await openGateway(dir, log);
  const server = await startIngestServer(ctx, host, port);
  return {
    ctx,
    server,
    async stop() {
      await server.close();
      ctx.store.closeReaders();
      await ctx.catalog.close();
    },
  };
}
