/**
 * @module The agent's state directory: identity, certificates, keys and the
 * files cache. Secrets are written 0600 under a 0700 directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeAll } from '@bulwark/proto/direct-io';
import { deriveKeys, type AgentKeys } from '../crypto/keys.js';

export interface AgentConfig { version: 1; agentId: string; siteId: string; gatewayUrl: string; hostname: string; enrolledMs: number; brokerUrl?: string }

export class StateError extends Error {}

export function statePaths(dir: string) {
  return {
    dir,
    config: path.join(dir, 'agent.json'),
    key: path.join(dir, 'tls', 'agent.key'),
    cert: path.join(dir, 'tls', 'agent.crt'),
    ca: path.join(dir, 'tls', 'ca.crt'),
    masterKey: path.join(dir, 'keys', 'master.key'),
    gatewaySignKey: path.join(dir, 'keys', 'gateway-sign.pub'),
    recoveryKey: path.join(dir, 'keys', 'recovery.pub'),
    commandKey: path.join(dir, 'keys', 'command.pub'),
    fleetDir: path.join(dir, 'fleet'),
    cacheDir: path.join(dir, 'cache'),
  };
}

export interface AgentState {
  config: AgentConfig;
  paths: ReturnType<typeof statePaths>;
  tls: { keyPem: string; certPem: string; caPem: string };
  keys: AgentKeys;
  gatewaySignPublicKey: Buffer;
  recoveryPublicKey: Buffer;
}

/** A file written under a temporary name, not yet in place. */
export interface StagedFile { install(): void }

/**
 * Writes `parts`, one after another, to a temporary name beside `file`;
 * install() renames it into place, so what depends on a later event (a
 * commit) can be written before it and appear only after. `durable` fsyncs
 * the data first: for what cannot be made again, not for caches.
 */
export function stagePrivate(file: string, parts: Uint8Array[], durable: boolean): StagedFile {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    let at = 0;
    for (const part of parts) { writeAll(fd, part, at); at += part.length; }
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { install: () => fs.renameSync(tmp, file) };
}

export function writePrivate(file: string, data: string | Buffer): void {
  stagePrivate(file, [typeof data === 'string' ? Buffer.from(data) : data], true).install();
}

export function loadState(dir: string): AgentState {
  const paths = statePaths(dir);
  if (!fs.existsSync(paths.config)) throw new StateError(`${dir} holds no enrolled agent: run \`bulwark-agent enroll --state ${dir} --gateway wss://HOST:PORT --token TOKEN\` first`);
  const read = (f: string) => fs.readFileSync(f, 'utf8');
  return {
    config: JSON.parse(read(paths.config)) as AgentConfig,
    paths,
    tls: { keyPem: read(paths.key), certPem: read(paths.cert), caPem: read(paths.ca) },
    keys: deriveKeys(fs.readFileSync(paths.masterKey)),
    gatewaySignPublicKey: fs.readFileSync(paths.gatewaySignKey),
    recoveryPublicKey: fs.readFileSync(paths.recoveryKey),
  };
}
