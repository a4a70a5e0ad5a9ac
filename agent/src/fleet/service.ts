/**
 * @module `bulwark-agent run`: the agent service. Opens the fleet link and
 * runs what the gateway commands (backups with the paths of a policy or of
 * the command, verify, restore, policies and schedules, diagnostics); the
 * gateway schedules, the agent executes and reports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatBytes, type Command, type CommandActionName, type Policy, type SetSchedule } from '@bulwark/proto';
import { backupFiles } from '../jobs/backup-files.js';
import { connectAgent } from '../jobs/connect.js';
import { loadVerifiedPoint, ownAccess, resolvePoint, restoreFiles } from '../restore/restore.js';
import { AGENT_VERSION } from '../transport/link.js';
import { StateError, writePrivate, type AgentState } from '../state/state.js';
import { FleetAgent, type JobOutcome, type JobReporter } from './fleet-agent.js';
import { collectInventory } from './inventory.js';

/** This agent's state lacks what the fleet link needs; the message says how to fix it. */
export class FleetConfigError extends StateError {}

export interface ServiceOptions { brokerUrl?: string; heartbeatMs?: number; log?: (line: string) => void }

function readJson<T>(file: string, fallback: T): T {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as T; } catch { return fallback; }
}

export function startAgentService(state: AgentState, options: ServiceOptions = {}): FleetAgent {
  const brokerUrl = options.brokerUrl ?? state.config.brokerUrl;
  if (!brokerUrl) throw new FleetConfigError(`no fleet broker known: pass --broker mqtts://HOST:PORT (the gateway prints it at start), or re-enroll with a gateway that runs its fleet service`);
  if (!fs.existsSync(state.paths.commandKey)) throw new FleetConfigError(`${state.paths.commandKey} is missing: this agent was enrolled before fleet commands existed; re-enroll it to receive the site's command key`);
  const commandPublicKey = fs.readFileSync(state.paths.commandKey);
  const policiesFile = path.join(state.paths.fleetDir, 'policies.json');
  const schedulesFile = path.join(state.paths.fleetDir, 'schedules.json');
  const log = options.log ?? ((line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));

  const executor = async (command: Command, action: CommandActionName, report: JobReporter): Promise<JobOutcome> => {
    log(`running ${action} (command ${command.commandId})`);
    switch (action) {
      case 'backupNow': {
        const b = command.backupNow!;
        const policies = readJson<Record<string, Policy>>(policiesFile, {});
        const paths = b.paths?.length ? b.paths : (b.policyId ? policies[b.policyId]?.paths ?? [] : []);
        if (paths.length === 0) return { ok: false, message: b.policyId ? `policy ${b.policyId} has no paths on this agent: apply it first` : 'no paths to back up' };
        report.progress(0, `backing up ${paths.join(', ')}`);
        let ticker: NodeJS.Timeout | undefined;
        try {
          const r = await backupFiles(state, paths, {
            progress: false,
            onUploader: (u) => { clearInterval(ticker); ticker = setInterval(() => report.progress(undefined, `sent ${formatBytes(u.totalBytesSent())}`), 1000); },
          });
          return { ok: true, point: r.point, message: `${r.files} files, ${formatBytes(r.logicalBytes)}; sent ${formatBytes(r.bytesSent)} in ${r.seconds.toFixed(1)} s`, detailJson: JSON.stringify(r) };
        } finally {
          clearInterval(ticker);
        }
      }
      case 'verify':
      case 'restore': {
        const link = await connectAgent(state);
        try {
          const access = ownAccess(state);
          const summary = await resolvePoint(link, state.config.agentId, (command.verify?.point ?? command.restore?.point) || 'latest');
          const id = summary.header.pointId.toString('hex');
          const { manifest } = await loadVerifiedPoint(link, state, access, summary);
          if (action === 'verify') return { ok: summary.state === 'ok', point: id, message: `point ${id}: signatures, refs and manifest verify (${manifest.files} files); gateway state ${summary.state}` };
          // Restored as a tree, a volume point's manifest has no roots: the command would succeed and write nothing.
          if (summary.header.kind !== 'files') return { ok: false, point: id, message: `point ${id} is a ${summary.header.kind} point: a fleet restore writes file trees; restore it on the host with \`bulwark-agent restore --to-volume PATH\`` };
          const stats = await restoreFiles(link, state, access, manifest, command.restore!.target, { sparse: command.restore!.sparse === true, onProgress: (done, total) => report.progress(total ? done / total : 1, `restored ${formatBytes(done)} of ${formatBytes(total)}`) });
          return { ok: true, point: id, message: `restored ${stats.files} files (${formatBytes(stats.bytes)}${stats.holeBytes ? `, ${formatBytes(stats.holeBytes)} of zeros left as holes` : ''}) into ${stats.target}`, detailJson: JSON.stringify(stats) };
        } finally {
          link.close();
        }
      }
      case 'applyPolicy': {
        const p = command.applyPolicy!.policy;
        const policies = readJson<Record<string, Policy>>(policiesFile, {});
        policies[p.policyId] = { policyId: p.policyId, paths: p.paths ?? [] };
        writePrivate(policiesFile, JSON.stringify(policies, null, 2));
        return { ok: true, message: `policy ${p.policyId}: ${(p.paths ?? []).join(', ')}` };
      }
      case 'setSchedule': {
        const s = command.setSchedule!;
        const schedules = readJson<Record<string, SetSchedule>>(schedulesFile, {});
        schedules[s.policyId] = s;
        writePrivate(schedulesFile, JSON.stringify(schedules, null, 2));
        return { ok: true, message: `policy ${s.policyId} runs every ${s.periodMs / 1000} s (the gateway schedules it)` };
      }
      case 'collectDiagnostics': {
        const diagnostics = {
          agentVersion: AGENT_VERSION, node: process.version, platform: process.platform, pid: process.pid, uptimeSeconds: process.uptime(),
          memory: process.memoryUsage(), config: state.config, inventory: await collectInventory(),
          policies: readJson(policiesFile, {}), schedules: readJson(schedulesFile, {}),
        };
        return { ok: true, message: 'diagnostics collected', detailJson: JSON.stringify(diagnostics) };
      }
      case 'update':
        return { ok: false, message: `self-update to ${command.update!.version} is not available in this build: install it with the package manager` };
    }
  };

  return new FleetAgent({
    agentId: state.config.agentId, siteId: state.config.siteId, brokerUrl, tls: state.tls, commandPublicKey,
    fleetDir: state.paths.fleetDir, heartbeatMs: options.heartbeatMs, inventory: () => collectInventory(), executor, onLog: log,
  });
}
