/**
 * @module The `wss://` ingest server: TLS 1.3 with client certificates from
 * the site CA. Authentication happens at the HTTP upgrade, before any frame
 * is read: a peer that fails it gets an HTTP error with the reason in the
 * `x-bulwark-error` header and never reaches the protocol.
 */
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_FRAME_BYTES } from '@bulwark/proto';
import { certFingerprint } from '../site/pki.js';
import { AgentConnection, type GatewayContext } from './agent-connection.js';
import { handleEnrollment } from './enroll.js';

export const AGENT_PATH = '/v1/agent';
export const ENROLL_PATH = '/v1/enroll';
const REVOCATION_CHECK_MS = 2000;

export interface IngestServer { port: number; close(): Promise<void> }

function refuse(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found'}\r\nx-bulwark-error: ${reason.replace(/[\r\n]/g, ' ')}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export async function startIngestServer(ctx: GatewayContext, host: string, port: number): Promise<IngestServer> {
  const server = https.createServer({
    key: ctx.site.gatewayTls.keyPem,
    cert: ctx.site.gatewayTls.certPem + ctx.site.ca.certPem,
    ca: ctx.site.ca.certPem,
    requestCert: true,
    // Checked at upgrade instead, so a refused peer learns why.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  // Frames a little over the limit get a typed error from decodeFrame; far over it, ws closes with 1009.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 2 * MAX_FRAME_BYTES });
  const live = new Set<{ terminate(): void }>();
  /** Open agent connections by agent id, so a revocation (made by another process) cuts them too. */
  const agentSockets = new Map<string, Set<WebSocket>>();
  const revocationWatch = setInterval(async () => {
    if (agentSockets.size === 0) return;
    try {
      for (const [agentId, sockets] of agentSockets) {
        const agent = await ctx.catalog.getAgent(agentId);
        if (agent && agent.revoked_ms === null) continue;
        ctx.log.warn(`agent ${agentId} was revoked: closing its ${sockets.size} open connection(s)`);
        for (const ws of sockets) ws.close(1008, 'agent revoked');
      }
    } catch (err) {
      ctx.log.error(`revocation check failed: ${(err as Error).message}`);
    }
  }, REVOCATION_CHECK_MS);
  revocationWatch.unref();

  server.on('upgrade', async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tls = req.socket as TLSSocket;
    const remote = `${tls.remoteAddress}:${tls.remotePort}`;
    const path = (req.url ?? '').split('?')[0];
    try {
      if (path === ENROLL_PATH) {
        wss.handleUpgrade(req, socket, head, (ws) => { live.add(ws); ws.on('close', () => live.delete(ws)); handleEnrollment(ws, socket, ctx, remote); });
        return;
      }
      if (path !== AGENT_PATH) return refuse(socket, 404, `no such endpoint ${path}`);
      const peer = tls.getPeerCertificate();
      if (!peer || !peer.raw) return refuse(socket, 401, 'a client certificate is required: enroll this agent first (bulwark-agent enroll)');
      if (!tls.authorized) return refuse(socket, 401, `client certificate rejected: ${String(tls.authorizationError)}`);
      const agentId = peer.subject?.CN;
      const agent = typeof agentId === 'string' ? await ctx.catalog.getAgent(agentId) : undefined;
      if (!agent) return refuse(socket, 403, `certificate names agent ${agentId}, which this gateway does not know`);
      if (agent.revoked_ms !== null) return refuse(socket, 403, `agent ${agent.id} was revoked on ${new Date(agent.revoked_ms).toISOString()}`);
      if (agent.cert_fingerprint !== certFingerprint(peer.raw)) return refuse(socket, 403, `certificate is not the one issued to agent ${agent.id}`);
      wss.handleUpgrade(req, socket, head, (ws) => {
        live.add(ws);
        const mine = agentSockets.get(agent.id) ?? new Set<WebSocket>();
        agentSockets.set(agent.id, mine.add(ws));
        ws.on('close', () => {
          live.delete(ws);
          mine.delete(ws);
          if (mine.size === 0 && agentSockets.get(agent.id) === mine) agentSockets.delete(agent.id);
        });
        ctx.log.info(`agent ${agent.id} connected from ${remote}`);
        new AgentConnection(ws, socket, agent.id, ctx);
      });
    } catch (err) {
      ctx.log.error(`upgrade from ${remote} failed: ${(err as Error).message}`);
      socket.destroy();
    }
  });
  server.on('tlsClientError', (err, socket) => ctx.log.warn(`TLS handshake from ${socket.remoteAddress} failed: ${err.message}`));

  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, () => resolve()); });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise((resolve) => {
      clearInterval(revocationWatch);
      for (const ws of live) ws.terminate();
      wss.close();
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}
