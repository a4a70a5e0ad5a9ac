/**
 * @module The gateway's fleet service, started by `bulwark-gateway serve`:
 * the broker (embedded unless an external one is configured), the gateway's
 * MQTT session, what agents report (presence, heartbeats, inventory, job
 * results, rejections, alerts), the command outbox that re-publishes until an
 * agent acknowledges, and the scheduler.
 */
import os from 'node:os';
import {
  decodeAgentMessage, fleetSiteFilters, fleetTopics, GATEWAY_MQTT_IDENTITY, parseFleetTopic, RejectReason,
  type AgentMessage, type CommandAction,
} from '@bulwark/proto';
import type { GatewayContext } from '../ingest/agent-connection.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js';
import type { FleetLink } from './mqtt-link.js';
import { loadCommandKey, writeBrokerAdvert } from './site-fleet.js';
import { FleetStore, OPEN_COMMAND_STATES, type PresenceUpdate } from './fleet-store.js';
import { signCommand } from './commands.js';
import { DEFAULT_RETRY, Scheduler, systemClock, type Clock, type RetryPolicy } from './scheduler.js';
import { DEFAULT_OFFLINE_AFTER_MS } from './fleet-view.js';

export const DEFAULT_MQTT_LISTEN = { host: '127.0.0.1', port: 8883 };

export interface FleetOptions {
  /** mqtts://HOST:PORT of an external broker; absent: run the embedded one. */
  brokerUrl?: string;
  mqttListen?: { host: string; port: number };
  /** URL agents are told at enrollment; default: the broker URL (embedded: its listen address). */
  advertiseUrl?: string;
  offlineAfterMs?: number;
  clock?: Clock;
  tickMs?: number;
  resendMs?: number;
  retry?: Partial<RetryPolicy>;
}

export interface FleetService { brokerUrl: string; embedded: boolean; store: FleetStore; scheduler: Scheduler; close(): Promise<void> }

