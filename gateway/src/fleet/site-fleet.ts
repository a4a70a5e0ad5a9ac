/**
 * @module The fleet's files in a site directory, each made lazily the first
 * time it is needed (sites made before the fleet existed lack them): the
 * Ed25519 command key, the gateway's MQTT client certificate, and the broker
 * URL the running gateway advertises to agents at enrollment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GATEWAY_MQTT_IDENTITY } from '@bulwark/proto';
import { createSigningKey, type SigningKey } from '../keys/signing.js';
import { issueMqttCert, type KeyAndCert } from '../site/pki.js';
import type { Site } from '../site/site.js';

export function fleetPaths(siteDir: string) {
  return {
    commandKey: path.join(siteDir, 'keys', 'command.key'),
    mqttClient: path.join(siteDir, 'tls', 'mqtt-gateway.json'),
    broker: path.join(siteDir, 'fleet', 'broker.json'),
  };
}

/** Write once, whole (a reader never sees half a file); if another process won the race, keep its file. */
function writeOnce(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The site's command-signing key (public 32 bytes then secret 64, like the countersigning key). */
export function loadCommandKey(site: Site): SigningKey {
  const file = fleetPaths(site.paths.dir).commandKey;
  if (!fs.existsSync(file)) {
    const key = createSigningKey();
    writeOnce(file, Buffer.concat([key.publicKey, key.secretKey]));
  }
  const bytes = fs.readFileSync(file);
  if (bytes.length !== 96) throw new Error(`${file} is damaged (${bytes.length} bytes, expected 96): restore it from the site backup`);
  return { publicKey: bytes.subarray(0, 32), secretKey: bytes.subarray(32) };
}

/** The gateway's certificate for the broker (CN = GATEWAY_MQTT_IDENTITY), issued by the site CA. */
export async function gatewayMqttIdentity(site: Site): Promise<KeyAndCert> {
  const file = fleetPaths(site.paths.dir).mqttClient;
  // Key and certificate in one file, written once: two racing processes cannot pair one's key with the other's certificate.
  if (!fs.existsSync(file)) writeOnce(file, JSON.stringify(await issueMqttCert(site.ca, GATEWAY_MQTT_IDENTITY, 'client')));
  return JSON.parse(fs.readFileSync(file, 'utf8')) as KeyAndCert;
}

export interface BrokerAdvert { url: string; embedded: boolean; offlineAfterMs: number; updatedMs: number }

export function writeBrokerAdvert(site: Site, advert: BrokerAdvert): void {
  const file = fleetPaths(site.paths.dir).broker;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(advert, null, 2), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

export function readBrokerAdvert(site: Site): BrokerAdvert | undefined {
  try {
    return JSON.parse(fs.readFileSync(fleetPaths(site.paths.dir).broker, 'utf8')) as BrokerAdvert;
  } catch {
    return undefined;
  }
}
