/**
 * @module The fleet's `bulwark-gateway` commands: `agents` (the fleet view),
 * `run AGENT ACTION` (send a signed command and follow it to its result),
 * `schedule` (backup policies and their schedules) and `broker-config` (files
 * for an external Mosquitto). `run` talks to the broker directly, as the
 * gateway, with the site's own MQTT client certificate.
 */
import { randomBytes } from 'node:crypto';
import {
  bar, decodeAgentMessage, fleetTopics, formatBytes, GATEWAY_MQTT_IDENTITY, parseOptions, RejectReason, UsageError,
  type CommandAction, type JobResult,
} from '@bulwark/proto';
import { requireDir, table } from '../cli/args.js';
import { loadSite, type Site } from '../site/site.js';
import { Catalog } from '../catalog/catalog.js';
import { FleetStore } from './fleet-store.js';
import { fleetView } from './fleet-view.js';
import { signCommand } from './commands.js';
import { loadCommandKey, readBrokerAdvert } from './site-fleet.js';
import { latestDueSlot } from './scheduler.js';
import { writeBrokerBundle } from './broker-config.js';
import type { FleetOptions } from './fleet-service.js';

export const FLEET_USAGE = `  agents  --dir D [--json]         every agent: online/offline, last heartbeat, last backup, version, inventory
  run     --dir D AGENT ACTION [--json] [--timeout S] [--broker mqtts://HOST:PORT]
                                   send a signed command and follow it to completion. ACTION:
                                     backup [--path P]... [--policy NAME] | verify [--point P]
                                     restore --point P --to DIR [--sparse] | apply-policy --policy NAME
                                     set-schedule --policy NAME | diagnostics | update --version V [--url U]
  schedule --dir D set NAME --path P... --every SECONDS [--jitter SECONDS]
          --dir D assign NAME AGENT...  |  --dir D list [--json]
                                   scheduled backup policies (what and how often); the running gateway
                                   sends them with jitter, catches up missed runs once, retries failures
  broker-config --dir D --out DIR [--port N] [--name HOST]...
                                   certificates, ACL and mosquitto.conf for an external broker
`;

