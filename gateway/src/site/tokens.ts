/**
 * @module One-time enrollment tokens. The printed token carries the site
 * CA's fingerprint, so the agent can pin the CA before it trusts anything
 * the gateway says: `bwt1.<id>.<secret>.<ca-sha256>`.
 */
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';

export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000;

export interface ParsedToken { id: string; secret: string; caFingerprint: string }

export function parseToken(token: string): ParsedToken | undefined {
  const m = /^bwt1\.([0-9a-f]{16})\.([0-9a-f]{48})\.([0-9a-f]{64})$/.exec(token.trim());
  return m ? { id: m[1], secret: m[2], caFingerprint: m[3] } : undefined;
}

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

export async function createToken(catalog: Catalog, caFingerprint: string, ttlMs = DEFAULT_TOKEN_TTL_MS): Promise<{ token: string; expiresMs: number }> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(24).toString('hex');
  const now = Date.now();
  await catalog.addToken({ id, secret_hash: hashSecret(secret), created_ms: now, expires_ms: now + ttlMs });
  return { token: `bwt1.${id}.${secret}.${caFingerprint}`, expiresMs: now + ttlMs };
}

/** Why a token cannot be used, in words for the person holding it; undefined if it can. */
export async function tokenProblem(catalog: Catalog, token: string, nowMs: number): Promise<string | undefined> {
  const parsed = parseToken(token);
  if (!parsed) return 'the enrollment token is malformed: copy the whole last line printed by `bulwark-gateway token`';
  const row = await catalog.getToken(parsed.id);
  if (!row || !timingSafeEqual(row.secret_hash, hashSecret(parsed.secret))) return 'the enrollment token is not known to this gateway';
  if (row.used_ms !== null) return `the enrollment token was already used ${ago(nowMs - row.used_ms)} ago (by ${row.used_by}): run \`bulwark-gateway token\` for a new one`;
  if (row.expires_ms <= nowMs) return `the enrollment token expired ${ago(nowMs - row.expires_ms)} ago: run \`bulwark-gateway token\` for a new one`;
  return undefined;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}
