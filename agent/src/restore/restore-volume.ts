/**
 * @module Restoring a volume point to an image file or a block device. The
 * point's map is complete (no chain to replay). Two writer workers open the
 * blobs and write them as volume-write-plan.ts lays out: window by window,
 * the small blobs of changed blocks first, kept in memory, then every other
 * blob once, in runs with those laid over; zero ranges are left as holes in
 * a new file (written as zeros on a device, which is then fsynced). Every
 * block is hashed as it is handed to the disk, and the image digest of those
 * hashes is compared with the one in the signed manifest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { bar, formatBytes, ProgressLine, type Manifest, type VolumeMap } from '@bulwark/proto';
import { loadVerifiedPoint, readBlobBatches, resolvePoint, RestoreError, type PointAccess } from './restore.js';
import { connectAgent } from '../jobs/connect.js';
import type { AgentState } from '../state/state.js';
import type { GatewayLink } from '../transport/link.js';
import type { FromVolumeWriter, ToVolumeWriter, VolumeWriterBlob } from './volume-write-worker.js';
import { volumeWritePlan } from './volume-write-plan.js';
import { imageDigest } from '../sources/volume/extents.js';
import { blockHashSecret, sharedHashes } from '../sources/volume/scanner.js';
import { blockHash } from '../sources/volume/scan-core.js';
import { WORKER_THREADS } from '../pipeline/threads.js';

/**
 * Envelopes handed to the writers and not yet written. 128 → 48 MiB: peak
 * RSS of the 2 GiB restore 352–379 → 274–289 MiB, its time the same (three
 * 8 MiB reads in flight keep both writers fed).
 */
const BUFFERED_LIMIT = 48 * 1024 * 1024;

export interface VolumeRestoreStats {
  target: string; sizeBytes: number; dataBytes: number; zeroBytes: number; blobs: number;
  seconds: number; writeSeconds: number; verifySeconds: number; bytesPerSecond: number; verified: boolean;
}

function prepareTarget(target: string, sizeBytes: number): { created: boolean; device: boolean } {
  let st: fs.Stats | undefined;
  try { st = fs.statSync(target); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; }
  if (!st) {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try { fs.ftruncateSync(fd, sizeBytes); } finally { fs.closeSync(fd); }
    return { created: true, device: false };
  }
  if (st.isBlockDevice()) return { created: false, device: true };
  if (st.isFile() && st.size === 0) {
    fs.truncateSync(target, sizeBytes);
    return { created: true, device: false };
  }
  throw new RestoreError(`${target} already exists: restore a volume to a new file, an empty file or a block device`);
}

/**
 * Writer threads started ahead of the restore: booting one (its isolate, the
 * addons) takes ~0.1 s of CPU, which overlaps the wait for the point and its
 * map. Unreferenced until a restore takes them.
 */
export function startVolumeWriters(count = WORKER_THREADS): Worker[] {
  return Array.from({ length: count }, () => {
    const worker = new Worker(new URL('./volume-write-worker.js', import.meta.url));
    worker.unref();
    return worker;
  });
}

