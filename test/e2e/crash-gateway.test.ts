/**
 * Must-hold 2: kill -9 of the gateway at random moments during an upload,
 * repeated: no committed point ever references a missing or corrupt blob,
 * and the next backup succeeds and restores exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, GATEWAY_CLI, backup, createSite, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { Rng, digestTree } from '../support/trees.js';

const ROUNDS = 20;

describe('gateway killed with SIGKILL during uploads', () => {
  let site: Site;
  let state: string;
  const work = tempDir('crash');
  const source = path.join(work, 'source');
  const rng = new Rng(2);

  beforeAll(async () => {
    fs.mkdirSync(source);
    site = await createSite();
    state = await enrollAgent(site);
  });
  afterAll(async () => { await site.gateway.stop(); });

  it(`keeps every committed point whole across ${ROUNDS} kills`, { timeout: 300_000 }, async () => {
    const outcomes = { committed: 0, failedCleanly: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      // New data every round, so each upload has real work in flight when the kill lands.
      const dir = path.join(source, `round-${round}`);
      fs.mkdirSync(dir);
      for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(dir, `f${i}`), i % 2 ? rng.bytes(200_000 + rng.int(1_500_000)) : rng.text(200_000 + rng.int(1_500_000)));
      const agent = spawn(process.execPath, [AGENT_CLI, 'backup', '--state', state, '--json', source], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      agent.stdout.on('data', (d) => { out += d; });
      agent.stderr.on('data', (d) => { err += d; });
      const exited = new Promise<number>((resolve) => agent.once('exit', (code) => resolve(code ?? -1)));
      await new Promise((r) => setTimeout(r, 150 + rng.int(900)));
      await site.gateway.kill9();
      const verifyAfterKill = await run(GATEWAY_CLI, ['verify', '--dir', site.dir, '--full', '--json']);
      const report = JSON.parse(verifyAfterKill.stdout);
      expect(report.findings, `round ${round}: ${verifyAfterKill.stdout}`).toEqual([]);
      await site.gateway.start(site.gateway.port);
      const code = await exited;
      // The agent either rides out the restart (reconnect + resume) or fails with a readable reason.
      if (code === 0) { expect(JSON.parse(out).point).toMatch(/^[0-9a-f]{32}$/); outcomes.committed++; }
      else { expect(err).toMatch(/^bulwark-agent: .*gateway/m); outcomes.failedCleanly++; }
    }
    const final = await backup(state, [source]);
    expect(final.point).toMatch(/^[0-9a-f]{32}$/);
    const verify = await runOk(GATEWAY_CLI, ['verify', '--dir', site.dir, '--full', '--json']);
    expect(JSON.parse(verify.stdout).findings).toEqual([]);
    const target = path.join(work, 'restored');
    await runOk(AGENT_CLI, ['restore', '--state', state, final.point, '--to', target]);
    expect(digestTree(path.join(target, 'source'))).toEqual(digestTree(source));
    expect(outcomes.committed + outcomes.failedCleanly).toBe(ROUNDS);
  });
});
