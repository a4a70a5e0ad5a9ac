/**
 * @module The embedded fleet broker: aedes over mutual TLS with the site CA,
 * for a gateway with no external broker configured (the quick start). The
 * identity is the client certificate's CN, and every subscribe, publish and
 * delivery is checked against the same rules as the generated Mosquitto ACL
 * (acl.ts). An agent must also use its own id as MQTT client id, so it cannot
 * take over another agent's session.
 */
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Aedes, type Client } from 'aedes';
import { GATEWAY_MQTT_IDENTITY } from '@bulwark/proto';
import type { Site } from '../site/site.js';
import type { Log } from '../log/log.js';
import { aclAllows, validIdentity } from './acl.js';
import type { FleetLink } from './mqtt-link.js';

export interface EmbeddedBroker {
  host: string;
  port: number;
  /** The gateway's own link, in-process: no TLS loopback connection, no MQTT client. */
  link(): FleetLink;
  close(): Promise<void>;
}

const NOT_AUTHORIZED = 5;

/** `admit(identity)`: may this (CA-certified) identity connect now? The gateway refuses revoked agents here. */
export async function startEmbeddedBroker(site: Site, host: string, port: number, log: Log, admit: (identity: string) => Promise<boolean> = async () => true): Promise<EmbeddedBroker> {
  const siteId = site.config.siteId;
  const identities = new WeakMap<Client, string>();
  const identityOf = (client: Client | null): string | undefined => (client ? identities.get(client) : undefined);

  const broker = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      const socket = client.conn as tls.TLSSocket;
      const cn = typeof socket.getPeerCertificate === 'function' && socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
      const identity = Array.isArray(cn) ? undefined : cn;
      const refuse = (why: string) => {
        log.warn(`fleet broker: refused client ${client.id}: ${why}`);
        done(Object.assign(new Error(why), { returnCode: NOT_AUTHORIZED }), false);
      };
      if (!identity || !validIdentity(identity)) return refuse('no usable certificate CN');
      if (identity !== GATEWAY_MQTT_IDENTITY && client.id !== identity) return refuse(`agent ${identity} must connect with its own id as client id`);
      admit(identity).then((ok) => {
        if (!ok) return refuse(`${identity} is not an enrolled, unrevoked agent of this site`);
        identities.set(client, identity);
        done(null, true);
      }, (err: Error) => refuse(`could not check ${identity}: ${err.message}`));
    },
    authorizeSubscribe(client, subscription, done) {
      const identity = identityOf(client);
      if (identity && aclAllows(siteId, identity, subscription.topic, 'read')) return done(null, subscription);
      log.warn(`fleet broker: ${identity ?? client.id} may not subscribe to ${subscription.topic}`);
      // Refused subscriptions are granted as failures (SUBACK 0x80), like Mosquitto.
      done(null, null);
    },
    authorizePublish(client, packet, done) {
      const identity = identityOf(client);
      if (identity && aclAllows(siteId, identity, packet.topic, 'write')) return done(null);
      log.warn(`fleet broker: ${identity ?? 'unknown client'} may not publish to ${packet.topic}`);
      done(new Error('not authorized'));
    },
    authorizeForward(client, packet) {
      const identity = identityOf(client);
      return identity && aclAllows(siteId, identity, packet.topic, 'read') ? packet : null;
    },
  });

  const server = tls.createServer({
    key: site.gatewayTls.keyPem, cert: site.gatewayTls.certPem, ca: site.ca.certPem,
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
  }, (socket) => broker.handle(socket));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const bound = (server.address() as AddressInfo).port;
  log.info(`fleet: embedded MQTT broker on mqtts://${host}:${bound}`);
  return {
    host,
    port: bound,
    link(): FleetLink {
      let open = true;
      return {
        get connected() { return open && !broker.closed; },
        listen(filters, onMessage, onConnect) {
          let pending = filters.length;
          for (const filter of filters) {
            broker.subscribe(filter, (packet, done) => {
              onMessage(packet.topic, Buffer.from(packet.payload as Buffer), packet.retain === true);
              done();
            }, () => { if (--pending === 0) onConnect(); });
          }
        },
        publish: (topic, payload) => new Promise<void>((resolve, reject) => broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve()))),
        async close() { open = false; },
      };
    },
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
