/**
 * @module The agent's fleet link: one MQTT session (client id = agent id,
 * persistent, so commands queued while it was away still arrive) to the
 * site's broker over mutual TLS. It announces itself online (retained; the
 * retained last will says offline), heartbeats with inventory, checks every
 * command (verify.ts) and reports rejections, and runs accepted commands one
 * at a time through an executor, reporting acknowledgement, progress and the
 * result. Usable many times in one process (the fleet simulation).
 */
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import {
  encodeAgentMessage, fleetTopics, MQTT_PROTOCOL_VERSION,
  type AgentMessageBody, type Command, type CommandActionName, type Inventory, type JobResult,
} from '@bulwark/proto';
import { ReplayCache, verifyCommand } from './verify.js';
import { AGENT_VERSION } from '../transport/link.js';

export interface JobReporter { progress(fraction: number | undefined, message: string): void }
export type JobOutcome = Omit<JobResult, 'commandId' | 'action'>;
export type Executor = (command: Command, action: CommandActionName, report: JobReporter) => Promise<JobOutcome>;

export interface FleetAgentOptions {
  agentId: string;
  siteId: string;
  brokerUrl: string;
  tls: { keyPem: string; certPem: string; caPem: string };
  commandPublicKey: Buffer;
  /** Where the replay cache lives; undefined: memory only (simulations). */
  fleetDir?: string;
  heartbeatMs?: number;
  inventory?: () => Promise<Inventory | undefined>;
  executor: Executor;
  onLog?: (line: string) => void;
}

export const DEFAULT_HEARTBEAT_MS = 10_000;

export class FleetAgent {
  readonly client: MqttClient;
  private readonly topics: ReturnType<typeof fleetTopics>;
  private readonly replay: ReplayCache;
  private readonly started = Date.now();
  private timer?: NodeJS.Timeout;
  private seq = 0;
  private running?: string;
  private queue: Promise<void> = Promise.resolve();
  /** Heartbeats left that carry the inventory (a few after each connect: the first may arrive before the gateway knows this agent). */
  private inventoryBeats = 3;
  readonly stats = { accepted: 0, rejected: 0, heartbeats: 0, connects: 0 };

  constructor(private readonly o: FleetAgentOptions) {
    this.topics = fleetTopics(o.siteId, o.agentId);
    this.replay = new ReplayCache(o.fleetDir ? path.join(o.fleetDir, 'replay.json') : undefined);
    const will = encodeAgentMessage({ agentId: o.agentId, sentUnixMs: 0, presence: { online: false } });
    this.client = mqtt.connect(o.brokerUrl, {
      clientId: o.agentId,
      clean: false,
      protocolVersion: MQTT_PROTOCOL_VERSION,
      keepalive: Math.max(5, Math.round((o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS) * 1.5 / 1000)),
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      key: o.tls.keyPem, cert: o.tls.certPem, ca: o.tls.caPem, rejectUnauthorized: true,
      will: { topic: this.topics.status, payload: will, qos: 1, retain: true },
    });
    this.client.on('connect', () => {
      this.stats.connects++;
      this.inventoryBeats = 3;
      this.client.subscribe(this.topics.cmd, { qos: 1 }, (err, granted) => {
        if (err || granted?.[0]?.qos === 128) this.log(`could not subscribe to ${this.topics.cmd}: ${err?.message ?? 'refused by the broker'}`);
      });
      this.publish(this.topics.status, { presence: { online: true } }, { qos: 1, retain: true });
      void this.heartbeat();
    });
    this.client.on('message', (_topic, payload) => this.onCommand(payload));
    let lastError = '';
    this.client.on('error', (err) => { if (err.message !== lastError) this.log(`broker ${o.brokerUrl}: ${err.message}`); lastError = err.message; });
    this.timer = setInterval(() => void this.heartbeat(), o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  }

  private log(line: string): void { this.o.onLog?.(line); }

  private publish(topic: string, body: AgentMessageBody, opts: { qos: 0 | 1; retain?: boolean }): void {
    this.client.publish(topic, encodeAgentMessage({ agentId: this.o.agentId, sentUnixMs: Date.now(), ...body }), opts);
  }

  private async heartbeat(): Promise<void> {
    if (!this.client.connected) return;
    const withInventory = this.inventoryBeats > 0 || this.seq % 30 === 0;
    const inventory = withInventory ? await this.o.inventory?.().catch(() => undefined) : undefined;
    if (inventory) this.inventoryBeats--;
    this.stats.heartbeats++;
    this.publish(this.topics.status, {
      heartbeat: { seq: ++this.seq, agentVersion: AGENT_VERSION, uptimeMs: Date.now() - this.started, runningCommandId: this.running ?? '', inventory },
    }, { qos: 0 });
  }

  private onCommand(payload: Buffer): void {
    const verdict = verifyCommand(payload, { agentId: this.o.agentId, siteId: this.o.siteId, commandPublicKey: this.o.commandPublicKey, replay: this.replay, nowMs: Date.now() });
    if (!verdict.ok) {
      this.stats.rejected++;
      this.log(`refused command ${verdict.commandId ?? '(unreadable)'}: ${verdict.detail}`);
      this.publish(this.topics.events, { rejected: { commandId: verdict.commandId ?? '', reason: verdict.reason, detail: verdict.detail } }, { qos: 1 });
      return;
    }
    const { command, action } = verdict;
    // Durable before anything runs: a crash after this point never runs it again.
    this.replay.remember(command.nonce.toString('hex'), command.expiresUnixMs, Date.now());
    this.stats.accepted++;
    this.publish(this.topics.events, { ack: { commandId: command.commandId, action } }, { qos: 1 });
    this.queue = this.queue.then(() => this.execute(command, action));
  }

  private async execute(command: Command, action: CommandActionName): Promise<void> {
    this.running = command.commandId;
    const report: JobReporter = {
      progress: (fraction, message) => this.publish(this.topics.events, { progress: { commandId: command.commandId, action, fraction, message } }, { qos: 1 }),
    };
    let outcome: JobOutcome;
    try {
      outcome = await this.o.executor(command, action, report);
    } catch (err) {
      outcome = { ok: false, message: (err as Error).message };
    }
    this.running = undefined;
    this.publish(this.topics.events, { result: { commandId: command.commandId, action, runId: command.backupNow?.runId ?? '', ...outcome } }, { qos: 1 });
  }

  alert(severity: string, message: string): void {
    this.publish(this.topics.events, { alert: { severity, message } }, { qos: 1 });
  }

  /** Wait for the running and queued commands, then leave cleanly (retained: offline). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.queue;
    if (this.client.connected) {
      await this.client.publishAsync(this.topics.status, encodeAgentMessage({ agentId: this.o.agentId, sentUnixMs: Date.now(), presence: { online: false } }), { qos: 1, retain: true }).catch(() => undefined);
    }
    await this.client.endAsync();
  }

  /** Vanish without a word, as a crashed host does (tests): the broker publishes the last will. */
  crash(): void {
    clearInterval(this.timer);
    this.client.options.reconnectPeriod = 0;
    this.client.stream?.destroy();
    this.client.end(true);
  }
}
