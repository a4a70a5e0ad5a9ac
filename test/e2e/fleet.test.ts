/**
 * Issue 6 must-holds 1–5, against a real Mosquitto (mutual TLS, the ACL that
 * `bulwark-gateway broker-config` generates) started on a loopback port:
 * signed-command refusals, broker ACLs, a 200-agent fleet view, a broker
 * restart mid-run, and scheduled/caught-up backups.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { fleetTopics, decodeAgentMessage, RejectReason, encodeAgentMessage, type AgentMessage } from '@bulwark/proto';
import { GATEWAY_CLI, GatewayProcess, RESTORE_PASSWORD, agentId, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { Mosquitto } from '../support/mosquitto.js';
import { AgentService, fleetView, observer, waitFor } from '../support/fleet.js';
import { loadSite } from '../../gateway/dist/site/site.js';
import { signCommand } from '../../gateway/dist/fleet/commands.js';
import { loadCommandKey } from '../../gateway/dist/fleet/site-fleet.js';
import { createSigningKey } from '../../gateway/dist/keys/signing.js';
import { issueMqttCert, certFingerprint, pemToDer } from '../../gateway/dist/site/pki.js';
import { Catalog } from '../../gateway/dist/catalog/catalog.js';
import { FleetAgent } from '../../agent/dist/fleet/fleet-agent.js';

const OFFLINE_AFTER_S = 3;

describe('fleet over a real Mosquitto', () => {
  const root = tempDir('fleet');
  let site: Site;
  let broker: Mosquitto;
  let a: string;
  let b: string;
  let idA: string;
  let idB: string;
  const services: AgentService[] = [];
  const data = path.join(root, 'data');

  beforeAll(async () => {
    fs.mkdirSync(data);
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(data, `f${i}`), Buffer.alloc(200_000, i));
    const dir = path.join(root, 'site');
    const passwordFile = path.join(root, 'pw');
    fs.writeFileSync(passwordFile, `${RESTORE_PASSWORD}\n`);
    await runOk(GATEWAY_CLI, ['init', '--dir', dir, '--restore-password-file', passwordFile]);
    broker = await Mosquitto.start(dir);
    const gateway = new GatewayProcess(dir);
    gateway.serveArgs = ['--broker', broker.url, '--offline-after', String(OFFLINE_AFTER_S)];
    await gateway.start(0);
    site = { dir, gateway, passwordFile };
    [a, b] = await Promise.all([enrollAgent(site), enrollAgent(site)]);
    idA = agentId(a);
    idB = agentId(b);
    services.push(new AgentService(a), new AgentService(b));
    await waitFor('both agents online', 15_000, async () => (await fleetView(dir)).filter((r) => r.online).length === 2);
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await site?.gateway.stop();
    await broker?.stop();
  });

  it('refuses and reports a forged, a replayed, an expired and a misdirected command (must-hold 1)', async () => {
    const siteObj = loadSite(site.dir);
    const topicsA = fleetTopics(siteObj.config.siteId, idA);
    const watch = await observer(site.dir, broker.url, [topicsA.cmd, topicsA.events]);
    try {
      const ok = await runOk(GATEWAY_CLI, ['run', '--dir', site.dir, idA, 'diagnostics', '--json']);
      expect(JSON.parse(ok.stdout).ok).toBe(true);
      const genuine = watch.seen.find((m) => m.topic === topicsA.cmd)!.payload;
      const key = loadCommandKey(siteObj);
      const attacks: [string, Buffer, RejectReason][] = [
        ['another key', signCommand(createSigningKey(), siteObj.config.siteId, idA, { collectDiagnostics: {} }).payload, RejectReason.BAD_SIGNATURE],
        ['replay', genuine, RejectReason.REPLAY],
        ['expired', signCommand(key, siteObj.config.siteId, idA, { collectDiagnostics: {} }, { nowMs: Date.now() - 3600_000, ttlMs: 60_000 }).payload, RejectReason.EXPIRED],
        ['for agent B', signCommand(key, siteObj.config.siteId, idB, { collectDiagnostics: {} }).payload, RejectReason.WRONG_AGENT],
      ];
      const events = () => watch.seen.filter((m) => m.topic === topicsA.events).map((m) => decodeAgentMessage(m.payload));
      for (const [what, payload, reason] of attacks) {
        const before = events().length;
        await watch.client.publishAsync(topicsA.cmd, payload, { qos: 1 });
        const rejected = await waitFor(`the refusal of the ${what} command`, 5000, async () => events().slice(before).find((e) => e.rejected)?.rejected);
        expect(rejected.reason, what).toBe(reason);
      }
      // Exactly one command ran: the genuine one.
      expect(events().filter((e) => e.result).length).toBe(1);
      const row = await waitFor('the gateway to record the last refusal', 5000, async () => (await fleetView(site.dir)).find((r) => r.id === idA && r.lastRejection?.what.startsWith('WRONG_AGENT')));
      expect(row.lastRejection!.what).toContain(idB);
    } finally {
      await watch.client.endAsync();
    }
  });

  it("lets agent A's certificate neither subscribe to B's cmd nor publish to B's status (must-hold 2)", async () => {
    const siteId = loadSite(site.dir).config.siteId;
    const tA = fleetTopics(siteId, idA);
    const tB = fleetTopics(siteId, idB);
    const tls = { key: fs.readFileSync(path.join(a, 'tls/agent.key')), cert: fs.readFileSync(path.join(a, 'tls/agent.crt')), ca: fs.readFileSync(path.join(a, 'tls/ca.crt')), rejectUnauthorized: true };
    const watch = await observer(site.dir, broker.url, [tB.status, tB.cmd]);
    const v4 = await mqtt.connectAsync(broker.url, { ...tls, clientId: `${idA}-probe4`, protocolVersion: 4, reconnectPeriod: 0 });
    const v5 = await mqtt.connectAsync(broker.url, { ...tls, clientId: `${idA}-probe5`, protocolVersion: 5, reconnectPeriod: 0 });
    try {
      // Mosquitto 2.0's ACL file may grant the SUBACK and refuse at delivery; either way nothing of B's reaches A.
      const got: string[] = [];
      v4.on('message', (topic) => got.push(topic));
      const granted = await v4.subscribeAsync([tB.cmd, tA.cmd, `bulwark/${siteId}/agents/+/cmd`], { qos: 1 });
      expect(granted[1].qos).toBe(1);
      await watch.client.publishAsync(tB.cmd, Buffer.from('probe for B'), { qos: 1 });
      await watch.client.publishAsync(tA.cmd, Buffer.from('probe for A'), { qos: 1 });
      await waitFor('the probe on A\'s own cmd', 3000, async () => got.includes(tA.cmd));
      await new Promise((r) => setTimeout(r, 500));
      expect(got.filter((t) => t !== tA.cmd)).toEqual([]);
      const forged = encodeAgentMessage({ agentId: idB, sentUnixMs: Date.now(), presence: { online: false } } as AgentMessage);
      await expect(v5.publishAsync(tB.status, forged, { qos: 1 })).rejects.toThrow(/not authori[sz]ed|135/i);
      await expect(v5.publishAsync(tB.events, forged, { qos: 1 })).rejects.toThrow(/not authori[sz]ed|135/i);
      await v5.publishAsync(tA.status, encodeAgentMessage({ agentId: idA, sentUnixMs: Date.now(), heartbeat: { seq: 0, agentVersion: 'probe', uptimeMs: 0 } }), { qos: 1 });
      await new Promise((r) => setTimeout(r, 1000));
      expect(watch.seen.filter((m) => m.topic === tB.status && decodeAgentMessage(m.payload).presence?.online === false)).toEqual([]);
      expect((await fleetView(site.dir)).find((r) => r.id === idB)!.online).toBe(true);
    } finally {
      await Promise.all([v4.endAsync(), v5.endAsync(), watch.client.endAsync()]);
    }
  });

  it('shows 200 simulated agents exactly, and exactly the 10 killed ones offline within the timeout (must-hold 3)', async () => {
    const siteObj = loadSite(site.dir);
    const catalog = await Catalog.open(siteObj.paths.catalog);
    const sims: { id: string; agent: FleetAgent }[] = [];
    const commandPublicKey = loadCommandKey(siteObj).publicKey;
    try {
      const ids = Array.from({ length: 200 }, (_, i) => `agt-sim${String(i).padStart(4, '0')}${Math.random().toString(16).slice(2, 8)}`);
      const certs = await Promise.all(ids.map((id) => issueMqttCert(siteObj.ca, id, 'client', [], 30)));
      // Seeded straight into the catalog (one transaction), as 200 enrollments would leave it.
      await catalog.db.transaction(async () => {
        for (const [i, id] of ids.entries()) {
          await catalog.db.run('INSERT INTO agents(id, hostname, cert_fingerprint, cert_not_after_ms, sign_public_key, enrolled_ms) VALUES (?, ?, ?, ?, ?, ?)',
            [id, `sim-${i}`, certFingerprint(pemToDer(certs[i].certPem)), Date.now() + 30 * 86_400_000, Buffer.alloc(32), Date.now()]);
        }
      });
      for (const [i, id] of ids.entries()) {
        sims.push({
          id,
          agent: new FleetAgent({
            agentId: id, siteId: siteObj.config.siteId, brokerUrl: broker.url, tls: { ...certs[i], caPem: siteObj.ca.certPem }, commandPublicKey, heartbeatMs: 1000,
            inventory: async () => ({ hostname: `sim-${i}`, os: 'SimOS', arch: 'x64', cpu: 'sim', cores: 1, memoryBytes: 1 << 30, agentVersion: 'sim' }),
            executor: async () => ({ ok: true, message: 'simulated' }),
          }),
        });
      }
      const everyone = new Set([idA, idB, ...sims.map((s) => s.id)]);
      const t0 = Date.now();
      await waitFor('all 202 agents online', 30_000, async () => {
        const rows = await fleetView(site.dir);
        return rows.length === 202 && rows.every((r) => r.online && everyone.has(r.id));
      }, 500);
      console.log(`fleet: 202 agents online in the view ${Date.now() - t0} ms after the simulation started`);
      // Heartbeat a while: still exact.
      await new Promise((r) => setTimeout(r, 2000));
      const steady = await fleetView(site.dir);
      expect(steady.filter((r) => r.online).length).toBe(202);
      const odd = steady.filter((r) => r.id.startsWith('agt-sim') && !(r.inventory?.os === 'SimOS' && r.version === '0.1.0'));
      expect(odd.slice(0, 2)).toEqual([]);

      const killed = new Set(sims.filter((_, i) => i % 20 === 7).map((s) => s.id));
      expect(killed.size).toBe(10);
      const killedAt = Date.now();
      for (const s of sims) if (killed.has(s.id)) s.agent.crash();
      const offline = await waitFor('exactly the 10 killed agents offline', OFFLINE_AFTER_S * 1000 + 1500, async () => {
        const rows = await fleetView(site.dir);
        const off = rows.filter((r) => !r.online).map((r) => r.id);
        return off.length === 10 && off.every((id) => killed.has(id)) ? off : undefined;
      }, 200);
      const took = Date.now() - killedAt;
      console.log(`fleet: the 10 killed agents showed offline after ${took} ms (timeout ${OFFLINE_AFTER_S} s)`);
      expect(offline.length).toBe(10);
      expect(took).toBeLessThanOrEqual(OFFLINE_AFTER_S * 1000 + 1500);
    } finally {
      await Promise.all(sims.filter((s) => s.agent).map((s) => s.agent.stop().catch(() => undefined)));
      // The simulated agents leave the site, so later tests see only A and B.
      for (const s of sims) await catalog.revokeAgent(s.id, Date.now());
      await catalog.close();
    }
  });

  it('runs a scheduled backup on time, and one missed while the gateway was down once after it returns (must-hold 5)', async () => {
    await runOk(GATEWAY_CLI, ['schedule', '--dir', site.dir, 'set', 'quick', '--path', data, '--every', '3', '--jitter', '1']);
    await runOk(GATEWAY_CLI, ['schedule', '--dir', site.dir, 'assign', 'quick', idA]);
    type Runs = { runs: { slot: number; state: string; due_ms: number; started_ms: number; agent_id: string; attempt: number }[] };
    const runs = async () => (JSON.parse((await runOk(GATEWAY_CLI, ['schedule', '--dir', site.dir, 'list', '--json'])).stdout) as Runs).runs.filter((r) => r.agent_id === idA);
    try {
      const first = await waitFor('the first scheduled run to succeed', 12_000, async () => (await runs()).find((r) => r.state === 'ok'));
      console.log(`fleet: first scheduled run started ${first.started_ms - first.due_ms} ms after its due time`);
      expect(first.started_ms - first.due_ms).toBeLessThan(1500);
      await site.gateway.stop();
      const downAt = Date.now();
      await new Promise((r) => setTimeout(r, 7000));
      const upAt = Date.now();
      await site.gateway.start();
      const before = (await runs()).filter((r) => r.started_ms < downAt);
      const lastBefore = Math.max(...before.map((r) => r.slot));
      const catchUp = await waitFor('the catch-up run', 8000, async () => (await runs()).filter((r) => r.started_ms >= upAt).sort((x, y) => x.started_ms - y.started_ms)[0]);
      console.log(`fleet: catch-up run for slot ${catchUp.slot} (last before the downtime: ${lastBefore}) started ${catchUp.started_ms - upAt} ms after the restart began`);
      const all = await runs();
      expect(catchUp.slot - lastBefore).toBeGreaterThanOrEqual(2);
      // The missed slots ran once, together: none of them has a run of its own.
      expect(all.filter((r) => r.slot > lastBefore && r.slot < catchUp.slot)).toEqual([]);
      expect(all.filter((r) => r.slot === catchUp.slot && r.attempt === 1).length).toBe(1);
      expect(catchUp.due_ms).toBeGreaterThan(downAt);
      expect(new Set(all.map((r) => `${r.slot}/${r.attempt}`)).size).toBe(all.length);
      await waitFor('the catch-up run to succeed', 15_000, async () => (await runs()).find((r) => r.slot === catchUp.slot && r.state === 'ok'));
    } finally {
      // Stop scheduling, for the next test's exact point counts.
      await runOk(GATEWAY_CLI, ['schedule', '--dir', site.dir, 'set', 'quick', '--path', data, '--every', '86400']);
    }
  });

  it('survives a broker restart mid-run: both sides reconnect, no command lost or run twice (must-hold 4)', async () => {
    const pointsOf = async (id: string) => (JSON.parse((await runOk(GATEWAY_CLI, ['points', '--dir', site.dir, '--json'])).stdout) as { agent: string }[]).filter((p) => p.agent === id).length;
    const beforeA = await pointsOf(idA);
    const beforeB = await pointsOf(idB);
    const first = run(GATEWAY_CLI, ['run', '--dir', site.dir, idA, 'backup', '--path', data, '--json', '--timeout', '60']);
    await new Promise((r) => setTimeout(r, 700));
    await broker.stop();
    // Sent while the broker is away: queued by the sender, delivered after.
    const second = run(GATEWAY_CLI, ['run', '--dir', site.dir, idB, 'backup', '--path', data, '--json', '--timeout', '60']);
    await new Promise((r) => setTimeout(r, 1500));
    await broker.launch();
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r1.stdout).ok).toBe(true);
    expect(JSON.parse(r2.stdout).ok).toBe(true);
    expect(await pointsOf(idA)).toBe(beforeA + 1);
    expect(await pointsOf(idB)).toBe(beforeB + 1);
    await waitFor('both agents online again', 10_000, async () => (await fleetView(site.dir)).filter((r) => r.online).length === 2);
    // A while later, still exactly one run each (no late redelivery ran again).
    await new Promise((r) => setTimeout(r, 2000));
    expect(await pointsOf(idA)).toBe(beforeA + 1);
    expect(await pointsOf(idB)).toBe(beforeB + 1);
  });
});
