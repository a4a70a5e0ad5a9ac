/**
 * Must-hold 5: agent A cannot list, read or overwrite agent B's points or
 * blobs. Must-hold 6: the gateway's disk holds no plaintext of the data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@bulwark/proto';
import { AGENT_CLI, agentId, backup, createSite, enrollAgent, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { agentIdentity, connectRaw, type RawClient } from '../support/raw-client.js';
import { Rng, digestTree } from '../support/trees.js';

const MARKER = 'BULWARK-PLAINTEXT-MARKER-7f3a9c';
const NAME_MARKER = 'secret-file-name-q8z1';

describe('isolation between agents and confidentiality at rest', () => {
  let site: Site;
  let stateA: string;
  let stateB: string;
  let pointA: string;
  let client: RawClient;
  const work = tempDir('iso');
  const sourceA = path.join(work, 'a');

  beforeAll(async () => {
    site = await createSite();
    stateA = await enrollAgent(site);
    stateB = await enrollAgent(site);
    fs.mkdirSync(sourceA);
    const rng = new Rng(5);
    fs.writeFileSync(path.join(sourceA, `${NAME_MARKER}.txt`), `${MARKER}\n`.repeat(20_000));
    fs.writeFileSync(path.join(sourceA, 'plain-small.txt'), `${MARKER} short\n`);
    fs.writeFileSync(path.join(sourceA, 'random.bin'), Buffer.concat([rng.bytes(100_000), Buffer.from(MARKER), rng.bytes(100_000)]));
    pointA = (await backup(stateA, [sourceA])).point;
    const outcome = await connectRaw(site.gateway.url, agentIdentity(stateB));
    if (outcome.kind !== 'open') throw new Error('B could not connect');
    client = outcome.client;
    await client.hello();
  });
  afterAll(async () => { client?.close(); await site.gateway.stop(); });

  it('B cannot list A\'s points', async () => {
    client.send({ listPoints: { requestId: 1, agentId: agentId(stateA) } });
    const error = (await client.next()).error!;
    expect(error.code).toBe(ErrorCode.FORBIDDEN);
    expect(error.message).toMatch(/restore password/);
    client.send({ listPoints: { requestId: 2 } });
    expect((await client.next()).pointList!.points ?? []).toEqual([]);
  });

  it('B cannot fetch A\'s point or read A\'s blobs', async () => {
    client.send({ getPoint: { requestId: 3, pointId: Buffer.from(pointA, 'hex') } });
    expect((await client.next()).error!.code).toBe(ErrorCode.FORBIDDEN);
    // B learns A's blob ids only by cheating; even then its reads are scoped to its own blobs.
    const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
    const catalog = await Catalog.open(path.join(site.dir, 'catalog.db'));
    const row = await catalog.getPoint(Buffer.from(pointA, 'hex'));
    await catalog.close();
    const ids = [row!.refs.subarray(0, 32), row!.refs.subarray(32, 64)];
    client.send({ readBlobs: { requestId: 4, blobIds: ids } });
    const done = (await client.next()).readDone!;
    expect(done.missing).toEqual([0, 1]);
    client.send({ readBlobs: { requestId: 5, blobIds: ids, agentId: agentId(stateA) } });
    expect((await client.next()).error!.code).toBe(ErrorCode.FORBIDDEN);
    client.send({ haveQuery: { requestId: 6, blobIds: ids } });
    expect((await client.next()).haveAnswer!.missing).toEqual([0, 1]);
  });

  it('B cannot overwrite A\'s blobs or points', async () => {
    const { Catalog } = await import('../../gateway/dist/catalog/catalog.js');
    const catalog = await Catalog.open(path.join(site.dir, 'catalog.db'));
    const row = await catalog.getPoint(Buffer.from(pointA, 'hex'));
    await catalog.close();
    const victimId = row!.refs.subarray(0, 32);
    client.send({ blobData: { blobs: [{ id: victimId, envelope: Buffer.from('forged content') }] } });
    client.send({ flush: { requestId: 7 } });
    let frame = await client.next();
    while (!frame.ack?.flushRequestId) frame = await client.next();
    const { decodePointHeader } = await import('@bulwark/proto');
    const header = decodePointHeader(row!.header);
    client.send({ commitPoint: { requestId: 8, header, refs: row!.refs, agentSignature: row!.agent_signature } });
    const error = (await client.next()).error!;
    expect(error.code).toBe(ErrorCode.FORBIDDEN);
    // A's point still restores exactly, so nothing of A's was replaced.
    const target = path.join(work, 'restored-a');
    await runOk(AGENT_CLI, ['restore', '--state', stateA, pointA, '--to', target]);
    expect(digestTree(path.join(target, 'a'))).toEqual(digestTree(sourceA));
  });

  it('B restores A\'s point only with the restore password', async () => {
    const denied = await run(AGENT_CLI, ['restore', '--state', stateB, 'latest', '--to', path.join(work, 'b-denied')]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/no restore points/);
    const wrong = path.join(work, 'wrong-password');
    fs.writeFileSync(wrong, 'not the password\n');
    const refused = await run(AGENT_CLI, ['restore', '--state', stateB, pointA, '--to', path.join(work, 'b-wrong'), '--from-agent', agentId(stateA), '--restore-password-file', wrong]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/restore password is wrong/);
    const target = path.join(work, 'b-restored');
    await runOk(AGENT_CLI, ['restore', '--state', stateB, pointA, '--to', target, '--from-agent', agentId(stateA), '--restore-password-file', site.passwordFile]);
    expect(digestTree(path.join(target, 'a'))).toEqual(digestTree(sourceA));
  });

  it('the gateway\'s disk holds no plaintext: not the data, not the names', () => {
    for (const needle of [MARKER, NAME_MARKER, 'plain-small']) {
      let found = '';
      try {
        found = execFileSync('grep', ['-r', '-l', '-a', needle, site.dir], { encoding: 'utf8' });
      } catch (err) {
        if ((err as { status?: number }).status !== 1) throw err;
      }
      expect(found, `plaintext "${needle}" found on the gateway`).toBe('');
    }
  });
});