export async function startFleetService(ctx: GatewayContext, options: FleetOptions = {}): Promise<FleetService> {
  const { site, log } = ctx;
  const siteId = site.config.siteId;
  const clock = options.clock ?? systemClock;
  const offlineAfterMs = options.offlineAfterMs ?? DEFAULT_OFFLINE_AFTER_MS;
  const resendMs = options.resendMs ?? 5000;
  const store = await FleetStore.open(ctx.catalog.db);
  const commandKey = loadCommandKey(site);

  let embedded: EmbeddedBroker | undefined;
  let brokerUrl = options.brokerUrl;
  if (!brokerUrl) {
    const listen = options.mqttListen ?? DEFAULT_MQTT_LISTEN;
    embedded = await startEmbeddedBroker(site, listen.host, listen.port, log, async (identity) => {
      if (identity === GATEWAY_MQTT_IDENTITY) return true;
      const agent = await ctx.catalog.getAgent(identity);
      return !!agent && agent.revoked_ms === null;
    });
    const host = listen.host === '0.0.0.0' || listen.host === '::' ? os.hostname() : listen.host;
    brokerUrl = `mqtts://${host.includes(':') ? `[${host}]` : host}:${embedded.port}`;
  }
  const advertised = options.advertiseUrl ?? brokerUrl;
  writeBrokerAdvert(site, { url: advertised, embedded: !!embedded, offlineAfterMs, updatedMs: Date.now() });
  await store.setMeta('offline_after_ms', String(offlineAfterMs));

  // The MQTT client is loaded only for an external broker.
  const client: FleetLink = embedded ? embedded.link() : await (await import('./mqtt-link.js')).mqttFleetLink(site, brokerUrl, `${GATEWAY_MQTT_IDENTITY}-${siteId}`, log);
  const filters = fleetSiteFilters(siteId);

  // Enrolled, unrevoked agents: status from anyone else is dropped.
  let agents = new Map<string, boolean>();
  let agentsLoadedMs = 0;
  const refreshAgents = async () => {
    agents = new Map((await ctx.catalog.listAgents()).map((a) => [a.id, a.revoked_ms === null]));
    agentsLoadedMs = Date.now();
  };
  await refreshAgents();
  const isActiveAgent = async (id: string) => {
    if (!agents.has(id) && Date.now() - agentsLoadedMs > 1000) await refreshAgents();
    return agents.get(id) === true;
  };

  const pending = new Map<string, PresenceUpdate>();
  const mergePresence = (u: PresenceUpdate) => {
    const prev = pending.get(u.agentId);
    pending.set(u.agentId, prev ? { ...prev, ...Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) } : u);
  };

  const scheduler = new Scheduler(
    store,
    (agentId, action: CommandAction, ttlMs) => signCommand(commandKey, siteId, agentId, action, { ttlMs, nowMs: clock.now() }),
    clock, log, () => void pumpOutbox(),
    { ...DEFAULT_RETRY, ...options.retry },
  );

  const handle = async (agentId: string, retained: boolean, message: AgentMessage) => {
    const now = Date.now();
    if (message.presence) {
      mergePresence({ agentId, online: message.presence.online === true, seenMs: retained || !message.presence.online ? undefined : now });
    } else if (message.heartbeat) {
      const hb = message.heartbeat;
      mergePresence({
        agentId, online: true, seenMs: retained ? undefined : now, agentVersion: hb.agentVersion || undefined,
        inventory: hb.inventory ? JSON.stringify(hb.inventory) : undefined, runningCommand: hb.runningCommandId || null,
      });
    } else if (message.ack) {
      await store.moveCommand(message.ack.commandId, ['pending'], 'accepted', now);
    } else if (message.rejected) {
      const r = message.rejected;
      const row = r.commandId ? await store.getCommand(r.commandId) : undefined;
      if (r.reason === RejectReason.REPLAY && row && row.agent_id === agentId && OPEN_COMMAND_STATES.includes(row.state)) {
        // Our own re-send of a command the agent already has: delivery, not an attack.
        await store.moveCommand(row.id, ['pending'], 'accepted', now);
        return;
      }
      const text = `${RejectReason[r.reason] ?? r.reason}${r.commandId ? ` (${r.commandId})` : ''}: ${r.detail ?? ''}`;
      log.warn(`fleet: agent ${agentId} refused a command: ${text}`);
      await store.recordRejection(agentId, now, text);
      if (row && row.agent_id === agentId) {
        await store.moveCommand(row.id, OPEN_COMMAND_STATES, 'rejected', now, { message: text });
        await scheduler.finished(row.id, false, `refused by the agent: ${text}`);
      }
    } else if (message.result) {
      const res = message.result;
      const ok = res.ok === true;
      const moved = await store.moveCommand(res.commandId, OPEN_COMMAND_STATES, ok ? 'done' : 'failed', now, { message: res.message ?? '', result: JSON.stringify(res) });
      if (moved && res.action === 'backupNow') await store.recordBackup(agentId, now, ok, res.message ?? '', res.point || null);
      if (moved) await scheduler.finished(res.commandId, ok, res.message ?? '');
      mergePresence({ agentId, runningCommand: null });
    } else if (message.progress) {
      mergePresence({ agentId, runningCommand: message.progress.commandId });
    } else if (message.alert) {
      log.warn(`fleet: alert from ${agentId} (${message.alert.severity}): ${message.alert.message}`);
      await store.recordAlert(agentId, now, `${message.alert.severity}: ${message.alert.message}`);
    }
  };

  let chain: Promise<void> = Promise.resolve();
  const onMessage = (topic: string, payload: Buffer, retained: boolean) => {
    const where = parseFleetTopic(siteId, topic);
    if (!where || where.kind === 'cmd') return;
    chain = chain.then(async () => {
      if (!(await isActiveAgent(where.agentId))) return;
      let message: AgentMessage;
      try {
        message = decodeAgentMessage(payload);
      } catch (err) {
        log.warn(`fleet: unreadable message from ${where.agentId} on ${topic}: ${(err as Error).message}`);
        return;
      }
      if (message.agentId && message.agentId !== where.agentId) {
        log.warn(`fleet: message on ${topic} claims to be from ${message.agentId}; ignored`);
        return;
      }
      await handle(where.agentId, retained, message);
    }).catch((err) => log.error(`fleet: handling a message on ${topic} failed: ${(err as Error).message}`));
  };
  client.listen([filters.status, filters.events], onMessage, () => void pumpOutbox());

  let pumping = false;
  async function pumpOutbox(): Promise<void> {
    if (pumping || !client.connected) return;
    pumping = true;
    try {
      const now = clock.now();
      for (const row of await store.expireCommands(now)) {
        log.warn(`fleet: command ${row.id} (${row.action}) for ${row.agent_id} expired without a result`);
        await scheduler.finished(row.id, false, 'the command expired before the agent reported a result');
      }
      const rows = await store.commandsToSend(now, now - resendMs);
      const sent: string[] = [];
      for (const row of rows) {
        await client.publish(fleetTopics(siteId, row.agent_id).cmd, row.payload);
        sent.push(row.id);
      }
      await store.markSent(sent, now);
    } catch (err) {
      log.error(`fleet: outbox: ${(err as Error).message}`);
    } finally {
      pumping = false;
    }
  }

  const flushPresence = async () => {
    if (pending.size === 0) return;
    const batch = [...pending.values()];
    pending.clear();
    await store.applyPresence(batch).catch((err) => log.error(`fleet: recording presence failed: ${(err as Error).message}`));
  };
  const tickMs = options.tickMs ?? 1000;
  const timers = [
    setInterval(() => void flushPresence(), 250),
    setInterval(() => void pumpOutbox(), tickMs),
    setInterval(() => void scheduler.tick().catch((err) => log.error(`fleet: scheduler: ${(err as Error).message}`)), tickMs),
  ];
  log.info(`fleet: gateway connected to ${brokerUrl}${embedded ? ' (embedded)' : ''}; agents are told ${advertised}; offline after ${offlineAfterMs / 1000} s without a heartbeat`);

  return {
    brokerUrl: advertised,
    embedded: !!embedded,
    store,
    scheduler,
    async close() {
      for (const t of timers) clearInterval(t);
      await chain;
      await flushPresence();
      await client.close();
      await embedded?.close();
    },
  };
}
