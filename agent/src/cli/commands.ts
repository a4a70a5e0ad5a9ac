/**
 * @module The agent's commands, loaded by `bulwark-agent` (cli/main.ts)
 * once it has started what can start early.
 */
import { bar, formatBytes, isSystemError, parseOptions, ProgressLine, readSecret, runCommand, UsageError } from '@bulwark/proto';
import { loadState, StateError } from '../state/state.js';
import { backupFiles } from '../jobs/backup-files.js';
import { connectAgent } from '../jobs/connect.js';
import { listPoints, loadVerifiedPoint, openForeignAccess, ownAccess, resolvePoint, restoreFiles, RestoreError } from '../restore/restore.js';
import { GatewayError } from '../transport/link.js';
import { BlobIntegrityError } from '../crypto/envelope.js';
import { VolumeSourceError } from '../sources/volume/source.js';

const USAGE = `Usage: bulwark-agent <command> [options]

  enroll  --state S --gateway wss://HOST:PORT --token T
                                    join a site (makes this agent's keys and certificate)
  run     --state S [--broker mqtts://HOST:PORT] [--heartbeat SECONDS]
                                    the agent service: fleet link, heartbeats, commanded and scheduled jobs
  backup  --state S [--json] PATH...
                                    back up file trees
  backup  --state S [--json] --volume PATH [--cbt-bitmap FILE]
                                    back up a block device or disk image (changed blocks only)
  points  --state S [--json] [--from-agent AGENT --restore-password-file F]
                                    list restore points
  restore --state S POINT --to DIR [--sparse] [--from-agent AGENT --restore-password-file F]
                                    restore a point ("latest", or an id prefix) into DIR;
                                    --sparse leaves runs of zeros (64 KiB or more) as holes;
                                    --from-agent restores another host's point (needs the restore password)
  restore --state S POINT --to-volume PATH
                                    write a volume point as a full image (file or device), verified
`;

function stateDir(value: string | undefined): string {
  if (!value) throw new UsageError('--state S is required: the agent\'s state directory');
  return value;
}

async function access(link: Awaited<ReturnType<typeof connectAgent>>, state: ReturnType<typeof loadState>, fromAgent?: string, passwordFile?: string) {
  if (!fromAgent || fromAgent === state.config.agentId) return ownAccess(state);
  const password = await readSecret(passwordFile, `Restore password for agent ${fromAgent}'s points: `);
  return openForeignAccess(link, fromAgent, password);
}

