/**
 * @module Enrollment: make the master key and a TLS key, prove the one-time
 * token over a TLS connection whose CA matches the fingerprint inside the
 * token, store the certificate, then deposit the master key sealed to the
 * site's recovery key over the new mutual-TLS link.
 */
import fs from 'node:fs';
import os from 'node:os';
import { createHash, webcrypto, X509Certificate, KeyObject } from 'node:crypto';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import type WebSocket from 'ws';
import { PROTOCOL_VERSION, decodeFrame, encodeFrame, ErrorCode } from '@bulwark/proto';
import { deriveKeys, newMasterKey, sealToRecoveryKey } from '../crypto/keys.js';
import { GatewayError, GatewayLink, openSocket } from '../transport/link.js';
import { statePaths, writePrivate, type AgentConfig } from '../state/state.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function derToPem(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
}

export async function enroll(stateDir: string, gatewayUrl: string, token: string): Promise<AgentConfig> {
  const paths = statePaths(stateDir);
  if (fs.existsSync(paths.config)) throw new GatewayError('REFUSED', `${stateDir} already holds an enrolled agent; use another --state directory`);
  const m = /^bwt1\.[0-9a-f]{16}\.[0-9a-f]{48}\.([0-9a-f]{64})$/.exec(token.trim());
  if (!m) throw new GatewayError(ErrorCode.TOKEN_INVALID, 'the enrollment token is malformed: copy the whole last line printed by `bulwark-gateway token`');
  const caFingerprint = m[1];
  if (!/^wss:\/\//.test(gatewayUrl)) throw new GatewayError('REFUSED', `--gateway must be a wss:// URL, not ${gatewayUrl}`);

  await import('reflect-metadata');
  // A CommonJS package loaded with import(): its exports may arrive as the default export (bundled chunk) or as names (plain Node).
  const x509Module = await import('@peculiar/x509');
  const x509 = x509Module.default ?? x509Module;
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const tlsKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const hostname = os.hostname();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${hostname}`, keys: tlsKeys, signingAlgorithm: ALG });
  const master = newMasterKey();
  const keys = deriveKeys(master);

  const { ws } = await openSocket(`${gatewayUrl.replace(/\/$/, '')}/v1/enroll`, { rejectUnauthorized: false });
  let caPem: string;
  try {
    caPem = pinnedCa(ws, caFingerprint, new URL(gatewayUrl).hostname);
  } catch (err) {
    ws.terminate();
    throw err;
  }
  const response = await new Promise<ReturnType<typeof decodeFrame>>((resolve, reject) => {
    ws.once('message', (data: Buffer) => { try { resolve(decodeFrame(data)); } catch (err) { reject(err); } });
    ws.once('close', () => reject(new GatewayError('CONNECTION', 'the gateway closed the enrollment connection without an answer')));
    ws.send(encodeFrame({ enrollRequest: { protocolVersion: PROTOCOL_VERSION, token: token.trim(), csrDer: Buffer.from(csr.rawData), hostname, signPublicKey: keys.signPublic } }));
  });
  ws.close();
  if (response.error) throw new GatewayError(response.error.code, `enrollment refused: ${response.error.message}`);
  const granted = response.enrollResponse;
  if (!granted) throw new GatewayError(ErrorCode.UNEXPECTED_FRAME, 'the gateway sent no enrollment answer');
  if (createHash('sha256').update(granted.caCertificateDer).digest('hex') !== caFingerprint) throw new GatewayError('REFUSED', 'the gateway returned a CA that does not match the token');

  const config: AgentConfig = { version: 1, agentId: granted.agentId, siteId: granted.siteId, gatewayUrl, hostname, enrolledMs: Date.now(), ...(granted.brokerUrl ? { brokerUrl: granted.brokerUrl } : {}) };
  const keyPem = KeyObject.from(tlsKeys.privateKey as webcrypto.CryptoKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  const certPem = derToPem(granted.certificateDer, 'CERTIFICATE');
  writePrivate(paths.masterKey, master);
  writePrivate(paths.key, keyPem);
  writePrivate(paths.cert, certPem);
  writePrivate(paths.ca, caPem);
  writePrivate(paths.gatewaySignKey, granted.gatewaySignPublicKey);
  writePrivate(paths.recoveryKey, granted.recoveryPublicKey);
  if (granted.commandPublicKey?.length) writePrivate(paths.commandKey, granted.commandPublicKey);

  // Deposit the sealed master key before declaring success: without it a lost host is a lost backup.
  const { link, hello } = await GatewayLink.connect(gatewayUrl, { keyPem, certPem, caPem });
  try {
    if (hello.needsKeyDeposit) {
      await link.send({ depositKey: { sealedMasterKey: sealToRecoveryKey(master, granted.recoveryPublicKey) } });
      await link.exchange({ listPoints: { requestId: 0 } }, 'pointList');
    }
  } finally {
    link.close();
  }
  writePrivate(paths.config, JSON.stringify(config, null, 2));
  return config;
}

/** The CA in the server's chain whose fingerprint the token names, after checking it signed the leaf for this host. */
function pinnedCa(ws: WebSocket, fingerprint: string, host: string): string {
  const socket = (ws as unknown as { _socket: TLSSocket })._socket;
  const leaf = socket.getPeerCertificate(true);
  let ca: X509Certificate | undefined;
  for (let c = leaf; c && c.raw; c = c.issuerCertificate === c ? (undefined as never) : c.issuerCertificate) {
    if (createHash('sha256').update(c.raw).digest('hex') === fingerprint) { ca = new X509Certificate(c.raw); break; }
    if (c.issuerCertificate === c) break;
  }
  if (!ca) throw new GatewayError('REFUSED', 'the gateway\'s certificate chain does not contain the CA named in the token: wrong gateway, or a machine in the middle');
  const leafCert = new X509Certificate(leaf.raw);
  if (!leafCert.verify(ca.publicKey)) throw new GatewayError('REFUSED', 'the gateway\'s certificate is not signed by the site CA named in the token');
  const mismatch = checkServerIdentity(host, leaf);
  if (mismatch) throw new GatewayError('REFUSED', `the gateway's certificate does not cover ${host}: ${mismatch.message}`);
  return ca.toString();
}
