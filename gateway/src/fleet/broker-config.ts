/**
 * @module Everything an external Mosquitto needs to carry a site's fleet: the
 * site CA (to check client certificates), a server certificate issued by it,
 * the generated ACL, and a mosquitto.conf listener that ties them together.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Site } from '../site/site.js';
import { issueMqttCert } from '../site/pki.js';
import { mosquittoAcl } from './acl.js';

export interface BrokerBundle { dir: string; caFile: string; certFile: string; keyFile: string; aclFile: string; confFile: string }

export function mosquittoListenerConf(port: number, host: string | undefined, files: Pick<BrokerBundle, 'caFile' | 'certFile' | 'keyFile' | 'aclFile'>): string {
  return [
    `listener ${port}${host ? ` ${host}` : ''}`,
    `cafile ${files.caFile}`,
    `certfile ${files.certFile}`,
    `keyfile ${files.keyFile}`,
    'require_certificate true',
    'use_identity_as_username true',
    'tls_version tlsv1.2',
    `acl_file ${files.aclFile}`,
    'allow_anonymous false',
    '',
  ].join('\n');
}

export async function writeBrokerBundle(site: Site, outDir: string, options: { port?: number; host?: string; names?: string[] } = {}): Promise<BrokerBundle> {
  fs.mkdirSync(outDir, { recursive: true, mode: 0o755 });
  const abs = path.resolve(outDir);
  const b: BrokerBundle = {
    dir: abs, caFile: path.join(abs, 'ca.crt'), certFile: path.join(abs, 'broker.crt'), keyFile: path.join(abs, 'broker.key'),
    aclFile: path.join(abs, 'acl'), confFile: path.join(abs, 'mosquitto.conf'),
  };
  const cert = await issueMqttCert(site.ca, 'Bulwark fleet broker', 'server', options.names ?? []);
  fs.writeFileSync(b.caFile, site.ca.certPem, { mode: 0o644 });
  fs.writeFileSync(b.certFile, cert.certPem, { mode: 0o644 });
  fs.writeFileSync(b.keyFile, cert.keyPem, { mode: 0o600 });
  fs.writeFileSync(b.aclFile, mosquittoAcl(site.config.siteId), { mode: 0o644 });
  fs.writeFileSync(b.confFile, `# Bulwark fleet listener for site ${site.config.siteId}\n${mosquittoListenerConf(options.port ?? 8883, options.host, b)}`, { mode: 0o644 });
  return b;
}
