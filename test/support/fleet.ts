/**
 * @module Test support for the fleet: agent services as real processes, an
 * in-process observer that speaks MQTT as the gateway, and the fleet view.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { MqttClient } from 'mqtt';
import { AGENT_CLI, GATEWAY_CLI, runOk } from './cluster.js';
import { loadSite } from '../../gateway/dist/site/site.js';
import { connectGatewayMqtt } from '../../gateway/dist/fleet/mqtt-link.js';

export class AgentService {
  proc: ChildProcess;
  log = '';
  constructor(readonly stateDir: string, args: string[] = []) {
    this.proc = spawn(process.execPath, [AGENT_CLI, 'run', '--state', stateDir, '--heartbeat', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d) => { this.log += d; });
    this.proc.stderr!.on('data', (d) => { this.log += d; });
  }
  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      this.proc.once('exit', () => { clearTimeout(timer); resolve(); });
      this.proc.kill('SIGTERM');
    });
  }
}

export interface FleetRow { id: string; status: string; online: boolean; lastHeartbeat: string | null; version: string | null; lastBackup: { ok: boolean; point: string | null } | null; lastRejection: { what: string } | null; inventory: { os: string } | null }

export async function fleetView(siteDir: string): Promise<FleetRow[]> {
  return JSON.parse((await runOk(GATEWAY_CLI, ['agents', '--dir', siteDir, '--json'])).stdout) as FleetRow[];
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An MQTT session as the gateway (site CA client certificate), recording what it sees. */
export async function observer(siteDir: string, brokerUrl: string, filters: string[]): Promise<{ client: MqttClient; seen: { topic: string; payload: Buffer }[] }> {
  const site = loadSite(siteDir);
  const client = await connectGatewayMqtt(site, brokerUrl, { clientId: `bulwark-gateway-test-${process.pid}-${Math.random().toString(16).slice(2)}`, clean: true });
  const seen: { topic: string; payload: Buffer }[] = [];
  client.on('message', (topic, payload) => seen.push({ topic, payload }));
  await new Promise<void>((resolve, reject) => client.once('connect', () => client.subscribe(filters, { qos: 1 }, (err) => (err ? reject(err) : resolve()))));
  return { client, seen };
}
