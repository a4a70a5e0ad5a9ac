/**
 * @module The site's certificate authority: it issues the gateway's TLS
 * certificate and, from a CSR at enrollment, each agent's client certificate
 * (CN = agent id). ECDSA P-256 throughout; TLS 1.3 only.
 */
import { webcrypto, X509Certificate, createHash, KeyObject } from 'node:crypto';
import os from 'node:os';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface KeyAndCert { keyPem: string; certPem: string }

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return KeyObject.from(key as webcrypto.CryptoKey).export({ type: 'pkcs8', format: 'pem' }) as string;
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return (await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign'])) as unknown as CryptoKey;
}

function serial(): string {
  return webcrypto.getRandomValues(Buffer.alloc(16)).toString('hex').replace(/^[89a-f]/, '1');
}

export async function createSiteCa(siteId: string): Promise<KeyAndCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Bulwark site CA ${siteId}`,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 20 * 365 * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { keyPem: await exportKeyPem(keys.privateKey), certPem: `${cert.toString('pem')}\n` };
}

async function issue(ca: KeyAndCert, subject: string, publicKey: x509.PublicKey | CryptoKey, validDays: number, extensions: x509.Extension[]): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const notAfter = Date.now() + validDays * DAY_MS;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: caCert.subject,
    // Negative validity (tests of expiry) still needs notBefore < notAfter.
    notBefore: new Date(Math.min(Date.now() - 60_000, notAfter - DAY_MS)),
    notAfter: new Date(notAfter),
    signingAlgorithm: ALG,
    publicKey,
    signingKey: await importKeyPem(ca.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      ...extensions,
    ],
  });
  return `${cert.toString('pem')}\n`;
}

export async function issueGatewayCert(ca: KeyAndCert, extraNames: string[] = []): Promise<KeyAndCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const names = new Set(['localhost', '127.0.0.1', '::1', os.hostname(), ...extraNames]);
  const san = [...names].map((value) => ({ type: (/^[\d.]+$|:/.test(value) ? 'ip' : 'dns') as 'ip' | 'dns', value }));
  const certPem = await issue(ca, 'CN=Bulwark gateway', keys.publicKey, 5 * 365, [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(san),
  ]);
  return { keyPem: await exportKeyPem(keys.privateKey), certPem };
}

export class CsrError extends Error {}

/** Check an agent's CSR (self-signature) and issue its client certificate. */
export async function issueAgentCert(ca: KeyAndCert, agentId: string, csrDer: Buffer, validDays: number): Promise<{ certDer: Buffer; fingerprint: string; notAfterMs: number }> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(csrDer));
  } catch (err) {
    throw new CsrError(`certificate request does not parse: ${(err as Error).message}`);
  }
  if (!(await csr.verify())) throw new CsrError('certificate request signature is invalid');
  const pem = await issue(ca, `CN=${agentId}`, csr.publicKey, validDays, [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
  const cert = new X509Certificate(pem);
  return { certDer: cert.raw, fingerprint: certFingerprint(cert.raw), notAfterMs: Date.parse(cert.validTo) };
}

export function certFingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

export function pemToDer(pem: string): Buffer {
  return new X509Certificate(pem).raw;
}

/**
 * A certificate for the fleet's MQTT link: a client certificate (the gateway's
 * own, CN = its broker identity; or a simulated agent's in tests) or a server
 * certificate for an external broker, with `names` as subject alternative names.
 */
export async function issueMqttCert(ca: KeyAndCert, commonName: string, usage: 'client' | 'server', names: string[] = [], validDays = 5 * 365): Promise<KeyAndCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const extensions: x509.Extension[] = [
    new x509.ExtendedKeyUsageExtension([usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
  ];
  if (usage === 'server') {
    const all = new Set(['localhost', '127.0.0.1', '::1', os.hostname(), ...names]);
    extensions.push(new x509.SubjectAlternativeNameExtension([...all].map((value) => ({ type: (/^[\d.]+$|:/.test(value) ? 'ip' : 'dns') as 'ip' | 'dns', value }))));
  }
  const certPem = await issue(ca, `CN=${commonName}`, keys.publicKey, validDays, extensions);
  return { keyPem: await exportKeyPem(keys.privateKey), certPem };
}
