/**
 * @module A site directory: where every file of a gateway lives, how it is
 * created (`init`) and loaded. One place computes each path.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSiteCa, issueGatewayCert, type KeyAndCert } from './pki.js';
import { createRecoveryKey, type SealedRecoveryKey } from '../keys/recovery.js';
import { createSigningKey, type SigningKey } from '../keys/signing.js';
import { Catalog } from '../catalog/catalog.js';
import { PackStore } from '../store/pack-store.js';

export interface SiteConfig { version: 1; siteId: string; createdMs: number }

export class SiteError extends Error {}

export function sitePaths(dir: string) {
  return {
    dir,
    config: path.join(dir, 'site.json'),
    caKey: path.join(dir, 'tls', 'ca.key'),
    caCert: path.join(dir, 'tls', 'ca.crt'),
    gatewayKey: path.join(dir, 'tls', 'gateway.key'),
    gatewayCert: path.join(dir, 'tls', 'gateway.crt'),
    recoveryKey: path.join(dir, 'keys', 'recovery.json'),
    signingKey: path.join(dir, 'keys', 'gateway-sign.key'),
    catalog: path.join(dir, 'catalog.db'),
    store: path.join(dir, 'store'),
  };
}

export interface Site {
  config: SiteConfig;
  paths: ReturnType<typeof sitePaths>;
  ca: KeyAndCert;
  gatewayTls: KeyAndCert;
  recovery: SealedRecoveryKey;
  signing: SigningKey;
}

function writePrivate(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, data, { mode: 0o600, flag: 'wx' });
}

export async function initSite(dir: string, restorePassword: string, extraNames: string[] = []): Promise<SiteConfig> {
  const paths = sitePaths(dir);
  if (fs.existsSync(paths.config)) throw new SiteError(`${dir} already holds a site (${paths.config} exists); refusing to overwrite it`);
  const recovery = createRecoveryKey(restorePassword);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const config: SiteConfig = { version: 1, siteId: `site-${randomBytes(6).toString('hex')}`, createdMs: Date.now() };
  const ca = await createSiteCa(config.siteId);
  const gatewayTls = await issueGatewayCert(ca, extraNames);
  const signing = createSigningKey();
  writePrivate(paths.caKey, ca.keyPem);
  writePrivate(paths.caCert, ca.certPem);
  writePrivate(paths.gatewayKey, gatewayTls.keyPem);
  writePrivate(paths.gatewayCert, gatewayTls.certPem);
  writePrivate(paths.recoveryKey, JSON.stringify(recovery, null, 2));
  writePrivate(paths.signingKey, Buffer.concat([signing.publicKey, signing.secretKey]));
  const catalog = await Catalog.open(paths.catalog);
  await catalog.setMeta('site_id', config.siteId);
  await catalog.close();
  await PackStore.open(paths.store);
  // Written last: a site without site.json is an interrupted init and can be redone.
  writePrivate(paths.config, JSON.stringify(config, null, 2));
  return config;
}

export function loadSite(dir: string): Site {
  const paths = sitePaths(dir);
  if (!fs.existsSync(paths.config)) throw new SiteError(`no site in ${dir}: run \`bulwark-gateway init --dir ${dir}\` first`);
  const read = (file: string) => fs.readFileSync(file, 'utf8');
  const signingBytes = fs.readFileSync(paths.signingKey);
  return {
    config: JSON.parse(read(paths.config)) as SiteConfig,
    paths,
    ca: { keyPem: read(paths.caKey), certPem: read(paths.caCert) },
    gatewayTls: { keyPem: read(paths.gatewayKey), certPem: read(paths.gatewayCert) },
    recovery: JSON.parse(read(paths.recoveryKey)) as SealedRecoveryKey,
    signing: { publicKey: signingBytes.subarray(0, 32), secretKey: signingBytes.subarray(32) },
  };
}
