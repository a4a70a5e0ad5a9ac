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
import { StoreGuard } from './guard/store-guard.js';
import type { GatewayContext } from './ingest/agent-connection.js';
import type { FleetOptions, FleetService } from './fleet/fleet-service.js';
import { openWorm, finishDeletions, VerifyScheduler } from './retention/services.js';

export interface RunningGateway { ctx: GatewayContext; server: IngestServer; fleet?: FleetService; stop(): Promise<void> }

export async function openGateway(dir: string, log: Log = consoleLog()): Promise<GatewayContext> {
  const site = loadSite(dir);
  const catalog = await Catalog.open(site.paths.catalog);
  const store = await PackStore.open(site.paths.store);
  await recoverStore(store, catalog, log);
  const worm = await openWorm(dir, catalog, store, { log });
  await finishDeletions(catalog, store, log);
  return { site, catalog, store, log, worm };
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
      await catalog.recordPack({ hash, agentId: footer.agentId, size, entries: footer.entries, class: footer.retention?.class, retainUntil: footer.retention?.retainUntil }, Date.now());
      log.warn(`indexed sealed pack ${hash.toString('hex').slice(0, 16)}… that a crash left out of the catalog`);
    } catch (err) {
      log.error(`sealed pack ${hash.toString('hex')} is unreadable and stays out of the catalog: ${(err as Error).message}`);
    }
  }
}

/** `fleet`: start the fleet service (broker link, status, scheduler) too; see fleet/fleet-service.ts. */
export async function serveGateway(dir: string, host: string, port: number, log: Log = consoleLog(), fleetOptions?: FleetOptions): Promise<RunningGateway> {
  const ctx = await openGateway(dir, log);
  ctx.worm!.verifier = VerifyScheduler.fromSiteConfig(ctx.site.config, ctx.catalog, ctx.store as PackStore, ctx.worm!, log);
  ctx.worm!.verifier.start();
  ctx.guard = await StoreGuard.open(ctx.site.paths.store, ctx.store, ctx.worm?.clock, log);
  if (ctx.guard.status().protected) log.info(`kernel guard: re-sealed ${await ctx.guard.resealAll(ctx.catalog)} pack(s) still under retention`);
  else log.warn(`store ${ctx.guard.describe()}`);
  const server = await startIngestServer(ctx, host, port);
  // Loaded only here: the MQTT client and broker are large, and nothing else needs them.
  const fleet = fleetOptions ? await (await import('./fleet/fleet-service.js')).startFleetService(ctx, fleetOptions) : undefined;
  return {
    ctx,
    server,
    fleet,
    async stop() {
      await fleet?.close();
      await server.close();
      await ctx.worm?.verifier?.stop();
      ctx.guard?.close();
      ctx.store.closeReaders();
      await ctx.catalog.close();
    },
  };
}
