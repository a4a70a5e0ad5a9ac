/**
 * @module What this host is, for the fleet view: OS, CPU, memory, volumes and
 * the agent version, from `systeminformation`. Cached: it changes rarely and
 * reading it costs tens of milliseconds.
 */
import os from 'node:os';
import si from 'systeminformation';
import type { Inventory } from '@bulwark/proto';
import { AGENT_VERSION } from '../transport/link.js';

const CACHE_MS = 5 * 60_000;
let cached: { at: number; value: Promise<Inventory> } | undefined;

async function read(): Promise<Inventory> {
  const [osInfo, cpu, mem, fsSize] = await Promise.all([
    si.osInfo().catch(() => undefined), si.cpu().catch(() => undefined), si.mem().catch(() => undefined), si.fsSize().catch(() => []),
  ]);
  return {
    hostname: os.hostname(),
    os: osInfo?.distro || os.type(),
    osRelease: osInfo?.release || os.release(),
    arch: osInfo?.arch || os.arch(),
    cpu: cpu ? `${cpu.manufacturer} ${cpu.brand}`.trim() : os.cpus()[0]?.model ?? 'unknown',
    cores: cpu?.cores || os.cpus().length,
    memoryBytes: mem?.total || os.totalmem(),
    volumes: fsSize.map((v) => ({ mount: v.mount, fs: v.type, sizeBytes: v.size, usedBytes: v.used })),
    agentVersion: AGENT_VERSION,
  };
}

export function collectInventory(nowMs = Date.now()): Promise<Inventory> {
  if (!cached || nowMs - cached.at > CACHE_MS) cached = { at: nowMs, value: read() };
  return cached.value;
}
