/**
 * @module The gateway's own MQTT connection to the fleet broker (embedded or
 * external), authenticated by its site-CA client certificate.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { MQTT_PROTOCOL_VERSION } from '@bulwark/proto';
import type { Site } from '../site/site.js';
import { gatewayMqttIdentity } from './site-fleet.js';

export interface GatewayMqttOptions { clientId: string; clean: boolean; reconnectMs?: number }

export async function connectGatewayMqtt(site: Site, brokerUrl: string, options: GatewayMqttOptions): Promise<MqttClient> {
  if (!/^mqtts:\/\//.test(brokerUrl)) throw new Error(`the fleet broker URL must be mqtts://HOST:PORT (mutual TLS), not ${brokerUrl}`);
  const identity = await gatewayMqttIdentity(site);
  return mqtt.connect(brokerUrl, {
    clientId: options.clientId,
    clean: options.clean,
    protocolVersion: MQTT_PROTOCOL_VERSION,
    keepalive: 10,
    reconnectPeriod: options.reconnectMs ?? 1000,
    connectTimeout: 10_000,
    key: identity.keyPem,
    cert: identity.certPem,
    ca: site.ca.certPem,
    rejectUnauthorized: true,
  });
}

/** What the fleet service needs of its broker connection: an MQTT session, or the embedded broker in-process. */
export interface FleetLink {
  readonly connected: boolean;
  /** Subscribe now and again after every reconnect; `onConnect` runs after each (re)subscription. */
  listen(filters: string[], onMessage: (topic: string, payload: Buffer, retained: boolean) => void, onConnect: () => void): void;
  publish(topic: string, payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

export async function mqttFleetLink(site: Site, brokerUrl: string, clientId: string, log: { warn(m: string): void; error(m: string): void }): Promise<FleetLink> {
  const client = await connectGatewayMqtt(site, brokerUrl, { clientId, clean: false });
  let lastError = '';
  client.on('error', (err) => { if (err.message !== lastError) log.warn(`fleet: broker ${brokerUrl}: ${err.message}`); lastError = err.message; });
  client.on('offline', () => log.warn(`fleet: lost the broker ${brokerUrl}; reconnecting`));
  return {
    get connected() { return client.connected; },
    listen(filters, onMessage, onConnect) {
      client.on('message', (topic, payload, packet) => onMessage(topic, payload, packet.retain === true));
      client.on('connect', () => client.subscribe(filters, { qos: 1 }, (err) => {
        if (err) log.error(`fleet: subscribing to agent topics failed: ${err.message}`);
        onConnect();
      }));
    },
    publish: (topic, payload) => new Promise<void>((resolve) => client.publish(topic, payload, { qos: 1 }, () => resolve())),
    close: () => new Promise<void>((resolve) => client.end(false, {}, () => resolve())),
  };
}
