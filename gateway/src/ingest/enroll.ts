/**
 * @module Enrollment on `/v1/enroll`: the one place a peer without a client
 * certificate may speak, and then only one EnrollRequest carrying a valid,
 * unused, unexpired token.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { ErrorCode, PROTOCOL_VERSION, ProtocolError, decodeFrame, frameKind, type ByteStream } from '@bulwark/proto';
import { CsrError, issueAgentCert, pemToDer } from '../site/pki.js';
import { parseToken, tokenProblem } from '../site/tokens.js';
import { FrameSender } from './wire.js';
import type { GatewayContext } from './agent-connection.js';
import { loadCommandKey, readBrokerAdvert } from '../fleet/site-fleet.js';

export const AGENT_CERT_DAYS = 365;

export function handleEnrollment(ws: WebSocket, socket: ByteStream, ctx: GatewayContext, remote: string): void {
  const sender = new FrameSender(ws, socket);
  let done = false;
  ws.on('message', async (data: Buffer) => {
    if (done) return;
    done = true;
    try {
      const frame = decodeFrame(data);
      const request = frame.enrollRequest;
      if (!request) throw new ProtocolError(ErrorCode.UNEXPECTED_FRAME, `expected an enrollment request, got ${frameKind(frame)}`);
      if (request.protocolVersion !== PROTOCOL_VERSION) throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `protocol version ${request.protocolVersion} is not supported; this gateway speaks version ${PROTOCOL_VERSION}`);
      const now = Date.now();
      const problem = await tokenProblem(ctx.catalog, request.token ?? '', now);
      if (problem) throw new ProtocolError(ErrorCode.TOKEN_INVALID, problem);
      if (request.signPublicKey?.length !== 32) throw new ProtocolError(ErrorCode.BAD_REQUEST, 'enrollment needs the agent\'s 32-byte Ed25519 public key');
      const agentId = `agt-${randomBytes(8).toString('hex')}`;
      let issued;
      try {
        issued = await issueAgentCert(ctx.site.ca, agentId, request.csrDer ?? Buffer.alloc(0), AGENT_CERT_DAYS);
      } catch (err) {
        if (err instanceof CsrError) throw new ProtocolError(ErrorCode.BAD_REQUEST, err.message);
        throw err;
      }
      const hostname = (request.hostname || 'unknown').slice(0, 255);
      const ok = await ctx.catalog.enrollAgent(parseToken(request.token)!.id, now, {
        id: agentId, hostname, cert_fingerprint: issued.fingerprint, cert_not_after_ms: issued.notAfterMs, sign_public_key: request.signPublicKey, enrolled_ms: now,
      });
      // Lost a race with another enrollment using the same token.
      if (!ok) throw new ProtocolError(ErrorCode.TOKEN_INVALID, (await tokenProblem(ctx.catalog, request.token, now)) ?? 'the enrollment token was just used');
      ctx.log.info(`enrolled agent ${agentId} (host ${hostname}, from ${remote})`);
      await sender.send({
        enrollResponse: {
          agentId, siteId: ctx.site.config.siteId, certificateDer: issued.certDer, caCertificateDer: pemToDer(ctx.site.ca.certPem),
          recoveryPublicKey: Buffer.from(ctx.site.recovery.publicKey, 'base64'), gatewaySignPublicKey: ctx.site.signing.publicKey,
          commandPublicKey: loadCommandKey(ctx.site).publicKey, brokerUrl: readBrokerAdvert(ctx.site)?.url ?? '',
        },
      });
      sender.close(1000, 'enrolled');
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : ErrorCode.INTERNAL;
      ctx.log.warn(`enrollment from ${remote} refused: ${(err as Error).message}`);
      sender.fail(code, (err as Error).message);
    }
  });
}
