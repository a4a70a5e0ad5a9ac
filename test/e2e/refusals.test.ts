/**
 * Must-hold 4: refused, with a clear error and nothing stored — no client
 * certificate, a certificate from another CA, an expired or revoked agent,
 * a reused or expired token, garbage and oversized frames, an unknown
 * protocol version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, PROTOCOL_VERSION, MAX_FRAME_BYTES } from '@bulwark/proto';
import { AGENT_CLI, GATEWAY_CLI, agentId, createSite, enrollAgent, newToken, run, runOk, tempDir, type Site } from '../support/cluster.js';
import { agentIdentity, connectRaw, type Identity, type RawClient } from '../support/raw-client.js';

/** Everything the gateway stores, so a test can show a refusal wrote nothing. */
function storeSnapshot(siteDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const full = path.join(dir, name);
      const st = fs.statSync(full);
      if (st.isDirectory()) walk(full); else out.push(`${path.relative(siteDir, full)}:${st.size}`);
    }
  };
  walk(path.join(siteDir, 'store'));
  return out.sort();
}

async function pointCount(siteDir: string): Promise<number> {
  const { stdout } = await runOk(GATEWAY_CLI, ['points', '--dir', siteDir, '--json']);
  return JSON.parse(stdout).length;
}

async function open(url: string, id: Identity): Promise<RawClient> {
  const outcome = await connectRaw(url, id);
  if (outcome.kind !== 'open') throw new Error(`expected an open connection, got ${JSON.stringify(outcome)}`);
  return outcome.client;
}

