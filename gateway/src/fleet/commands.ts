/**
 * @module Making fleet commands: a Command naming its one target agent, a
 * fresh nonce and an expiry, signed by the site's command key. The broker
 * only carries the bytes; agents check everything (agent/src/fleet/verify.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  commandAction, commandSigningPayload, encodeCommand, encodeSignedCommand, MAX_COMMAND_TTL_MS,
  type Command, type CommandAction, type CommandActionName,
} from '@bulwark/proto';
import { sign, type SigningKey } from '../keys/signing.js';

export const DEFAULT_COMMAND_TTL_MS = 10 * 60 * 1000;

export interface SignedFleetCommand { command: Command; action: CommandActionName; payload: Buffer }

export function newCommandId(): string {
  return `cmd-${randomBytes(8).toString('hex')}`;
}

export function signCommand(key: SigningKey, siteId: string, agentId: string, action: CommandAction, options: { ttlMs?: number; nowMs?: number; commandId?: string } = {}): SignedFleetCommand {
  const now = options.nowMs ?? Date.now();
  const ttl = Math.min(options.ttlMs ?? DEFAULT_COMMAND_TTL_MS, MAX_COMMAND_TTL_MS);
  const command: Command = {
    commandId: options.commandId ?? newCommandId(), siteId, agentId, nonce: randomBytes(16), issuedUnixMs: now, expiresUnixMs: now + ttl, ...action,
  };
  const name = commandAction(command);
  if (!name) throw new Error('a command carries exactly one action');
  const bytes = encodeCommand(command);
  return { command, action: name, payload: encodeSignedCommand({ command: bytes, signature: sign(commandSigningPayload(bytes), key) }) };
}
