/**
 * @module The `backup` job for file trees, start to commit: worker pool,
 * uploader, tree walk, point commit, files cache. If the gateway reports
 * blobs missing at commit (a damaged or pruned store), the job runs again
 * without the files cache, which re-sends exactly what is missing.
 */
import os from 'node:os';
import { formatBytes, ProgressLine } from '@bulwark/proto';
import { ChunkPool } from '../pipeline/chunk-pool.js';
import { Uploader } from '../upload/uploader.js';
import { FilesCache, sourceKey } from '../cache/files-cache.js';
import { backupFileTrees, type WalkStats } from '../sources/files/backup.js';
import { commitPoint, MissingBlobsError } from '../point/commit.js';
import { connectAgent } from './connect.js';
import type { AgentState } from '../state/state.js';
import path from 'node:path';

export interface BackupReport {
  point: string; kind: 'files'; files: number; dirs: number; symlinks: number; unchangedFiles: number;
  bytesRead: number; logicalBytes: number; bytesSent: number; blobsSent: number; reconnects: number; seconds: number; warnings: string[];
  /** Seconds in each step: the walk (reading and sending), the commit (until the gateway countersigned; the files cache is written meanwhile). */
  phases: { walk: number; commit: number };
}

export async function backupFiles(state: AgentState, paths: string[], options: { progress?: boolean; onUploader?: (u: Uploader) => void } = {}): Promise<BackupReport> {
  const started = process.hrtime.bigint();
  const roots = paths.map((p) => path.resolve(p));
  const key = sourceKey('files', roots);
  const pool = new ChunkPool(state.keys);
  const progress = new ProgressLine(options.progress ?? process.stderr.isTTY === true);
  let bytesSentBefore = 0;
  let blobsSentBefore = 0;
  let reconnects = 0;
  try {
    for (let attempt = 0; ; attempt++) {
      const cache = FilesCache.load(state.paths.cacheDir, key);
      const uploader = new Uploader(() => connectAgent(state));
      // The TLS handshake runs while the walk compares metadata; blobs found meanwhile wait for it.
      const connected = uploader.start();
      connected.catch(() => undefined);
      options.onUploader?.(uploader);
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      const render = (s: WalkStats) => `backing up ${s.files} files, ${s.dirs} dirs: ${formatBytes(s.bytesRead)} read, ${formatBytes(uploader.totalBytesSent())} sent, ${formatBytes(s.bytesRead / Math.max(seconds(), 0.001))}/s`;
      try {
        const walk = await backupFileTrees(roots, { keys: state.keys, pool, uploader, cache, useCache: attempt === 0, onProgress: (s) => progress.update(() => render(s)) });
        await connected;
        const walked = seconds();
        progress.update(() => `${render(walk.stats)}; committing`, true);
        const committed = await commitPoint(state, uploader, {
          kind: 'files',
          manifest: { hostname: os.hostname(), roots: walk.roots, files: walk.stats.files, dirs: walk.stats.dirs, bytesRead: walk.stats.bytesRead },
          refs: walk.refs,
          logicalBytes: walk.stats.logicalBytes,
          previousPointId: cache.previousPointId ? Buffer.from(cache.previousPointId, 'hex') : undefined,
          provider: attempt === 0 && cache.previousPointId ? 'metadata-compare' : 'full-read',
          crashConsistent: false,
          remember: (pointId) => cache.stage(pointId.toString('hex')),
        });
        const pointHex = committed.pointId.toString('hex');
        progress.done();
        return {
          point: pointHex, kind: 'files', files: walk.stats.files, dirs: walk.stats.dirs, symlinks: walk.stats.symlinks, unchangedFiles: walk.stats.unchangedFiles,
          bytesRead: walk.stats.bytesRead, logicalBytes: walk.stats.logicalBytes, bytesSent: bytesSentBefore + uploader.totalBytesSent(),
          blobsSent: blobsSentBefore + uploader.stats.blobsSent, reconnects: reconnects + uploader.stats.reconnects, seconds: seconds(), warnings: walk.stats.warnings,
          phases: { walk: walked, commit: seconds() - walked },
        };
      } catch (err) {
        if (!(err instanceof MissingBlobsError) || attempt > 0) throw err;
        progress.done();
        process.stderr.write(`The gateway is missing blobs the files cache relied on (${err.message}); reading every file again to heal the chain.\n`);
        bytesSentBefore += uploader.totalBytesSent();
        blobsSentBefore += uploader.stats.blobsSent;
        reconnects += uploader.stats.reconnects;
      } finally {
        uploader.close();
      }
    }
  } finally {
    await pool.close();
  }
}
