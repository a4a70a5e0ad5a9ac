/**
 * @module The `backup --volume` job: pick a change provider (bitmap, scan,
 * full read), take a point-in-time view, read and seal what changed in the
 * volume workers, overlay it on the previous point's map, commit, and only
 * then remember the new block hashes and tracker position. A kill at any
 * moment leaves the previous point and the remembered state as they were.
 */
import os from 'node:os';
import { formatBytes, freeNow, ProgressLine } from '@bulwark/proto';
import { Uploader } from '../upload/uploader.js';
import { commitPoint, MissingBlobsError } from '../point/commit.js';
import { connectAgent } from './connect.js';
import type { AgentState } from '../state/state.js';
import { chooseChangeSet, readBitmapFile, type ProviderName, type TrackingContext } from '../cbt/tracker.js';
import { openVolumeSource, pointInTime } from '../sources/volume/source.js';
import { loadVolumeMemory, stageVolumeMemory, volumeStateFile, VolumeStateError, type VolumeMemory } from '../sources/volume/volume-state.js';
import { HASH_ALGORITHM, sharedHashes, VolumeScanner } from '../sources/volume/scanner.js';
import { BlockLocations, imageDigest } from '../sources/volume/extents.js';
import { BLOCK_SIZE, GROUP_BLOCKS } from '../sources/volume/geometry.js';

export interface VolumeBackupReport {
  point: string; kind: 'volume'; path: string; provider: ProviderName; crashConsistent: boolean; snapshot: string;
  declined: string[]; sizeBytes: number; bytesRead: number; changedBytes: number; zeroBytes: number; dataBytes: number;
  bytesSent: number; blobsSent: number; extents: number; metadataBytes: number; reconnects: number; seconds: number; warnings: string[];
  /** Seconds spent in each phase: connecting and loading, reading and sending, committing (the block map is saved meanwhile). */
  phases: { start: number; read: number; commit: number };
}