function seconds(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback * 1000;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number of seconds, not ${value}`);
  return n * 1000;
}
async function withFleet<T>(site: Site, work: (catalog: Catalog, store: FleetStore) => Promise<T>): Promise<T> {
  const catalog = await Catalog.open(site.paths.catalog);
  try {
    return await work(catalog, await FleetStore.open(catalog.db));
  } finally {
    await catalog.close();
  }
}

export interface FollowOptions { timeoutMs: number; ttlMs?: number; brokerUrl?: string; onUpdate?: (line: string, fraction?: number) => void }
export interface FollowOutcome { commandId: string; ok: boolean; result?: JobResult; rejected?: string }

/** Sign a command for one agent, publish it, re-publish until acknowledged, and wait for its result. */
export async function runFleetCommand(site: Site, agentId: string, action: CommandAction, opts: FollowOptions): Promise<FollowOutcome> {
  const brokerUrl = opts.brokerUrl ?? readBrokerAdvert(site)?.url;
  if (!brokerUrl) throw new UsageError('no fleet broker known for this site: start `bulwark-gateway serve` first, or pass --broker mqtts://HOST:PORT');
  return withFleet(site, async (catalog, store) => {
    const agent = await catalog.getAgent(agentId);
    if (!agent) throw new UsageError(`no agent ${agentId}: see \`bulwark-gateway agents --dir ${site.paths.dir}\``);
    if (agent.revoked_ms) throw new UsageError(`agent ${agentId} is revoked; it takes no commands`);
    const signed = signCommand(loadCommandKey(site), site.config.siteId, agentId, action, { ttlMs: opts.ttlMs });
    const id = signed.command.commandId;
    const topics = fleetTopics(site.config.siteId, agentId);
    const note = opts.onUpdate ?? (() => undefined);
    const { connectGatewayMqtt } = await import('./mqtt-link.js');
    const client = await connectGatewayMqtt(site, brokerUrl, { clientId: `${GATEWAY_MQTT_IDENTITY}-cli-${randomBytes(6).toString('hex')}`, clean: false });
    let lastSent = 0;
    const publish = () => {
      lastSent = Date.now();
      client.publish(topics.cmd, signed.payload, { qos: 1 });
    };
    try {
      return await new Promise<FollowOutcome>((resolve, reject) => {
        let subscribed = false;
        const finish = (outcome: FollowOutcome | Error) => {
          clearInterval(poll);
          clearTimeout(timer);
          if (outcome instanceof Error) reject(outcome); else resolve(outcome);
        };
        const timer = setTimeout(() => finish(new Error(`no result from ${agentId} within ${opts.timeoutMs / 1000} s; command ${id} stays valid until ${new Date(signed.command.expiresUnixMs).toISOString()} and the gateway keeps delivering it`)), opts.timeoutMs);
        client.on('error', (err) => note(`broker connection interrupted (${err.message}); reconnecting`));
        client.on('offline', () => note('lost the broker; reconnecting'));
        client.on('connect', () => {
          client.subscribe(topics.events, { qos: 1 }, (err) => {
            // The broker went away before it answered: the next connect subscribes again.
            if (err?.message === 'Connection closed') return;
            if (err) return finish(err);
            if (subscribed) return;
            subscribed = true;
            // Recorded first, so the running gateway tracks it (and keeps delivering it if this program stops).
            store.insertCommand({ id, agent_id: agentId, action: signed.action, payload: signed.payload, created_ms: Date.now(), expires_ms: signed.command.expiresUnixMs, run_id: null, last_sent_ms: Date.now() })
              .then(() => { publish(); note(`sent ${signed.action} to ${agentId} (command ${id})`); }, finish);
          });
        });
        client.on('message', (_topic, payload) => {
          let m;
          try { m = decodeAgentMessage(payload); } catch { return; }
          if (m.ack?.commandId === id) note(`accepted by ${agentId}`);
          else if (m.progress?.commandId === id) note(m.progress.message ?? '', m.progress.fraction);
          else if (m.result?.commandId === id) finish({ commandId: id, ok: m.result.ok === true, result: m.result });
          else if (m.rejected?.commandId === id && m.rejected.reason !== RejectReason.REPLAY) {
            finish({ commandId: id, ok: false, rejected: `${RejectReason[m.rejected.reason]}: ${m.rejected.detail ?? ''}` });
          }
        });
        // The gateway records results too: a result missed while the broker was away is still found.
        const poll = setInterval(() => {
          if (!subscribed) return;
          store.getCommand(id).then((row) => {
            if (!row) return;
            if ((row.state === 'done' || row.state === 'failed') && row.result) finish({ commandId: id, ok: row.state === 'done', result: JSON.parse(row.result) as JobResult });
            else if (row.state === 'rejected' || row.state === 'expired') finish({ commandId: id, ok: false, rejected: row.message ?? row.state });
            else if (row.state === 'pending' && client.connected && Date.now() - lastSent > 5000) publish();
          }, () => undefined);
        }, 1000);
      });
    } finally {
      await client.unsubscribeAsync(topics.events).catch(() => undefined);
      await client.endAsync().catch(() => undefined);
    }
  });
}

const RUN_SPEC = {
  dir: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' }, ttl: { type: 'string' }, broker: { type: 'string' },
  path: { type: 'string', multiple: true }, policy: { type: 'string' }, point: { type: 'string' }, to: { type: 'string' }, sparse: { type: 'boolean' },
  version: { type: 'string' }, url: { type: 'string' }, sha256: { type: 'string' },
} as const;
type RunValues = ReturnType<typeof parseOptions<typeof RUN_SPEC>>['values'];

async function actionFor(site: Site, verb: string, values: RunValues): Promise<CommandAction> {
  const policy = async () => {
    if (!values.policy) return undefined;
    const p = await withFleet(site, (_c, store) => store.getPolicy(values.policy!));
    if (!p) throw new UsageError(`no policy ${values.policy}: create it with \`bulwark-gateway schedule --dir ${site.paths.dir} set ${values.policy} --path P --every SECONDS\``);
    return p;
  };
  switch (verb) {
    case 'backup': {
      const p = await policy();
      return { backupNow: { paths: values.path ?? (p ? (JSON.parse(p.paths) as string[]) : []), policyId: values.policy ?? '' } };
    }
    case 'verify':
      return { verify: { point: values.point ?? 'latest' } };
    case 'restore':
      if (!values.to) throw new UsageError('restore needs --to DIR (on the agent\'s host)');
      return { restore: { point: values.point ?? 'latest', target: values.to, sparse: values.sparse === true } };
    case 'apply-policy':
    case 'set-schedule': {
      const p = await policy();
      if (!p) throw new UsageError(`${verb} needs --policy NAME`);
      return verb === 'apply-policy'
        ? { applyPolicy: { policy: { policyId: p.id, paths: JSON.parse(p.paths) as string[] } } }
        : { setSchedule: { policyId: p.id, periodMs: p.period_ms, jitterMs: p.jitter_ms } };
    }
    case 'diagnostics':
      return { collectDiagnostics: {} };
    case 'update':
      if (!values.version) throw new UsageError('update needs --version V');
      return { update: { version: values.version, url: values.url ?? '', sha256: values.sha256 ? Buffer.from(values.sha256, 'hex') : undefined } };
    default:
      throw new UsageError(`unknown action "${verb}": backup, verify, restore, apply-policy, set-schedule, diagnostics or update`);
  }
}

