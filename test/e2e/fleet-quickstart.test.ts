/**
 * Issue 6 must-hold 6: the quick start needs no broker. `serve` runs the
 * embedded one (aedes, mutual TLS, the same ACL rules), enrollment tells the
 * agent where it is, and `bulwark-gateway run AGENT backup` makes the agent
 * really back up and reports the result back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { AGENT_CLI, GATEWAY_CLI, agentId, createSite, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { AgentService, fleetView, waitFor } from '../support/fleet.js';

describe('fleet quick start (embedded broker)', () => {
  let site: Site;
  let agent: AgentService;
  let state: string;
  let id: string;
  const work = tempDir('fleet-qs');

  beforeAll(async () => { site = await createSite(tempDir('fleet-qs-site')); });
  afterAll(async () => { await agent?.stop(); await site?.gateway.stop(); });

  it('runs a commanded backup end to end and shows the agent online with its result', async () => {
    state = await enrollAgent(site);
    id = agentId(state);
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

  it('restores a point on command, with --sparse leaving its zero runs as holes, and refuses a volume point by name', async () => {
    const data = path.join(work, 'sparse-data');
    fs.mkdirSync(data);
    // Chunks are at most 4 MiB: 16 MiB of zeros hold at least two all-zero chunks, whatever the cut points.
    const content = Buffer.concat([randomBytes(64 * 1024), Buffer.alloc(16 * 1024 * 1024), randomBytes(64 * 1024)]);
    fs.writeFileSync(path.join(data, 'disk-like.bin'), content);
    const backup = JSON.parse((await runOk(GATEWAY_CLI, ['run', '--dir', site.dir, id, 'backup', '--path', data, '--json'])).stdout) as { result: { point: string } };
    const to = path.join(work, 'restored');
    const { stdout } = await runOk(GATEWAY_CLI, ['run', '--dir', site.dir, id, 'restore', '--point', backup.result.point, '--to', to, '--sparse', '--json']);
    const out = JSON.parse(stdout) as { ok: boolean; detail: { files: number; holeBytes: number } };
    expect(out.ok).toBe(true);
    expect(out.detail.holeBytes).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    const restored = path.join(to, 'sparse-data', 'disk-like.bin');
    expect(fs.readFileSync(restored).equals(content)).toBe(true);
    expect(fs.statSync(restored).blocks * 512).toBeLessThan(content.length - 8 * 1024 * 1024);

    const image = path.join(work, 'disk.img');
    fs.writeFileSync(image, randomBytes(1024 * 1024));
    const volume = JSON.parse((await runOk(AGENT_CLI, ['backup', '--state', state, '--volume', image, '--json'])).stdout) as { point: string };
    const refused = await run(GATEWAY_CLI, ['run', '--dir', site.dir, id, 'restore', '--point', volume.point, '--to', path.join(work, 'not-a-tree'), '--json']);
    expect(refused.code).toBe(1);
    const result = JSON.parse(refused.stdout) as { ok: boolean; result: { message: string } };
    expect(result.ok).toBe(false);
    expect(result.result.message).toMatch(/is a volume point: a fleet restore writes file trees; .*--to-volume/);
    expect(fs.existsSync(path.join(work, 'not-a-tree'))).toBe(false);
  });
});