export async function backupVolume(state: AgentState, volumePath: string, options: { bitmapFile?: string; progress?: boolean } = {}): Promise<VolumeBackupReport> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  const warnings: string[] = [];
  const source = openVolumeSource(volumePath);
  const scanner = new VolumeScanner(state.keys);
  let uploader = new Uploader(() => connectAgent(state));
  let connected: Promise<void> | undefined;
  const progress = new ProgressLine(options.progress ?? process.stderr.isTTY === true);
  const memoryFile = volumeStateFile(state.paths.cacheDir, source.path);
  let memory: VolumeMemory | undefined;
  try {
    memory = loadVolumeMemory(memoryFile);
  } catch (err) {
    if (!(err instanceof VolumeStateError)) throw err;
    warnings.push(`the remembered state of this volume is unusable (${err.message}); reading it in full`);
  }
  const ctx: TrackingContext = {
    volume: { path: source.path, sizeBytes: source.sizeBytes, blockSize: BLOCK_SIZE, blockDevice: source.blockDevice, deviceMajor: source.deviceMajor, deviceMinor: source.deviceMinor, hashAlgorithm: HASH_ALGORITHM },
    memory,
    bitmap: options.bitmapFile ? readBitmapFile(options.bitmapFile) : undefined,
  };
  const readStartedMs = Date.now();
  const view = pointInTime(source);
  if (view.note) warnings.push(view.note);
  let bytesSentBefore = 0;
  let blobsSentBefore = 0;
  try {
    const skip: ProviderName[] = [];
    for (let attempt = 0; ; attempt++) {
      const phases = { start: seconds(), read: 0, commit: 0 };
      const changes = chooseChangeSet(ctx, undefined, skip);
      const blocks = Math.ceil(source.sizeBytes / BLOCK_SIZE);
      const base = changes.compare && memory ? memory : undefined;
      const locations = base ? BlockLocations.fromEncodedMap(base.encodedMap) : new BlockLocations(source.sizeBytes);
      const hashes = sharedHashes(blocks, base?.hashes);
      const groups = sharedHashes(Math.ceil(blocks / GROUP_BLOCKS), base?.groups);
      let changedBytes = 0;
      const render = () => `backing up ${source.path} (${changes.provider}): ${formatBytes(changedBytes)} changed, ${formatBytes(uploader.totalBytesSent())} sent, ${seconds().toFixed(1)} s`;
      const scanning = scanner.scan({
        path: view.readPath, sizeBytes: source.sizeBytes, blockSize: BLOCK_SIZE, runs: changes.runs,
        prev: base ? base.hashes : null, out: hashes, prevGroups: base ? base.groups : null, outGroups: groups, aligned: changes.provider === 'full-read',
      }, async (id, envelope, blockList, plainBytes) => {
        locations.place(blockList, id);
        changedBytes += plainBytes;
        progress.update(render);
        // Each envelope has memory of its own (moved from the worker): freed once the gateway has it.
        await uploader.add([{ id, envelope, release: () => freeNow(envelope) }]);
      });
      // Connecting only once the workers have their jobs: it costs the main thread ~40 ms (Node builds its
      // root certificate store for the first TLS context) that would otherwise hold the jobs back. Blobs
      // wait in the uploader meanwhile; a failed connection fails the backup.
      if (!connected) { connected = uploader.start(); connected.catch(() => undefined); }
      const scan = await scanning.catch((err: unknown) => { throw view.explain(err); });
      locations.zero(scan.zeroedBlocks);
      await connected;
      phases.read = seconds() - phases.start;
      const map = locations.encodeMap({
        path: source.path, merkleRoot: imageDigest(hashes, source.sizeBytes, BLOCK_SIZE),
        provider: changes.provider, crashConsistent: view.crashConsistent, snapshot: view.method,
      });
      progress.update(() => `${render()}; committing`, true);
      try {
        const committed = await commitPoint(state, uploader, {
          kind: 'volume',
          manifest: { hostname: os.hostname(), roots: [], files: 0, dirs: 0, bytesRead: scan.bytesRead },
          encodedVolume: map.bytes,
          refs: map.blobs.map((id) => id.toString('hex')),
          logicalBytes: source.sizeBytes,
          previousPointId: memory ? Buffer.from(memory.record.pointId, 'hex') : undefined,
          provider: changes.provider,
          crashConsistent: view.crashConsistent,
          remember: (pointId) => stageVolumeMemory(memoryFile, {
            record: { version: 1, path: source.path, pointId: pointId.toString('hex'), sizeBytes: source.sizeBytes, blockSize: BLOCK_SIZE, hashAlgorithm: HASH_ALGORITHM, readStartedMs, cbt: changes.position },
            hashes, groups, encodedMap: map.bytes,
          }),
        });
        const pointHex = committed.pointId.toString('hex');
        phases.commit = seconds() - phases.start - phases.read;
        progress.done();
        return {
          point: pointHex, kind: 'volume', path: source.path, provider: changes.provider, crashConsistent: view.crashConsistent, snapshot: view.method,
          declined: changes.declined, sizeBytes: source.sizeBytes, bytesRead: scan.bytesRead, changedBytes, zeroBytes: scan.zeroBlocks * BLOCK_SIZE,
          dataBytes: map.dataBytes, bytesSent: bytesSentBefore + uploader.totalBytesSent(), blobsSent: blobsSentBefore + uploader.stats.blobsSent,
          extents: map.extents, metadataBytes: map.bytes.length, reconnects: uploader.stats.reconnects, seconds: seconds(), warnings, phases,
        };
      } catch (err) {
        if (!(err instanceof MissingBlobsError) || attempt > 0 || changes.provider === 'full-read') throw err;
        progress.done();
        warnings.push(`the gateway lacks blobs the previous point's map relies on (${err.message}); reading the volume in full`);
        skip.push('cbt-bitmap', 'hash-scan');
        bytesSentBefore += uploader.totalBytesSent();
        blobsSentBefore += uploader.stats.blobsSent;
        uploader.close();
        uploader = new Uploader(() => connectAgent(state));
        connected = undefined;
      }
    }
  } finally {
    view.release();
    uploader.close();
    await scanner.close();
  }
}

export function printVolumeBackup(report: VolumeBackupReport, json: boolean): void {
  for (const warning of report.warnings) process.stderr.write(`warning: ${warning}\n`);
  if (json) { console.log(JSON.stringify(report)); return; }
  console.log(`Point ${report.point} committed: volume ${report.path}, ${formatBytes(report.sizeBytes)}, by ${report.provider}${report.crashConsistent ? ` from a ${report.snapshot} snapshot` : ' — crash-inconsistent (no snapshot: read live)'}.`);
  if (report.declined.length) console.log(`Change tracking fell back: ${report.declined.join('; ')}.`);
  console.log(`Read ${formatBytes(report.bytesRead)}, ${formatBytes(report.changedBytes)} changed (${formatBytes(report.zeroBytes)} zero blocks not stored), sent ${formatBytes(report.bytesSent)} in ${report.seconds.toFixed(2)} s; map: ${report.extents} extents, ${formatBytes(report.metadataBytes)}.`);
}