export const fleetCommands: Record<string, (args: string[]) => Promise<void>> = {
  async agents(args) {
    const { values } = parseOptions(args, { dir: { type: 'string' }, json: { type: 'boolean' } });
    const site = loadSite(requireDir(values.dir));
    const rows = await withFleet(site, (catalog, store) => fleetView(catalog, store));
    if (values.json) { console.log(JSON.stringify(rows, null, 2)); return; }
    if (rows.length === 0) { console.log('No agents enrolled yet: run `bulwark-gateway token` and enroll one.'); return; }
    console.log(table(['AGENT', 'HOST', 'STATUS', 'LAST HEARTBEAT', 'LAST BACKUP', 'VERSION', 'INVENTORY'], rows.map((r) => [
      r.id, r.hostname, r.status, r.lastHeartbeat ?? '-',
      r.lastBackup ? `${r.lastBackup.at} ${r.lastBackup.ok ? 'ok' : `FAILED: ${r.lastBackup.message}`}` : '-',
      r.version ?? '-',
      r.inventory ? `${r.inventory.os} ${r.inventory.arch}, ${r.inventory.cores} cores, ${formatBytes(r.inventory.memoryBytes)} RAM, ${r.inventory.volumes} volumes` : '-',
    ])));
  },

  async run(args) {
    const { values, positionals } = parseOptions(args, RUN_SPEC, true);
    if (positionals.length !== 2) throw new UsageError('run takes AGENT ACTION');
    const [agentId, verb] = positionals;
    const site = loadSite(requireDir(values.dir));
    const action = await actionFor(site, verb, values);
    const started = Date.now();
    const outcome = await runFleetCommand(site, agentId, action, {
      timeoutMs: seconds(values.timeout, '--timeout', 600),
      ttlMs: values.ttl ? seconds(values.ttl, '--ttl', 600) : undefined,
      brokerUrl: values.broker,
      onUpdate: (line, fraction) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${fraction !== undefined ? `${bar(fraction)} ` : ''}${line}\n`),
    });
    if (values.json) {
      const detail = outcome.result?.detailJson ? JSON.parse(outcome.result.detailJson) as unknown : undefined;
      console.log(JSON.stringify({ agent: agentId, action: verb, ...outcome, detail }));
    } else if (outcome.rejected) {
      console.log(`${verb} on ${agentId}: REFUSED by the agent: ${outcome.rejected}`);
    } else {
      const r = outcome.result!;
      console.log(`${verb} on ${agentId}: ${r.ok ? 'ok' : 'FAILED'}${r.point ? `, point ${r.point}` : ''}${r.message ? ` — ${r.message}` : ''}`);
    }
    if (!outcome.ok) process.exitCode = 1;
  },

  async schedule(args) {
    const at = args.findIndex((x) => x === 'set' || x === 'assign' || x === 'list');
    const sub = at >= 0 ? args[at] : undefined;
    const rest = args.filter((_, i) => i !== at);
    if (sub === 'set') {
      const { values, positionals } = parseOptions(rest, { dir: { type: 'string' }, path: { type: 'string', multiple: true }, every: { type: 'string' }, jitter: { type: 'string' } }, true);
      const site = loadSite(requireDir(values.dir));
      if (positionals.length !== 1) throw new UsageError('schedule set takes one NAME');
      if (!values.path?.length) throw new UsageError('schedule set needs at least one --path P');
      const period = seconds(values.every, '--every', NaN);
      if (!Number.isFinite(period)) throw new UsageError('schedule set needs --every SECONDS');
      const jitter = values.jitter === undefined ? 0 : seconds(values.jitter, '--jitter', 0);
      await withFleet(site, async (_c, store) => {
        const old = await store.getPolicy(positionals[0]);
        await store.upsertPolicy({ id: positionals[0], paths: JSON.stringify(values.path), period_ms: period, jitter_ms: jitter, anchor_ms: old?.anchor_ms ?? Date.now(), updated_ms: Date.now() });
      });
      console.log(`Policy ${positionals[0]}: back up ${values.path.join(', ')} every ${period / 1000} s (jitter up to ${jitter / 1000} s).`);
    } else if (sub === 'assign') {
      const { values, positionals } = parseOptions(rest, { dir: { type: 'string' } }, true);
      const site = loadSite(requireDir(values.dir));
      const [name, ...agents] = positionals;
      if (!name || agents.length === 0) throw new UsageError('schedule assign takes NAME AGENT...');
      const key = loadCommandKey(site);
      await withFleet(site, async (catalog, store) => {
        const p = await store.getPolicy(name);
        if (!p) throw new UsageError(`no policy ${name}`);
        for (const agentId of agents) {
          if (!(await catalog.getAgent(agentId))) throw new UsageError(`no agent ${agentId}`);
          await store.assign(p.id, agentId, latestDueSlot(p, agentId, Date.now()));
          // The agent learns the policy and its schedule; the running gateway delivers these.
          for (const action of [{ applyPolicy: { policy: { policyId: p.id, paths: JSON.parse(p.paths) as string[] } } }, { setSchedule: { policyId: p.id, periodMs: p.period_ms, jitterMs: p.jitter_ms } }] as CommandAction[]) {
            const signed = signCommand(key, site.config.siteId, agentId, action, { ttlMs: 24 * 3600_000 });
            await store.insertCommand({ id: signed.command.commandId, agent_id: agentId, action: signed.action, payload: signed.payload, created_ms: Date.now(), expires_ms: signed.command.expiresUnixMs, run_id: null });
          }
        }
      });
      console.log(`Assigned ${name} to ${agents.join(', ')}; the first run falls one period from now.`);
    } else if (sub === 'list') {
      const { values } = parseOptions(rest, { dir: { type: 'string' }, json: { type: 'boolean' } });
      const site = loadSite(requireDir(values.dir));
      const { policies, assignments, runs } = await withFleet(site, async (_c, store) => ({ policies: await store.listPolicies(), assignments: await store.listAssignments(), runs: await store.listRuns() }));
      if (values.json) { console.log(JSON.stringify({ policies, assignments, runs }, null, 2)); return; }
      console.log(table(['POLICY', 'EVERY', 'JITTER', 'PATHS', 'AGENTS'], policies.map((p) => [p.id, `${p.period_ms / 1000} s`, `${p.jitter_ms / 1000} s`, (JSON.parse(p.paths) as string[]).join(','), assignments.filter((a) => a.policy_id === p.id).map((a) => a.agent_id).join(',') || '-'])));
    } else {
      throw new UsageError('schedule takes set, assign or list');
    }
  },

  async 'broker-config'(args) {
    const { values } = parseOptions(args, { dir: { type: 'string' }, out: { type: 'string' }, port: { type: 'string' }, name: { type: 'string', multiple: true } });
    const site = loadSite(requireDir(values.dir));
    if (!values.out) throw new UsageError('--out DIR is required');
    const b = await writeBrokerBundle(site, values.out, { port: values.port ? Number(values.port) : undefined, names: values.name ?? [] });
    console.log(`Wrote ${b.confFile}, ${b.aclFile} and certificates for an external broker; start the gateway with --broker mqtts://HOST:PORT.`);
  },
};

/** `serve`'s fleet options (validated here, the bad one named). */
export const FLEET_SERVE_OPTIONS = {
  broker: { type: 'string' }, 'mqtt-listen': { type: 'string' }, 'mqtt-advertise': { type: 'string' }, 'offline-after': { type: 'string' },
} as const;

export function parseFleetServeOptions(values: { broker?: string; 'mqtt-listen'?: string; 'mqtt-advertise'?: string; 'offline-after'?: string }): FleetOptions {
  const out: FleetOptions = {};
  if (values.broker) {
    if (!/^mqtts:\/\/[^/]+:\d+\/?$/.test(values.broker)) throw new UsageError(`--broker must be mqtts://HOST:PORT, not ${values.broker}`);
    if (values['mqtt-listen']) throw new UsageError('--mqtt-listen is for the embedded broker; it makes no sense with --broker');
    out.brokerUrl = values.broker.replace(/\/$/, '');
  }
  if (values['mqtt-listen']) {
    const m = /^(.*):(\d+)$/.exec(values['mqtt-listen']);
    if (!m) throw new UsageError(`--mqtt-listen must be HOST:PORT, not ${values['mqtt-listen']}`);
    out.mqttListen = { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }
  if (values['mqtt-advertise']) {
    if (!/^mqtts:\/\//.test(values['mqtt-advertise'])) throw new UsageError(`--mqtt-advertise must be an mqtts:// URL, not ${values['mqtt-advertise']}`);
    out.advertiseUrl = values['mqtt-advertise'];
  }
  if (values['offline-after'] !== undefined) out.offlineAfterMs = seconds(values['offline-after'], '--offline-after', 30);
  return out;
}