describe('the gateway refuses', () => {
  let site: Site;
  let other: Site;
  let state: string;
  let identity: Identity;

  beforeAll(async () => {
    site = await createSite();
    other = await createSite();
    state = await enrollAgent(site);
    identity = agentIdentity(state);
  });
  afterAll(async () => { await site.gateway.stop(); await other.gateway.stop(); });

  it('a peer without a client certificate', async () => {
    const before = storeSnapshot(site.dir);
    const outcome = await connectRaw(site.gateway.url, { ca: identity.ca });
    expect(outcome).toMatchObject({ kind: 'refused', status: 401 });
    expect((outcome as { reason: string }).reason).toMatch(/client certificate is required/);
    expect(storeSnapshot(site.dir)).toEqual(before);
  });

  it('a certificate issued by another site CA', async () => {
    const foreignState = await enrollAgent(other);
    const foreign = agentIdentity(foreignState);
    const outcome = await connectRaw(site.gateway.url, { key: foreign.key, cert: foreign.cert, ca: identity.ca });
    expect(outcome).toMatchObject({ kind: 'refused', status: 401 });
    expect((outcome as { reason: string }).reason).toMatch(/client certificate rejected/);
  });

  it('an expired agent certificate', async () => {
    const { issueAgentCert } = await import('../../gateway/dist/site/pki.js');
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    await import('reflect-metadata');
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys, signingAlgorithm: alg });
    const ca = { keyPem: fs.readFileSync(path.join(site.dir, 'tls/ca.key'), 'utf8'), certPem: fs.readFileSync(path.join(site.dir, 'tls/ca.crt'), 'utf8') };
    const issued = await issueAgentCert(ca, agentId(state), Buffer.from(csr.rawData), -1);
    const { KeyObject, X509Certificate } = await import('node:crypto');
    const outcome = await connectRaw(site.gateway.url, {
      key: KeyObject.from(keys.privateKey as never).export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: new X509Certificate(issued.certDer).toString(), ca: identity.ca,
    });
    expect(outcome).toMatchObject({ kind: 'refused', status: 401 });
    expect((outcome as { reason: string }).reason).toMatch(/CERT_HAS_EXPIRED|expired/i);
  });

  it('a revoked agent, and the agent says why', async () => {
    const victim = await enrollAgent(site);
    await runOk(GATEWAY_CLI, ['revoke', '--dir', site.dir, agentId(victim)]);
    const outcome = await connectRaw(site.gateway.url, agentIdentity(victim));
    expect(outcome).toMatchObject({ kind: 'refused', status: 403 });
    const source = tempDir('revoked');
    fs.writeFileSync(path.join(source, 'f'), 'data');
    const result = await run(AGENT_CLI, ['backup', '--state', victim, source]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/was revoked/);
  });

  it('an agent revoked while connected: its open connection is closed', async () => {
    const victim = await enrollAgent(site);
    const client = await open(site.gateway.url, agentIdentity(victim));
    expect((await client.hello()).helloOk).toBeDefined();
    await runOk(GATEWAY_CLI, ['revoke', '--dir', site.dir, agentId(victim)]);
    const closed = await client.waitClosed(8000);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/revoked/);
  });

  it('a reused token and an expired token', async () => {
    const token = await newToken(site.dir);
    await runOk(AGENT_CLI, ['enroll', '--state', path.join(tempDir('a'), 's'), '--gateway', site.gateway.url, '--token', token]);
    const reused = await run(AGENT_CLI, ['enroll', '--state', path.join(tempDir('b'), 's'), '--gateway', site.gateway.url, '--token', token]);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/already used/);
    const shortLived = await newToken(site.dir, 0.01);
    await new Promise((r) => setTimeout(r, 1200));
    const stateDir = path.join(tempDir('c'), 's');
    const expired = await run(AGENT_CLI, ['enroll', '--state', stateDir, '--gateway', site.gateway.url, '--token', shortLived]);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toMatch(/expired .* ago/);
    expect(fs.existsSync(path.join(stateDir, 'agent.json'))).toBe(false);
  });

  it('a token for another site (CA fingerprint mismatch) before sending it', async () => {
    const token = await newToken(other.dir);
    const result = await run(AGENT_CLI, ['enroll', '--state', path.join(tempDir('d'), 's'), '--gateway', site.gateway.url, '--token', token]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/does not contain the CA named in the token/);
  });

  it('garbage frames', async () => {
    const before = storeSnapshot(site.dir);
    const client = await open(site.gateway.url, identity);
    expect((await client.hello()).helloOk).toBeDefined();
    client.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
    const error = (await client.next()).error!;
    expect(error.code).toBe(ErrorCode.MALFORMED_FRAME);
    expect(error.message).toMatch(/does not decode/);
    expect((await client.waitClosed()).code).toBe(1008);
    const text = await open(site.gateway.url, identity);
    text.sendRaw('hello as text');
    expect((await text.next()).error!.code).toBe(ErrorCode.MALFORMED_FRAME);
    expect(storeSnapshot(site.dir)).toEqual(before);
  });

  it('oversized frames', async () => {
    const before = storeSnapshot(site.dir);
    const client = await open(site.gateway.url, identity);
    await client.hello();
    client.send({ blobData: { blobs: [{ id: Buffer.alloc(32, 1), envelope: Buffer.alloc(MAX_FRAME_BYTES + 1024, 2) }] } });
    const error = (await client.next()).error!;
    expect(error.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    await client.waitClosed();
    const huge = await open(site.gateway.url, identity);
    await huge.hello();
    huge.sendRaw(Buffer.alloc(3 * MAX_FRAME_BYTES, 0));
    expect((await huge.waitClosed()).code).toBe(1009);
    expect(storeSnapshot(site.dir)).toEqual(before);
  });

  it('an unknown protocol version', async () => {
    const client = await open(site.gateway.url, identity);
    client.send({ hello: { protocolVersion: PROTOCOL_VERSION + 41, agentVersion: 'future' } });
    const error = (await client.next()).error!;
    expect(error.code).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(error.message).toMatch(/not supported.*speaks version 1/);
    await client.waitClosed();
  });

  it('frames before hello, and nothing was stored by any of it', async () => {
    const client = await open(site.gateway.url, identity);
    client.send({ blobData: { blobs: [{ id: Buffer.alloc(32, 3), envelope: Buffer.from('x') }] } });
    expect((await client.next()).error!.code).toBe(ErrorCode.UNEXPECTED_FRAME);
    expect(await pointCount(site.dir)).toBe(0);
    expect(storeSnapshot(site.dir).filter((f) => f.startsWith('store/packs'))).toEqual([]);
  });
});
