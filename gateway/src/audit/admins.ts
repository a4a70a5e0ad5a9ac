/**
 * @module Administrators, for the commands that need a person: holds and
 * pruning. An admin is a name and the SHA-256 of a random API key; the key
 * itself lives only in the file handed to that person. (The full admin plane
 * with roles, TOTP and allow-lists is a later issue.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import type { AuditLog } from './audit-log.js';

export class AdminError extends Error {}

/**
 * The four-eyes rule for every two-person operation: the admin who requested
 * it cannot approve it. A refusal is audited as an alert, then thrown.
 */
export async function requireSecondAdmin(audit: AuditLog, request: { admin: string; requestedBy: string; noun: string; id: string; object: string; refusedAction: string }, error: (message: string) => Error): Promise<void> {
  const { admin, requestedBy, noun, id, object, refusedAction } = request;
  if (admin !== requestedBy) return;
  await audit.append({ level: 'alert', actor: admin, action: refusedAction, object, detail: `admin ${admin} requested this ${noun} and cannot also approve it` });
  throw error(`four-eyes rule: ${admin} requested ${noun} ${id} and cannot approve it; another admin must`);
}

function keyHash(key: string): Buffer { return createHash('sha256').update(key.trim()).digest(); }

/** Create an admin; writes the new key to `keyFile` (0600, must not exist). */
export async function addAdmin(catalog: Catalog, name: string, keyFile: string, nowMs = Date.now()): Promise<void> {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw new AdminError(`admin name "${name}" must be 1–64 letters, digits or . _ @ -`);
  if (await catalog.db.get('SELECT 1 FROM admins WHERE name = ?', [name])) throw new AdminError(`admin ${name} exists already`);
  const key = `bwadm_${randomBytes(32).toString('base64url')}`;
  fs.mkdirSync(path.dirname(path.resolve(keyFile)), { recursive: true });
  fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600, flag: 'wx' });
  await catalog.db.transaction(async () => { await catalog.db.run('INSERT INTO admins(name, key_hash, created_ms) VALUES (?, ?, ?)', [name, keyHash(key), nowMs]); });
}

/** Which admin a key file belongs to. */
export async function identifyAdmin(catalog: Catalog, keyFile: string | undefined): Promise<string> {
  if (!keyFile) throw new AdminError('this command needs --admin-key-file F: the API key file of an admin (bulwark-gateway admin add)');
  let key: string;
  try { key = fs.readFileSync(keyFile, 'utf8'); } catch (err) { throw new AdminError(`cannot read admin key file ${keyFile}: ${(err as Error).message}`); }
  const row = await catalog.db.get<{ name: string }>('SELECT name FROM admins WHERE key_hash = ?', [keyHash(key)]);
  if (!row) throw new AdminError(`the key in ${keyFile} belongs to no admin of this site`);
  return row.name;
}

export async function listAdmins(catalog: Catalog): Promise<{ name: string; created_ms: number }[]> {
  return catalog.db.all('SELECT name, created_ms FROM admins ORDER BY name');
}