/** `writers`: from startVolumeWriters (terminated here either way); started here if not given. */
export async function restoreVolume(link: GatewayLink, access: PointAccess, manifest: Manifest, refs: Buffer, targetPath: string, onProgress?: (done: number, total: number) => void, writers?: Worker[]): Promise<VolumeRestoreStats> {
  const started = Date.now();
  const map = manifest.volume;
  if (!map) throw new RestoreError('the point\'s manifest holds no volume map');
  const target = path.resolve(targetPath);
  const blobs = map.blobs ?? [];
  const referenced = new Set<string>();
  for (let i = 0; i < refs.length; i += 32) referenced.add(refs.subarray(i, i + 32).toString('hex'));
  for (const id of blobs) if (!referenced.has(id.toString('hex'))) throw new RestoreError(`the volume map uses blob ${id.toString('hex')}, which is not in the point's signed reference list`);
  const problem = volumeMapProblem(map);
  if (problem) throw new RestoreError(`the point's volume map cannot be restored: ${problem}`);
  const plan = volumeWritePlan(map);
  const { device } = prepareTarget(target, map.sizeBytes);
  if (device) {
    const { openVolumeSource } = await import('../sources/volume/source.js');
    const size = openVolumeSource(target).sizeBytes;
    if (size < map.sizeBytes) throw new RestoreError(`${target} holds ${size} bytes; the image needs ${map.sizeBytes}`);
  }

  const threads = WORKER_THREADS;
  const hashSecret = blockHashSecret(access.keys);
  const blockCount = Math.ceil(map.sizeBytes / map.blockSize);
  const hashes = sharedHashes(blockCount);
  const gaps = zeroGaps(map);
  fillZeroHashes(hashes, gaps, map.sizeBytes, map.blockSize, hashSecret);
  let buffered = 0;
  let written = 0;
  let failure: Error | undefined;
  let waiters: (() => void)[] = [];
  const signal = () => { const w = waiters; waiters = []; for (const f of w) f(); };
  const total = map.extents.reduce((n, e) => n + e.length, 0);
  const resident = new SharedArrayBuffer(plan.residentBytes);
  const workers = (writers ?? startVolumeWriters(threads)).map((worker) => {
    worker.ref();
    worker.postMessage({ type: 'init', dataKey: access.keys.data, blobIdKey: access.keys.blobId, hashSecret, path: target, hashes: hashes.buffer as SharedArrayBuffer, blockSize: map.blockSize, resident } satisfies ToVolumeWriter);
    worker.on('message', (m: FromVolumeWriter) => {
      if (m.type === 'failed') failure ??= new RestoreError(`writing ${target}: ${m.message}`);
      else if (m.type === 'written') { written += m.bytes; buffered -= m.envelopeBytes; onProgress?.(written, total); }
      signal();
    });
    worker.on('error', (err) => { failure ??= err; signal(); });
    return worker;
  });
  const waitFor = async (done: () => boolean) => {
    while (!done() && !failure) await new Promise<void>((resolve) => { waiters.push(resolve); });
    if (failure) throw failure;
  };

  let writeSeconds = 0;
  try {
    let zeroBytes = 0;
    for (const [, length] of gaps) zeroBytes += length;
    if (device) {
      // A device holds old data where the image has zeros: write them.
      let pendingZeros = 0;
      gaps.forEach(([offset, length], i) => { pendingZeros += length; workers[i % threads].postMessage({ type: 'zero', offset, length } satisfies ToVolumeWriter); });
      const target0 = written + pendingZeros;
      await waitFor(() => written >= target0);
      written -= pendingZeros;
    }
    const indexOf = new Map<string, number>();
    blobs.forEach((id, i) => indexOf.set(id.toString('hex'), i));
    let window = plan.windows[0];
    /** Blobs whose own ranges are written: the first time each is opened. */
    const opened = new Set<number>();
    /** What the writers do with blob `b` in this window: its ranges, runs and resident part, flattened for the message. */
    const writesOf = (b: number): Omit<VolumeWriterBlob, 'id' | 'envelope'> => {
      const pieces = opened.has(b) ? [] : plan.pieces.get(b) ?? [];
      opened.add(b);
      const targets = new Float64Array(pieces.length * 3);
      pieces.forEach((t, i) => { targets[i * 3] = t.imageOffset; targets[i * 3 + 1] = t.blobOffset; targets[i * 3 + 2] = t.length; });
      const flat: number[] = [];
      for (const run of plan.runs.get(b) ?? []) {
        flat.push(run.imageOffset, run.blobOffset, run.length, run.overlays.length);
        for (const o of run.overlays) flat.push(o.imageOffset, o.residentOffset, o.length);
      }
      const kept = window.resident.get(b);
      return { targets, runs: flat.length ? Float64Array.from(flat) : undefined, resident: kept ? [kept.offset, kept.bytes] : undefined };
    };
    let next = 0;
    /** One message per frame: the frame itself, moved to the worker when it may be, or copies of its envelopes. */
    const sendFrame = (received: { id: Buffer; envelope: Buffer }[], frame?: ArrayBuffer) => {
      const items: VolumeWriterBlob[] = [];
      let bytes = 0;
      for (const { id, envelope } of received) {
        const b = indexOf.get(id.toString('hex'));
        if (b === undefined) continue;
        const item = { ...writesOf(b), id, envelope };
        items.push(frame ? item : { ...item, id: new Uint8Array(id), envelope: new Uint8Array(envelope) });
        bytes += envelope.length;
      }
      if (items.length === 0) return;
      buffered += bytes;
      const transfer = frame ? [frame] : items.map((item) => item.envelope.buffer as ArrayBuffer);
      workers[next++ % threads].postMessage({ type: 'blobs', blobs: items } satisfies ToVolumeWriter, transfer);
    };
    /** Reads blobs, a few reads of up to 8 MiB at a time, each sent once the writers hold less than BUFFERED_LIMIT. */
    const readAll = (indexes: number[]) => readBlobBatches(link, access.agentId, indexes.map((b) => blobs[b]), sendFrame, {
      plainSizes: indexes.map((b) => plan.blobBytes.get(b) ?? 0),
      beforeRequest: () => waitFor(() => buffered < BUFFERED_LIMIT),
    });
    // Window by window: its resident blobs opened before any run lays them over another, and every run done before
    // the next window's resident blobs take their place.
    for (const w of plan.windows) {
      window = w;
      await readAll([...w.resident.keys()]);
      await waitFor(() => buffered === 0);
      await readAll(w.blobs);
      await waitFor(() => buffered === 0);
    }
    // Every window waited for its writes: a shortfall is a plan that left bytes out, never something still on its way.
    if (written !== total) throw new RestoreError(`wrote ${written} of the map's ${total} data bytes to ${target}: an internal error; do not use the image`);
    if (device) {
      // A device is flushed before the restore reports success; an image file is left to the
      // page cache like any copied file (`sync` it if the host may lose power right after).
      let synced = 0;
      for (const w of workers) w.on('message', (m: FromVolumeWriter) => { if (m.type === 'synced') { synced++; signal(); } });
      for (const w of workers) w.postMessage({ type: 'sync' } satisfies ToVolumeWriter);
      await waitFor(() => synced === threads);
    }
    writeSeconds = (Date.now() - started) / 1000;

    const verifyStarted = Date.now();
    if (!imageDigest(hashes, map.sizeBytes, map.blockSize).equals(map.merkleRoot)) {
      throw new RestoreError(`the image written to ${target} does not match the point's image digest: do not use it (the store may be damaged)`);
    }
    const seconds = (Date.now() - started) / 1000;
    return {
      target, sizeBytes: map.sizeBytes, dataBytes: total, zeroBytes, blobs: opened.size, seconds, writeSeconds,
      verifySeconds: (Date.now() - verifyStarted) / 1000, bytesPerSecond: map.sizeBytes / Math.max(seconds, 0.001), verified: true,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * Why the writers and the block hashes could not follow `map`, if they
 * could not: checked before anything is written, so a damaged or hostile
 * map is refused with its fault named (a map claiming more data than its
 * extents hold once left the restore waiting for ever).
 */
export function volumeMapProblem(map: VolumeMap): string | undefined {
  const { sizeBytes, blockSize } = map;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) return `its image size (${sizeBytes}) is not a positive number of bytes`;
  if (!(blockSize >= 512 && blockSize <= 1024 * 1024 && (blockSize & (blockSize - 1)) === 0)) return `its block size (${blockSize}) is not a power of two from 512 bytes to 1 MiB`;
  if (map.merkleRoot.length !== 32) return 'its image digest is not 32 bytes';
  const blobs = map.blobs?.length ?? 0;
  let end = 0;
  let data = 0;
  for (const [i, e] of map.extents.entries()) {
    const where = `extent ${i} (${e.length} bytes at ${e.offset})`;
    if (!(e.length > 0) || e.offset < end || e.offset + e.length > sizeBytes) return `${where} is empty, overlaps the one before it or runs past the image's end`;
    if (e.offset % blockSize !== 0 || (e.length % blockSize !== 0 && e.offset + e.length !== sizeBytes)) return `${where} does not lie on block boundaries`;
    if ((e.blobIndex ?? 0) >= blobs) return `${where} names blob ${e.blobIndex ?? 0}; the map lists ${blobs}`;
    end = e.offset + e.length;
    data += e.length;
  }
  if (map.dataBytes && map.dataBytes !== data) return `it says it holds ${map.dataBytes} bytes of data, its extents ${data}`;
  return undefined;
}

/** The ranges no extent covers: they read as zeros. */
function zeroGaps(map: VolumeMap): [number, number][] {
  const gaps: [number, number][] = [];
  let at = 0;
  for (const e of map.extents) { if (e.offset > at) gaps.push([at, e.offset - at]); at = e.offset + e.length; }
  if (at < map.sizeBytes) gaps.push([at, map.sizeBytes - at]);
  return gaps;
}

function fillZeroHashes(hashes: BigUint64Array, gaps: [number, number][], sizeBytes: number, blockSize: number, secret: Buffer): void {
  const zero = Buffer.alloc(blockSize);
  const zeroHash = blockHash(zero, secret);
  const lastBlock = hashes.length - 1;
  const lastZeroHash = blockHash(zero.subarray(0, sizeBytes - lastBlock * blockSize), secret);
  for (const [offset, length] of gaps) {
    const end = Math.ceil((offset + length) / blockSize);
    for (let b = offset / blockSize; b < end; b++) hashes[b] = b === lastBlock ? lastZeroHash : zeroHash;
  }
}

/** `restore POINT --to-volume PATH`: resolve, verify, write, check, report. */
export async function restoreVolumeCommand(o: { state: AgentState; point: string; target: string; json: boolean; openAccess: (link: GatewayLink) => Promise<PointAccess> }): Promise<void> {
  const writers = startVolumeWriters();
  const link = await connectAgent(o.state).catch(async (err: unknown) => { await Promise.all(writers.map((w) => w.terminate())); throw err; });
  try {
    const who = await o.openAccess(link);
    const summary = await resolvePoint(link, who.agentId, o.point);
    if (summary.header.kind !== 'volume') throw new RestoreError(`point ${summary.header.pointId.toString('hex')} is a ${summary.header.kind} point: use --to DIR`);
    const { manifest, refs } = await loadVerifiedPoint(link, o.state, who, summary);
    const progress = new ProgressLine(!o.json && process.stderr.isTTY === true);
    const stats = await restoreVolume(link, who, manifest, refs, o.target, (done, total) => progress.update(() => `restoring ${bar(total ? done / total : 1)} ${formatBytes(done)} of ${formatBytes(total)}`), writers);
    progress.done();
    const report = { point: summary.header.pointId.toString('hex'), provider: summary.header.provider ?? '', crashConsistent: summary.header.crashConsistent === true, ...stats };
    if (o.json) { console.log(JSON.stringify(report)); return; }
    console.log(`Restored volume point ${report.point} to ${stats.target}: ${formatBytes(stats.sizeBytes)} image (${formatBytes(stats.dataBytes)} data, ${formatBytes(stats.zeroBytes)} zeros left as holes) in ${stats.seconds.toFixed(2)} s (${formatBytes(stats.bytesPerSecond)}/s).`);
    console.log(`Every blob's MAC and id checked; the image written matches the point's signed digest.${report.crashConsistent ? '' : ' The point was taken without a snapshot: crash-inconsistent.'}`);
  } finally {
    link.close();
    await Promise.all(writers.map((w) => w.terminate()));
  }
}
