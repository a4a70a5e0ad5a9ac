#!/usr/bin/env node
/**
 * @module `bulwark-gateway`: the site gateway's command line.
 */
import { parseArgs } from 'node:util';
import { readSecret, UsageError } from '@bulwark/proto';
import { initSite, loadSite, SiteError } from '../site/site.js';
import { Catalog } from '../catalog/catalog.js';
import { createToken, DEFAULT_TOKEN_TTL_MS } from '../site/tokens.js';
import { certFingerprint, pemToDer } from '../site/pki.js';
import { serveGateway } from '../gateway.js';
import { PackStore } from '../store/pack-store.js';
import { verifyStore } from '../verify/verify.js';

const USAGE = `Usage: bulwark-gateway <command> [options]

  init    --dir D [--restore-password-file F] [--name HOST]...
                                   create a site: CA, TLS certificate, recovery key, store, catalog
  token   --dir D [--ttl MINUTES]  print a one-time enrollment token (last line)
  serve   --dir D --listen HOST:PORT
                                   run the wss:// ingest server (mutual TLS 1.3)
  agents  --dir D [--json]         list enrolled agents
  revoke  --dir D AGENT            revoke an agent: it can no longer connect
  points  --dir D [--json]         list restore points
  verify  --dir D [--full] [--json]
                                   check catalog, pack footers, seals and Merkle roots;
                                   --full also re-hashes every pack
`;

type Handler = (args: string[]) => Promise<void>;

function options<T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>>(args: string[], spec: T, positionals = false) {
  try {
    return parseArgs({ args, options: spec, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function requireDir(dir: string | undefined): string {
  if (!dir) throw new UsageError('--dir D is required: the site directory');
  return dir;
}

const commands: Record<string, Handler> = {
  async init(args) {
    const { values } = options(args, { dir: { type: 'string' }, 'restore-password-file': { type: 'string' }, name: { type: 'string', multiple: true } });
    const dir = requireDir(values.dir);
    const password = await readSecret(values['restore-password-file'], 'New restore password (held by the security admin): ', true);
    const config = await initSite(dir, password, values.name ?? []);
    console.log(`Created site ${config.siteId} in ${dir}.`);
    console.log('Keep the restore password safe: restores onto another host need it, and it cannot be recovered.');
  },

  async token(args) {
    const { values } = options(args, { dir: { type: 'string' }, ttl: { type: 'string' } });
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
    const { values } = options(args, { dir: { type: 'string' }, listen: { type: 'string' } });
    const dir = requireDir(values.dir);
    const listen = values.listen ?? '127.0.0.1:7443';
    const m = /^(.*):(\d+)$/.exec(listen);
    if (!m) throw new UsageError(`--listen must be HOST:PORT, not ${listen}`);
    const host = m[1].replace(/^\[|\]$/g, '');
    const gateway = await serveGateway(dir, host, Number(m[2]));
    console.log(`Bulwark gateway for ${gateway.ctx.site.config.siteId} listening on wss://${host.includes(':') ? `[${host}]` : host}:${gateway.server.port}`);
    const stop = async (signal: string) => {
      console.log(`${signal}: stopping; sealing open packs`);
      await gateway.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  },

  async agents(args) {
    const { values } = options(args, { dir: { type: 'string' }, json: { type: 'boolean' } });
    const site = loadSite(requireDir(values.dir));
    const catalog = await Catalog.open(site.paths.catalog);
    try {
      const agents = await catalog.listAgents();
      const points = await catalog.listPoints();
      const rows = agents.map((a) => {
        const own = points.filter((p) => p.agent_id === a.id);
        return {
          id: a.id, hostname: a.hostname, enrolled: new Date(a.enrolled_ms).toISOString(),
          revoked: a.revoked_ms ? new Date(a.revoked_ms).toISOString() : null,
          certificateExpires: new Date(a.cert_not_after_ms).toISOString(),
          points: own.length, lastPoint: own.length ? new Date(own[own.length - 1].created_ms).toISOString() : null,
        };
      });
      if (values.json) { console.log(JSON.stringify(rows, null, 2)); return; }
      if (rows.length === 0) { console.log('No agents enrolled yet: run `bulwark-gateway token` and enroll one.'); return; }
      console.log(table(['AGENT', 'HOST', 'STATE', 'POINTS', 'LAST POINT'], rows.map((r) => [r.id, r.hostname, r.revoked ? `revoked ${r.revoked}` : 'active', String(r.points), r.lastPoint ?? '-'])));
    } finally {
      await catalog.close();
    }
  },

  async revoke(args) {
    const { values, positionals } = options(args, { dir: { type: 'string' } }, true);
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

  async points(args) {
    const { values } = options(args, { dir: { type: 'string' }, json: { type: 'boolean' } });
    const site = loadSite(requireDir(values.dir));
    const catalog = await Catalog.open(site.paths.catalog);
    try {
      const { decodePointHeader } = await import('@bulwark/proto');
      const rows = (await catalog.listPoints()).map((p) => {
        const h = decodePointHeader(p.header);
        return { id: p.id.toString('hex'), agent: p.agent_id, kind: h.kind, created: new Date(p.created_ms).toISOString(), blobs: h.blobCount, logicalBytes: h.logicalBytes, state: p.state };
      });
      if (values.json) { console.log(JSON.stringify(rows, null, 2)); return; }
      console.log(table(['POINT', 'AGENT', 'KIND', 'CREATED', 'BYTES', 'STATE'], rows.map((r) => [r.id.slice(0, 16), r.agent, r.kind, r.created, String(r.logicalBytes), r.state])));
    } finally {
      await catalog.close();
    }
  },
};

async function verifyCommand(args: string[]): Promise<void> {
  const { values } = options(args, { dir: { type: 'string' }, full: { type: 'boolean' }, json: { type: 'boolean' } });
  const site = loadSite(requireDir(values.dir));
  const catalog = await Catalog.open(site.paths.catalog);
  try {
    const store = await PackStore.open(site.paths.store);
    const report = await verifyStore(catalog, store, { full: values.full ?? false });
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`${values.full ? 'Full' : 'Metadata'} verify of ${report.packs} packs, ${report.blobs} blobs, ${report.points} points in ${report.seconds.toFixed(2)} s${values.full ? ` (${(report.bytesHashed / 1048576 / Math.max(report.seconds, 0.001)).toFixed(0)} MiB/s)` : ''}.`);
      for (const f of report.findings) console.log(`  PROBLEM ${f.object}: ${f.problem}`);
      console.log(report.findings.length === 0 ? 'Everything verifies.' : `${report.findings.length} problem(s); ${report.brokenPoints.length} point(s) broken.`);
    }
    if (report.findings.length > 0) process.exitCode = 3;
  } finally {
    await catalog.close();
  }
}
commands.verify = verifyCommand;

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') { process.stdout.write(USAGE); return; }
  const handler = commands[command];
  if (!handler) throw new UsageError(`unknown command "${command}"`);
  await handler(rest);
}

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof UsageError) { process.stderr.write(`bulwark-gateway: ${err.message}\n\n${USAGE}`); process.exit(2); }
  if (err instanceof SiteError) { process.stderr.write(`bulwark-gateway: ${err.message}\n`); process.exit(1); }
  process.stderr.write(`bulwark-gateway: ${(err as Error).message}\n`);
  process.exit(1);
});
