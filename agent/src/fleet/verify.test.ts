import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sodium from 'sodium-native';
import { describe, expect, it } from 'vitest';
import { commandSigningPayload, encodeCommand, encodeSignedCommand, RejectReason, type Command } from '@bulwark/proto';
import { ReplayCache, verifyCommand } from './verify.js';

function keypair() {
  const publicKey = Buffer.alloc(32);
  const secretKey = Buffer.alloc(64);
  sodium.crypto_sign_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}
function signed(key: { secretKey: Buffer }, over: Partial<Command> = {}): Buffer {
  const now = Date.now();
  const command: Command = { commandId: 'cmd-1', siteId: 's', agentId: 'agt-a', nonce: Buffer.alloc(16, 1), issuedUnixMs: now, expiresUnixMs: now + 60_000, collectDiagnostics: {}, ...over };
  const bytes = encodeCommand(command);
  const sig = Buffer.alloc(64);
  sodium.crypto_sign_detached(sig, commandSigningPayload(bytes), key.secretKey);
  return encodeSignedCommand({ command: bytes, signature: sig });
}

describe('verifyCommand', () => {
  const key = keypair();
  const ctx = (replay = new ReplayCache(undefined)) => ({ agentId: 'agt-a', siteId: 's', commandPublicKey: key.publicKey, replay, nowMs: Date.now() });

  it('accepts a good command and names its action', () => {
    const v = verifyCommand(signed(key), ctx());
    expect(v.ok && v.action).toBe('collectDiagnostics');
  });
  it('refuses another key, another agent, another site, an expired command and garbage', () => {
    const reason = (p: Buffer) => { const v = verifyCommand(p, ctx()); return v.ok ? 'ok' : v.reason; };
    expect(reason(signed(keypair()))).toBe(RejectReason.BAD_SIGNATURE);
    expect(reason(signed(key, { agentId: 'agt-b' }))).toBe(RejectReason.WRONG_AGENT);
    expect(reason(signed(key, { siteId: 'other' }))).toBe(RejectReason.WRONG_SITE);
    expect(reason(signed(key, { expiresUnixMs: Date.now() - 3600_000 }))).toBe(RejectReason.EXPIRED);
    expect(reason(signed(key, { expiresUnixMs: Date.now() + 7 * 86_400_000 }))).toBe(RejectReason.EXPIRED);
    expect(reason(Buffer.from('not a command'))).toBe(RejectReason.MALFORMED);
  });
  it('refuses a replay, also after a restart (the cache persists)', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-replay-')), 'replay.json');
    const payload = signed(key);
    const first = verifyCommand(payload, ctx(new ReplayCache(file)));
    expect(first.ok).toBe(true);
    if (first.ok) new ReplayCache(file).remember(first.command.nonce.toString('hex'), first.command.expiresUnixMs, Date.now());
    const again = verifyCommand(payload, ctx(new ReplayCache(file)));
    expect(!again.ok && again.reason).toBe(RejectReason.REPLAY);
  });
});