// Fleet (MQTT) and enrollment (X.509) code is more than half the bundle: loaded only by the commands that use it.
const commands: Record<string, (args: string[]) => Promise<void>> = {
  run: async (args) => (await import('../fleet/cli-run.js')).runService(args),

  async enroll(args) {
    const { values } = parseOptions(args, { state: { type: 'string' }, gateway: { type: 'string' }, token: { type: 'string' } });
    if (!values.gateway) throw new UsageError('--gateway wss://HOST:PORT is required');
    if (!values.token) throw new UsageError('--token T is required (from `bulwark-gateway token`)');
    const { enroll } = await import('../enroll/enroll.js');
    const config = await enroll(stateDir(values.state), values.gateway, values.token);
    console.log(`Enrolled as agent ${config.agentId} in site ${config.siteId}; the master key is deposited, sealed to the site's recovery key.`);
  },

  async backup(args) {
    const { values, positionals } = parseOptions(args, { state: { type: 'string' }, json: { type: 'boolean' }, volume: { type: 'string' }, 'cbt-bitmap': { type: 'string' } }, true);
    if (values.volume !== undefined || values['cbt-bitmap'] !== undefined) {
      if (!values.volume || positionals.length > 0) throw new UsageError('backup --volume takes one PATH (a block device or image file) and no other paths');
      const { backupVolume, printVolumeBackup } = await import('../jobs/backup-volume.js');
      const report = await backupVolume(loadState(stateDir(values.state)), values.volume, { bitmapFile: values['cbt-bitmap'], progress: !values.json && process.stderr.isTTY === true });
      printVolumeBackup(report, values.json === true);
      return;
    }
    if (positionals.length === 0) throw new UsageError('backup needs at least one PATH');
    const state = loadState(stateDir(values.state));
    const report = await backupFiles(state, positionals, { progress: !values.json && process.stderr.isTTY === true });
    for (const warning of report.warnings) process.stderr.write(`warning: ${warning}\n`);
    if (values.json) { console.log(JSON.stringify({ ...report, peakRssBytes: process.resourceUsage().maxRSS * 1024 })); return; }
    console.log(`Point ${report.point} committed: ${report.files} files, ${report.dirs} directories, ${formatBytes(report.logicalBytes)}.`);
    console.log(`Read ${formatBytes(report.bytesRead)} (${report.unchangedFiles} files unchanged), sent ${formatBytes(report.bytesSent)} in ${report.seconds.toFixed(2)} s.`);
    if (report.warnings.length) console.log(`${report.warnings.length} entries were skipped (see warnings above).`);
  },

  async points(args) {
    const { values } = parseOptions(args, { state: { type: 'string' }, json: { type: 'boolean' }, 'from-agent': { type: 'string' }, 'restore-password-file': { type: 'string' } });
    const state = loadState(stateDir(values.state));
    const link = await connectAgent(state);
    try {
      const who = await access(link, state, values['from-agent'], values['restore-password-file']);
      const points = (await listPoints(link, who.agentId)).map((p) => ({
        id: p.header.pointId.toString('hex'), agent: p.header.agentId, kind: p.header.kind, created: new Date(p.header.createdUnixMs).toISOString(),
        logicalBytes: p.header.logicalBytes, blobs: p.header.blobCount, provider: p.header.provider ?? '', state: p.state,
        crashConsistent: p.header.crashConsistent === true,
      }));
      if (values.json) { console.log(JSON.stringify(points, null, 2)); return; }
      if (points.length === 0) { console.log('No restore points yet.'); return; }
      for (const p of points) console.log(`${p.id}  ${p.created}  ${p.kind.padEnd(6)}  ${formatBytes(p.logicalBytes).padStart(10)}  ${p.state}${p.kind === 'volume' ? `  ${p.provider}${p.crashConsistent ? '' : '  crash-inconsistent'}` : ''}`);
    } finally {
      link.close();
    }
  },

  async restore(args) {
    const { values, positionals } = parseOptions(args, { state: { type: 'string' }, to: { type: 'string' }, 'to-volume': { type: 'string' }, sparse: { type: 'boolean' }, json: { type: 'boolean' }, 'from-agent': { type: 'string' }, 'restore-password-file': { type: 'string' } }, true);
    if (positionals.length !== 1) throw new UsageError('restore takes one POINT ("latest" or an id prefix)');
    if (values['to-volume'] !== undefined) {
      if (values.to) throw new UsageError('give either --to DIR (file points) or --to-volume PATH (volume points)');
      if (values.sparse) throw new UsageError('--sparse is for --to DIR: a volume restore always leaves the image\'s zero ranges as holes');
      const { restoreVolumeCommand } = await import('../restore/restore-volume.js');
      const state = loadState(stateDir(values.state));
      await restoreVolumeCommand({ state, point: positionals[0], target: values['to-volume'], json: values.json === true, openAccess: (link) => access(link, state, values['from-agent'], values['restore-password-file']) });
      return;
    }
    if (!values.to) throw new UsageError('--to DIR is required');
    const state = loadState(stateDir(values.state));
    const link = await connectAgent(state);
    try {
      const who = await access(link, state, values['from-agent'], values['restore-password-file']);
      const summary = await resolvePoint(link, who.agentId, positionals[0]);
      if (summary.header.kind !== 'files') throw new RestoreError(`point ${summary.header.pointId.toString('hex')} is a ${summary.header.kind} point: use --to-volume`);
      const { manifest } = await loadVerifiedPoint(link, state, who, summary);
      const progress = new ProgressLine(!values.json && process.stderr.isTTY === true);
      const stats = await restoreFiles(link, state, who, manifest, values.to, { sparse: values.sparse === true, onProgress: (done, total) => progress.update(() => `restoring ${bar(total ? done / total : 1)} ${formatBytes(done)} of ${formatBytes(total)}`) });
      progress.done();
      const report = { point: summary.header.pointId.toString('hex'), ...stats, verified: true, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
      if (values.json) { console.log(JSON.stringify(report)); return; }
      console.log(`Restored point ${report.point} into ${stats.target}: ${stats.files} files, ${stats.dirs} directories, ${stats.symlinks} symlinks${stats.hardlinks ? `, ${stats.hardlinks} hard links` : ''}, ${formatBytes(stats.bytes)}${stats.holeBytes ? ` (${formatBytes(stats.holeBytes)} of zeros left as holes)` : ''} in ${stats.seconds.toFixed(2)} s (${formatBytes(stats.bytes / Math.max(stats.seconds, 0.001))}/s). Every blob's MAC and id checked.`);
    } finally {
      link.close();
    }
  },
};


// Nothing left to wait for but the command has not finished: a bug, never a silent success.
process.once('beforeExit', () => {
  process.stderr.write('bulwark-agent: internal error: the command stopped before it finished\n');
  process.exit(70);
});

runCommand(commands, USAGE, process.argv.slice(2)).then(() => process.exit(0), (err) => {
  if (err instanceof UsageError) { process.stderr.write(`bulwark-agent: ${err.message}\n\n${USAGE}`); process.exit(2); }
  const known = err instanceof StateError || err instanceof GatewayError || err instanceof RestoreError || err instanceof BlobIntegrityError || err instanceof VolumeSourceError || isSystemError(err);
  process.stderr.write(`bulwark-agent: ${known ? err.message : (err as Error).stack ?? err}\n`);
  process.exit(1);
});
