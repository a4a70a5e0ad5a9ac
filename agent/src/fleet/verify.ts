/**
 * @module Checking a fleet command before anything runs: the site command
 * key's signature, this agent and site as target, the expiry, and a nonce
 * never seen before. Seen nonces persist in the state directory (kept until
 * their command expires, so the cache stays bounded) and are written before
 * the command runs: a restart never runs a command twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  commandAction, commandSigningPayload, decodeCommand, decodeSignedCommand, MAX_COMMAND_TTL_MS, RejectReason,
  type Command, type CommandActionName,
} from '@bulwark/proto';
import { verifyDetached } from '../crypto/keys.js';

/** Allowed disagreement between the gateway's clock and this host's. */
export const CLOCK_SKEW_MS = 5 * 60_000;

export class ReplayCache {
  private seen = new Map<string, number>();

  constructor(private readonly file: string | undefined) {
    if (file && fs.existsSync(file)) {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number>;
      this.seen = new Map(Object.entries(saved));
    }
  }

  has(nonceHex: string): boolean { return this.seen.has(nonceHex); }

  /** Remember a nonce until `expiresMs` (plus skew), durably. */
  remember(nonceHex: string, expiresMs: number, nowMs: number): void {
    for (const [n, exp] of this.seen) if (exp + CLOCK_SKEW_MS < nowMs) this.seen.delete(n);
    this.seen.set(nonceHex, expiresMs);
    if (!this.file) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(Object.fromEntries(this.seen)));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }

  get size(): number { return this.seen.size; }
}

export type Verdict =
  | { ok: true; command: Command; action: CommandActionName }
  | { ok: false; reason: RejectReason; detail: string; commandId?: string };

export interface VerifyContext { agentId: string; siteId: string; commandPublicKey: Buffer; replay: ReplayCache; nowMs: number }

export function verifyCommand(payload: Buffer, ctx: VerifyContext): Verdict {
  let signed;
  let command: Command;
  try {
    signed = decodeSignedCommand(payload);
    command = decodeCommand(signed.command);
  } catch (err) {
    return { ok: false, reason: RejectReason.MALFORMED, detail: (err as Error).message };
  }
  const commandId = command.commandId || undefined;
  const fail = (reason: RejectReason, detail: string): Verdict => ({ ok: false, reason, detail, commandId });
  if (!verifyDetached(commandSigningPayload(signed.command), signed.signature, ctx.commandPublicKey)) {
    return fail(RejectReason.BAD_SIGNATURE, 'the signature is not the site command key\'s');
  }
  // Signed by the site from here on; the rest guards against re-use of a genuine command.
  if (command.agentId !== ctx.agentId) return fail(RejectReason.WRONG_AGENT, `the command is for agent ${command.agentId}, not ${ctx.agentId}`);
  if (command.siteId !== ctx.siteId) return fail(RejectReason.WRONG_SITE, `the command is for site ${command.siteId}, not ${ctx.siteId}`);
  const expires = command.expiresUnixMs ?? 0;
  if (expires + CLOCK_SKEW_MS < ctx.nowMs || expires <= 0) return fail(RejectReason.EXPIRED, `the command expired at ${new Date(expires).toISOString()}`);
  if (expires - ctx.nowMs > MAX_COMMAND_TTL_MS + CLOCK_SKEW_MS) return fail(RejectReason.EXPIRED, `the command's expiry ${new Date(expires).toISOString()} is further out than ${MAX_COMMAND_TTL_MS / 3600_000} h`);
  if (!command.nonce || command.nonce.length < 16) return fail(RejectReason.MALFORMED, 'the command has no 16-byte nonce');
  const nonce = command.nonce.toString('hex');
  if (ctx.replay.has(nonce)) return fail(RejectReason.REPLAY, `nonce ${nonce} was already used`);
  const action = commandAction(command);
  if (!action) return fail(RejectReason.UNSUPPORTED, 'the command carries no action this agent knows');
  return { ok: true, command, action };
}
