/**
 * Issue 6 must-hold 6: the quick start needs no broker. `serve` runs the
 * embedded one (aedes, mutual TLS, the same ACL rules), enrollment tells the
 * agent where it is, and `bulwark-gateway run AGENT backup` makes the agent
 * really back up and reports the result back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_CLI, agentId, createSite, enrollAgent, runOk, tempDir, type Site } from '../support/cluster.js';
import { AgentService, fleetView, waitFor } from '../support/fleet.js';

describe('fleet quick start (embedded broker)', () => {
  let site: Site;
  let agent: AgentService;
  const work = tempDir('fleet-qs');

  beforeAll(async () => { site = await createSite(tempDir('fleet-qs-site')); });
  afterAll(async () => { await agent?.stop(); await site?.gateway.stop(); });

  it('runs a commanded backup end to end and shows the agent online with its result', async () => {
    const state = await enrollAgent(site);
    const id = agentId(state);
    expect(JSON.parse(fs.readFileSync(path.join(state, 'agent.json'), 'utf8')).brokerUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    agent = new AgentService(state);
    await waitFor('the agent online', 15_000, async () => (await fleetView(site.dir)).find((r) => r.id === id && r.online));
    const data = path.join(work, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'hello.txt'), 'hello fleet\n');
    const { stdout, stderr } = await runOk(GATEWAY_CLI, ['run', '--dir', site.dir, id, 'backup', '--path', data, '--json']);
    const out = JSON.parse(stdout) as { ok: boolean; result: { point: string }; detail: { files: number } };
    expect(out.ok).toBe(true);
    expect(out.detail.files).toBe(1);
    expect(stderr).toMatch(/accepted by/);
    const points = JSON.parse((await runOk(GATEWAY_CLI, ['points', '--dir', site.dir, '--json'])).stdout) as { id: string }[];
    expect(points.map((p) => p.id)).toContain(out.result.point);
    const row = await waitFor('the fleet view to show the backup', 5000, async () => (await fleetView(site.dir)).find((r) => r.id === id && r.lastBackup?.ok));
    expect(row.online).toBe(true);
    expect(row.lastBackup!.point).toBe(out.result.point);
    expect(row.inventory?.os).toBeTruthy();
  });
});
