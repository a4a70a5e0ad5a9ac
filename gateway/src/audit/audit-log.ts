/**
 * @module The append-only, hash-chained audit log (`audit.log` in the site
 * directory, FORMAT.md "Audit log"). One JSON line per entry:
 * `{seq, time, level, actor, action, object, detail, prev, hash}` where
 * `hash` = SHA-256(prev ‖ canonical entry without `hash`). Each append is
 * fsynced before it returns. Appends from several processes (serve and the
 * CLI) are serialised by the catalog's write lock, and each append reads the
 * chain head from the file itself, so a crash never forks the chain.
 * Alerts are entries with level "alert"; they are also written to the
 * operator log.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Db } from '../catalog/sqlite.js';
import type { Log } from '../log/log.js';

export type AuditLevel = 'info' | 'warn' | 'alert';
export interface AuditEntry {
  seq: number; time: string; level: AuditLevel; actor: string; action: string; object: string; detail: unknown; prev: string; hash: string;
}
export interface AuditInput { level?: AuditLevel; actor: string; action: string; object?: string; detail?: unknown }

const GENESIS = '0'.repeat(64);
const TAIL_BYTES = 64 * 1024;

/** Stable JSON: object keys sorted, so the hash does not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  const { prev, ...rest } = entry;
  return createHash('sha256').update(prev).update(canonicalJson({ ...rest, prev })).digest('hex');
}

export class AuditLog {
  constructor(readonly path: string, private readonly db: Db, private readonly log?: Log, private readonly wallMs: () => number = Date.now) {}

  /** Append one entry (fsynced). Never call from inside a catalog transaction. */
  append(input: AuditInput): Promise<AuditEntry> {
    return this.db.transaction(async () => {
      const head = readHead(this.path);
      const partial: Omit<AuditEntry, 'hash'> = {
        seq: head.seq + 1, time: new Date(this.wallMs()).toISOString(), level: input.level ?? 'info', actor: input.actor,
        action: input.action, object: input.object ?? '', detail: input.detail ?? null, prev: head.hash,
      };
      const entry: AuditEntry = { ...partial, hash: entryHash(partial) };
      const fd = fs.openSync(this.path, 'a', 0o600);
      try {
        fs.writeSync(fd, `${JSON.stringify(entry)}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (entry.level === 'alert') this.log?.error(`ALERT ${entry.action} ${entry.object}: ${typeof entry.detail === 'string' ? entry.detail : JSON.stringify(entry.detail)}`);
      else if (entry.level === 'warn') this.log?.warn(`audit ${entry.action} ${entry.object}: ${typeof entry.detail === 'string' ? entry.detail : JSON.stringify(entry.detail)}`);
      return entry;
    });
  }

  alert(actor: string, action: string, object: string, detail: unknown): Promise<AuditEntry> {
    return this.append({ level: 'alert', actor, action, object, detail });
  }
}

function readHead(file: string): { seq: number; hash: string } {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch { return { seq: 0, hash: GENESIS }; }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return { seq: 0, hash: GENESIS };
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n').filter((l) => l.trim().length > 0);
    // A torn last line (crash mid-write, before fsync returned) was never acknowledged: chain from the one before.
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const entry = JSON.parse(lines[i]) as AuditEntry;
        if (typeof entry.seq === 'number' && typeof entry.hash === 'string') return { seq: entry.seq, hash: entry.hash };
      } catch { /* torn line */ }
    }
    throw new Error(`audit log ${file} has no readable entry in its last ${length} bytes; refusing to fork the chain`);
  } finally {
    fs.closeSync(fd);
  }
}

export interface AuditCheck { entries: AuditEntry[]; problems: string[] }

/** Read the whole log and check every link of the chain. */
export function readAudit(file: string): AuditCheck {
  const problems: string[] = [];
  const entries: AuditEntry[] = [];
  if (!fs.existsSync(file)) return { entries, problems };
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let prev = GENESIS;
  let seq = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let entry: AuditEntry;
    try { entry = JSON.parse(line) as AuditEntry; } catch {
      problems.push(`line ${i + 1}: not JSON${i === lines.length - 1 || (i === lines.length - 2 && lines[lines.length - 1] === '') ? ' (torn last line)' : ''}`);
      return;
    }
    const { hash, ...rest } = entry;
    if (entry.seq !== seq + 1) problems.push(`line ${i + 1}: sequence ${entry.seq} follows ${seq}`);
    if (entry.prev !== prev) problems.push(`line ${i + 1} (seq ${entry.seq}): prev does not link to the entry before`);
    if (entryHash(rest) !== hash) problems.push(`line ${i + 1} (seq ${entry.seq}): hash does not match the entry (edited)`);
    prev = hash;
    seq = entry.seq;
    entries.push(entry);
  });
  return { entries, problems };
}
