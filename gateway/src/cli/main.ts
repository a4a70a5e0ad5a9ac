#!/usr/bin/env -S node --initial-old-space-size=64
/**
 * @module `bulwark-gateway`: the site gateway's command line.
 *
 * The flag above lets the old generation reach 64 MiB before V8 first sizes
 * it by what survives. Without it, `serve` kept ~12 MiB live and V8 capped
 * the heap at ~28 MiB, so the stream of short-lived frame and socket buffers
 * of an upload set off a full collection every ~0.1 s: 42–48 of them in an
 * 837 MiB backup, 0.8 s of the gateway's 3.4–4.2 s of CPU. With it: 7, and
 * 2.5–3.0 s; peak memory 175–195 → 185–210 MiB. V8 reads it only at start-up.
 */
import { parseOptions, readSecret, runCommand, UsageError } from '@bulwark/proto';
import { requireDir } from './args.js';
import { initSite, loadSite, SiteError } from '../site/site.js';
import { Catalog } from '../catalog/catalog.js';
import { createToken, DEFAULT_TOKEN_TTL_MS } from '../site/tokens.js';
import { certFingerprint, pemToDer } from '../site/pki.js';
import { serveGateway } from '../gateway.js';
import { fleetCommands, FLEET_USAGE, FLEET_SERVE_OPTIONS, parseFleetServeOptions } from '../fleet/cli.js';
import { wormCommands, WORM_USAGE } from './worm-cli.js';

const USAGE = `Usage: bulwark-gateway <command> [options]

  init    --dir D [--restore-password-file F] [--name HOST]...
                                   create a site: CA, TLS certificate, recovery key, store, catalog
  token   --dir D [--ttl MINUTES]  print a one-time enrollment token (last line)
  serve   --dir D --listen HOST:PORT [--broker mqtts://HOST:PORT | --mqtt-listen HOST:PORT]
          [--mqtt-advertise URL] [--offline-after SECONDS]
                                   run the wss:// ingest server (mutual TLS 1.3) and the fleet service;
                                   without --broker an embedded MQTT broker listens on --mqtt-listen
                                   (default 127.0.0.1:8883, port 0 = any free port)
  revoke  --dir D AGENT            revoke an agent: it can no longer connect
${WORM_USAGE}${FLEET_USAGE}`;

type Handler = (args: string[]) => Promise<void>;

const commands: Record<string, Handler> = {
  async init(args) {
    const { values } = parseOptions(args, { dir: { type: 'string' }, 'restore-password-file': { type: 'string' }, name: { type: 'string', multiple: true } });
    const dir = requireDir(values.dir);
    const password = await readSecret(values['restore-password-file'], 'New restore password (held by the security admin): ', true);
    const config = await initSite(dir, password, values.name ?? []);
    console.log(`Created site ${config.siteId} in ${dir}.`);
    console.log('Keep the restore password safe: restores onto another host need it, and it cannot be recovered.');
  },

  async token(args) {
    const { values } = parseOptions(args, { dir: { type: 'string' }, ttl: { type: 'string' } });
    const site = loadSite(requireDir(values.dir));
    const ttlMinutes = values.ttl === undefined ? DEFAULT_TOKEN_TTL_MS / 60_000 : Number(values.ttl);
    if (!Number.isFinite(ttlMinutes) || ttlMinutes <= 0) throw new UsageError(`--ttl must be a positive number of minutes, not ${values.ttl}`);
    const catalog = await Catalog.open(site.paths.catalog);
    try {
      const { token, expiresMs } = await createToken(catalog, certFingerprint(pemToDer(site.ca.certPem)), ttlMinutes * 60_000);
      console.log(`One-time enrollment token, valid until ${new Date(expiresMs).toISOString()}:`);
      console.log(token);
    } finally {
      await catalog.close();
    }
  },

  async serve(args) {
    const { values } = parseOptions(args, { dir: { type: 'string' }, listen: { type: 'string' }, ...FLEET_SERVE_OPTIONS });
    const dir = requireDir(values.dir);
    const listen = values.listen ?? '127.0.0.1:7443';
    const m = /^(.*):(\d+)$/.exec(listen);
    if (!m) throw new UsageError(`--listen must be HOST:PORT, not ${listen}`);
    const host = m[1].replace(/^\[|\]$/g, '');
    const gateway = await serveGateway(dir, host, Number(m[2]), undefined, parseFleetServeOptions(values));
    console.log(`Bulwark gateway for ${gateway.ctx.site.config.siteId} listening on wss://${host.includes(':') ? `[${host}]` : host}:${gateway.server.port}`);
    console.log(`Store ${gateway.ctx.guard!.describe()}`);
    console.log(`Fleet broker ${gateway.fleet!.brokerUrl}${gateway.fleet!.embedded ? ' (embedded)' : ''}`);
    const stop = async (signal: string) => {
      console.log(`${signal}: stopping; sealing open packs`);
      await gateway.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  },

  async revoke(args) {
    const { values, positionals } = parseOptions(args, { dir: { type: 'string' } }, true);
    const site = loadSite(requireDir(values.dir));
    if (positionals.length !== 1) throw new UsageError('revoke takes exactly one agent id');
    const catalog = await Catalog.open(site.paths.catalog);
    try {
      const agent = await catalog.getAgent(positionals[0]);
      if (!agent) throw new UsageError(`no agent ${positionals[0]}: see \`bulwark-gateway agents --dir ${values.dir}\``);
      if (!(await catalog.revokeAgent(agent.id, Date.now()))) { console.log(`Agent ${agent.id} was already revoked.`); return; }
      console.log(`Revoked agent ${agent.id} (${agent.hostname}). Its points stay stored; it can no longer connect.`);
    } finally {
      await catalog.close();
    }
  },
};

Object.assign(commands, fleetCommands, wormCommands);


runCommand(commands, USAGE, process.argv.slice(2)).catch((err) => {
  if (err instanceof UsageError) { process.stderr.write(`bulwark-gateway: ${err.message}\n\n${USAGE}`); process.exit(2); }
  if (err instanceof SiteError) { process.stderr.write(`bulwark-gateway: ${err.message}\n`); process.exit(1); }
  process.stderr.write(`bulwark-gateway: ${(err as Error).message}\n`);
  process.exit(1);
});
