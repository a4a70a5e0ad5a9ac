/**
 * @module Restoring a file-tree point: check the point's signatures and
 * Merkle root, read the manifest and trees, lay out directories and
 * symlinks, then stream every content blob once to the worker that owns
 * the files it belongs to. Directory modes and times are set last, deepest
 * first, so writing into them never fails.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  encodePointHeader, merkleRoot, storageCodec, NodeType, TREE_PART_BYTES,
  type BlobData, type Manifest, type PointSummary, type Tree, type TreeNode,
} from '@bulwark/proto';
import { openBlob } from '../crypto/envelope.js';
import { BufferPool } from '../buffers/buffer-pool.js';
import { deriveKeys, verifyDetached, type AgentKeys } from '../crypto/keys.js';
import type { GatewayLink } from '../transport/link.js';
import type { AgentState } from '../state/state.js';
import type { FromRestoreWorker, RestoreBlob, RestoreFile, ToRestoreWorker } from './write-worker.js';
import { restoreHardLink, splitHardLinks, type PlannedFile } from './hard-links.js';
import { applyMetadata } from './metadata.js';
import { WORKER_THREADS } from '../pipeline/threads.js';

const treeCodec = storageCodec<Tree>('Tree');
const manifestCodec = storageCodec<Manifest>('Manifest');
const IDS_PER_READ = 512;
/** With known sizes, a read asks for at most this much plaintext: reads in flight bound what arrives unasked-for. */
const READ_PLAIN_BYTES = 8 * 1024 * 1024;
const READS_IN_FLIGHT = 3;

export class RestoreError extends Error {}

export interface PointAccess { agentId: string; keys: AgentKeys; signPublicKey: Buffer }

/** `holeBytes`: zeros left unwritten (`sparse`), counted in `bytes`. */
export interface RestoreStats { files: number; dirs: number; symlinks: number; hardlinks: number; bytes: number; holeBytes: number; seconds: number; target: string }

export interface RestoreOptions {
  /** Leave all-zero blobs of 64 KiB or more unwritten, as holes (like `cp --sparse=always`); off, every byte is allocated. */
  sparse?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Ask the gateway for another agent's key by proving the restore password. */
export async function openForeignAccess(link: GatewayLink, sourceAgentId: string, restorePassword: string): Promise<PointAccess> {
  const grant = (await link.exchange({ recoveryOpen: { requestId: 0, sourceAgentId, restorePassword } }, 'recoveryGrant')).recoveryGrant!;
  return { agentId: sourceAgentId, keys: deriveKeys(grant.masterKey), signPublicKey: grant.signPublicKey };
}

export function ownAccess(state: AgentState): PointAccess {
  return { agentId: state.config.agentId, keys: state.keys, signPublicKey: state.keys.signPublic };
}

export async function listPoints(link: GatewayLink, agentId?: string): Promise<PointSummary[]> {
  return (await link.exchange({ listPoints: { requestId: 0, agentId } }, 'pointList')).pointList!.points ?? [];
}

/** Resolve "latest", a full id or a unique prefix of at least 6 hex digits. */
export async function resolvePoint(link: GatewayLink, agentId: string, given: string): Promise<PointSummary> {
  const points = await listPoints(link, agentId);
  if (points.length === 0) throw new RestoreError(`agent ${agentId} has no restore points`);
  if (given === 'latest') return points[points.length - 1];
  if (!/^[0-9a-f]{6,32}$/.test(given)) throw new RestoreError(`"${given}" is not a point id: give "latest" or at least 6 hex digits from \`bulwark-agent points\``);
  const matches = points.filter((p) => p.header.pointId.toString('hex').startsWith(given));
  if (matches.length === 0) throw new RestoreError(`no restore point ${given} for agent ${agentId}`);
  if (matches.length > 1) throw new RestoreError(`${given} matches ${matches.length} points: give more digits`);
  return matches[0];
}

export interface ReadPacing {
  /** May delay the next read request (back-pressure from whoever consumes the blobs). */
  beforeRequest?: () => Promise<void>;
  /** Plaintext size of each id (an envelope is never much larger): reads are cut to READ_PLAIN_BYTES. */
  plainSizes?: number[];
  /** Ascending indexes of ids that start a new read. */
  breaks?: number[];
}

/**
 * Read blobs by id; calls `onBlobs` with each frame's blobs as they arrive,
 * and the frame's memory if the consumer may take it over (transfer it to a
 * worker): the envelopes are views into it.
 */
export async function readBlobBatches(link: GatewayLink, agentId: string, ids: Buffer[], onBlobs: (blobs: { id: Buffer; envelope: Buffer }[], frame?: ArrayBuffer) => void, pacing: ReadPacing = {}): Promise<void> {
  const { beforeRequest, plainSizes, breaks = [] } = pacing;
  const batches: Buffer[][] = [];
  let current: Buffer[] = [];
  let currentBytes = 0;
  let nextBreak = 0;
  ids.forEach((id, i) => {
    const size = plainSizes?.[i] ?? 0;
    const breaksHere = breaks[nextBreak] === i;
    if (breaksHere) nextBreak++;
    if (current.length > 0 && (breaksHere || current.length === IDS_PER_READ || currentBytes + size > READ_PLAIN_BYTES)) { batches.push(current); current = []; currentBytes = 0; }
    current.push(id);
    currentBytes += size;
  });
  if (current.length > 0) batches.push(current);
  /** Per read under way: the ids (hex) asked for and not yet received. */
  const outstanding = new Map<number, Set<string>>();
  const listener = (data: BlobData, frame?: ArrayBuffer) => {
    const waiting = data.requestId === undefined ? undefined : outstanding.get(data.requestId);
    if (!waiting) return;
    for (const { id } of data.blobs ?? []) waiting.delete(id.toString('hex'));
    onBlobs(data.blobs ?? [], frame);
  };
  link.on('blobData', listener);
  try {
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        await beforeRequest?.();
        if (next >= batches.length) break;
        const batch = batches[next++];
        const requestId = link.newRequestId();
        const waiting = new Set(batch.map((id) => id.toString('hex')));
        outstanding.set(requestId, waiting);
        const reply = link.awaitReply(requestId);
        await link.send({ readBlobs: { requestId, blobIds: batch, agentId } });
        const done = (await reply).readDone;
        outstanding.delete(requestId);
        if (done?.missing?.length) throw new RestoreError(`the gateway lacks ${done.missing.length} blob(s) of this point (first ${batch[done.missing[0]].toString('hex')}): the point is damaged; run a verify on the gateway`);
        // A read ended with blobs neither sent nor reported missing: waiting for them would never end.
        if (waiting.size > 0) throw new RestoreError(`the gateway ended a read without ${waiting.size} blob(s) it did not report missing (first ${waiting.values().next().value}): it is misbehaving; restore again, or from another gateway`);
      }
    };
    await Promise.all(Array.from({ length: READS_IN_FLIGHT }, worker));
  } finally {
    link.off('blobData', listener);
  }
}

export async function fetchPlain(link: GatewayLink, access: PointAccess, ids: Buffer[], plainSizes?: number[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  await readBlobBatches(link, access.agentId, ids, (blobs) => { for (const { id, envelope } of blobs) out.set(id.toString('hex'), openBlob(access.keys.data, access.keys.blobId, id, envelope)); }, { plainSizes });
  return out;
}

/** A tree's assembly from parts is at most this deep and large. */
const MAX_TREE_ROUNDS = 4;
const MAX_TREE_BYTES = 2 ** 31;

/** Trees by id (hex), each put together from its parts where it was stored in parts. */
async function fetchTrees(link: GatewayLink, access: PointAccess, ids: Buffer[]): Promise<Map<string, Tree>> {
  const trees = new Map<string, Tree>();
  let pending = await fetchPlain(link, access, ids);
  for (let round = 0; pending.size > 0; round++) {
    const inParts: [string, Buffer[]][] = [];
    for (const [hex, plain] of pending) {
      const tree = treeCodec.decode(plain);
      if (tree.parts?.length) inParts.push([hex, tree.parts]);
      else trees.set(hex, tree);
    }
    if (inParts.length === 0) break;
    const partIds = inParts.flatMap(([, parts]) => parts);
    if (round === MAX_TREE_ROUNDS || partIds.length * TREE_PART_BYTES > MAX_TREE_BYTES) throw new RestoreError(`a directory of this point is stored in more parts than a tree can have (${partIds.length}); refusing to assemble it`);
    const parts = await fetchPlain(link, access, partIds, partIds.map(() => TREE_PART_BYTES));
    pending = new Map(inParts.map(([hex, ids]) => [hex, Buffer.concat(ids.map((id) => parts.get(id.toString('hex'))!))]));
  }
  return trees;
}

/** Check a point's signatures and reference list; returns its refs. */
export async function loadVerifiedPoint(link: GatewayLink, state: AgentState, access: PointAccess, summary: PointSummary): Promise<{ refs: Buffer; manifest: Manifest }> {
  const data = (await link.exchange({ getPoint: { requestId: 0, pointId: summary.header.pointId } }, 'pointData')).pointData!;
  const header = data.summary.header;
  const headerBytes = encodePointHeader(header);
  if (!verifyDetached(headerBytes, data.summary.agentSignature, access.signPublicKey)) throw new RestoreError('the point\'s agent signature is invalid: it was not made by this agent\'s key');
  if (!verifyDetached(Buffer.concat([headerBytes, data.summary.agentSignature]), data.summary.gatewaySignature, state.gatewaySignPublicKey)) throw new RestoreError('the point\'s gateway countersignature is invalid');
  if (!merkleRoot(data.refs).equals(header.merkleRoot)) throw new RestoreError('the point\'s reference list does not match its Merkle root');
  const manifest = manifestCodec.decode((await fetchPlain(link, access, [header.manifestBlobId])).get(header.manifestBlobId.toString('hex'))!);
  return { refs: data.refs, manifest };
}

function checkName(name: Buffer, seen: Set<string>): void {
  const s = name.toString('latin1');
  if (name.length === 0 || s === '.' || s === '..' || name.includes(0x2f) || name.includes(0)) throw new RestoreError(`the point holds an unsafe name ${JSON.stringify(name.toString())}; refusing to restore it`);
  if (seen.has(s)) throw new RestoreError(`the point holds the name ${JSON.stringify(name.toString())} twice in one directory; refusing to restore it`);
  seen.add(s);
}

interface PlannedDir { path: Buffer; node: TreeNode; depth: number }

export async function restoreFiles(link: GatewayLink, state: AgentState, access: PointAccess, manifest: Manifest, targetDir: string, options: RestoreOptions = {}): Promise<RestoreStats> {
  const started = Date.now();
  const target = path.resolve(targetDir);
  await fsp.mkdir(target, { recursive: true });
  const chown = process.getuid?.() === 0;
  // Started before the trees are read: loading one takes ~0.1 s, while this thread mostly waits for the gateway.
  const writers = startWriters(access, chown, options.sparse === true);
  try {
    const plan = await planRestore(link, access, manifest, target);
    const stats = await writeRestore(link, access, writers, plan, chown, options.onProgress);
    return { ...stats, seconds: (Date.now() - started) / 1000, target };
  } finally {
    await Promise.all(writers.workers.map((w) => w.terminate()));
  }
}

/** The write workers, and the first error any of them raised before the restore listened for errors. */
interface Writers { workers: Worker[]; earlyFailure?: Error }

function startWriters(access: PointAccess, chown: boolean, sparse: boolean): Writers {
  const writers: Writers = { workers: [] };
  for (let i = 0; i < WORKER_THREADS; i++) {
    const worker = new Worker(new URL('./write-worker.js', import.meta.url));
    worker.once('error', (err) => { writers.earlyFailure ??= err; });
    worker.postMessage({ type: 'init', dataKey: access.keys.data, blobIdKey: access.keys.blobId, chown, sparse } satisfies ToRestoreWorker);
    writers.workers.push(worker);
  }
  return writers;
}

interface RestorePlan { dirs: PlannedDir[]; files: PlannedFile[]; symlinks: { path: Buffer; node: TreeNode }[] }

/** Every directory, file and symlink of the point under `target`, breadth-first over its trees (one read per level); names checked, directories made. */
async function planRestore(link: GatewayLink, access: PointAccess, manifest: Manifest, target: string): Promise<RestorePlan> {
  const rootNames = new Set<string>();
  const dirs: PlannedDir[] = [];
  const files: PlannedFile[] = [];
  const symlinks: { path: Buffer; node: TreeNode }[] = [];

  // Breadth-first over trees, one read per level.
  let level: { path: Buffer; node: TreeNode; depth: number }[] = [];
  for (const root of manifest.roots) {
    checkName(root.root.name, rootNames);
    const full = Buffer.from(path.join(target, root.root.name.toString('latin1')), 'latin1');
    if (fs.existsSync(full)) throw new RestoreError(`${full.toString()} already exists: restore into an empty --to directory`);
    level.push({ path: full, node: root.root, depth: 0 });
  }
  while (level.length > 0) {
    const next: typeof level = [];
    const fetching = fetchTrees(link, access, level.filter((e) => e.node.type === NodeType.DIR).map((e) => e.node.subtree!));
    fetching.catch(() => undefined);
    // This level's directories are made while their trees are on their way (their names were checked with their
    // parents'): made after planning, 2,101 of them held back the first read by 55–70 ms. Synchronous, one call
    // per path: awaited one by one through the thread pool, they left this thread idle 0.4 s.
    for (const entry of level) if (entry.node.type === NodeType.DIR) fs.mkdirSync(entry.path, { mode: 0o700 });
    const trees = await fetching;
    for (const entry of level) {
      if (entry.node.type === NodeType.FILE) { files.push(entry); continue; }
      if (entry.node.type === NodeType.SYMLINK) { symlinks.push(entry); continue; }
      dirs.push(entry);
      const tree = trees.get(entry.node.subtree!.toString('hex'))!;
      const seen = new Set<string>();
      for (const child of tree.nodes) {
        checkName(child.name, seen);
        next.push({ path: Buffer.concat([entry.path, Buffer.from('/'), child.name]), node: child, depth: entry.depth + 1 });
      }
    }
    level = next;
  }
  return { dirs, files, symlinks };
}

/** Lays out the plan and streams every content blob once to the workers that own the files it belongs to. */
async function writeRestore(link: GatewayLink, access: PointAccess, writers: Writers, plan: RestorePlan, chown: boolean, onProgress?: (done: number, total: number) => void): Promise<Omit<RestoreStats, 'seconds' | 'target'>> {
  const { dirs, files, symlinks } = plan;
  const { workers } = writers;
  // From here to listening for the workers' errors, nothing waits: no error can fall in between.
  if (writers.earlyFailure) throw writers.earlyFailure;
  const { written, links } = splitHardLinks(files);

  // Each file goes to one worker, consecutive files to the same one until their new blobs fill a read; each read then
  // starts at such a switch, so its blobs are one worker's (but for blobs files of two workers share), and that worker
  // takes the frame as it came. Each blob is routed to the workers whose files use it.
  const threads = workers.length;
  /** Per blob id: for each worker, the (file, offset) places it must be written to. */
  const targets = new Map<string, { file: number; offset: number }[][]>();
  /** Each blob once, in the order first met, with its plaintext size: what to read. */
  const readIds: Buffer[] = [];
  const readSizes: number[] = [];
  /** Where reads start: at each switch of worker. */
  const breaks: number[] = [];
  const perWorker: RestoreFile[][] = Array.from({ length: threads }, () => []);
  let totalBytes = 0;
  let worker = 0;
  let workerReadBytes = 0;
  written.forEach((f, index) => {
    const content = f.node.content ?? [];
    const sizes = f.node.contentSizes ?? [];
    if (sizes.length !== content.length) throw new RestoreError(`file ${f.path.toString()} has ${content.length} blobs but ${sizes.length} sizes`);
    const keys = content.map((id) => id.toString('hex'));
    let newBytes = 0;
    keys.forEach((key, k) => { if (!targets.has(key)) newBytes += sizes[k]; });
    if (workerReadBytes > 0 && workerReadBytes + newBytes > READ_PLAIN_BYTES) {
      worker = (worker + 1) % threads;
      workerReadBytes = 0;
      breaks.push(readIds.length);
    }
    workerReadBytes += newBytes;
    let offset = 0;
    content.forEach((id, k) => {
      const key = keys[k];
      let perWorkerTargets = targets.get(key);
      if (!perWorkerTargets) {
        targets.set(key, (perWorkerTargets = Array.from({ length: threads }, () => [])));
        readIds.push(id);
        readSizes.push(sizes[k]);
      }
      perWorkerTargets[worker].push({ file: index, offset });
      offset += sizes[k];
    });
    totalBytes += offset;
    perWorker[worker].push({ index, path: f.path, size: f.node.size, blobs: content.length, mode: f.node.mode, uid: f.node.uid, gid: f.node.gid, mtimeSec: f.node.mtimeSec, mtimeNsec: f.node.mtimeNsec });
  });

  let doneBytes = 0;
  let doneFiles = 0;
  let holeBytes = 0;
  // Bytes handed to workers and not yet written: reading pauses above the window, so memory stays flat.
  // 24 → 12 MiB: peak RSS of the 20,000-file restore 287–328 → 256–296 MiB, its time within noise (4.4–4.9 → 4.5–5.1 s cold).
  let inWorkers = 0;
  let windowWaiters: (() => void)[] = [];
  const WORKER_WINDOW_BYTES = 12 * 1024 * 1024;
  const batchBuffers = new BufferPool(16 * 1024 * 1024);
  let failure: Error | undefined;
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => { allDone = resolve; });
  const checkDone = () => { if (doneFiles >= written.length || failure) allDone(); };
  workers.forEach((worker, w) => {
    worker.on('message', (m: FromRestoreWorker) => {
      if (m.type === 'failed') failure ??= new RestoreError(m.message);
      else if (m.type === 'consumed') {
        inWorkers -= m.buffer.byteLength;
        batchBuffers.give(m.buffer);
        if (inWorkers < WORKER_WINDOW_BYTES) { const w = windowWaiters; windowWaiters = []; w.forEach((f) => f()); }
        return;
      } else { doneBytes += m.bytes; doneFiles += m.filesDone; holeBytes += m.holeBytes; onProgress?.(doneBytes, totalBytes); }
      checkDone();
    });
    worker.on('error', (err) => { failure ??= err; checkDone(); });
    worker.postMessage({ type: 'files', files: perWorker[w] } satisfies ToRestoreWorker);
  });

  for (const sym of symlinks) {
    fs.symlinkSync(sym.node.symlinkTarget ?? Buffer.alloc(0), sym.path);
    if (chown) fs.lchownSync(sym.path, sym.node.uid, sym.node.gid);
    const mtime = sym.node.mtimeSec + sym.node.mtimeNsec / 1e9;
    fs.lutimesSync(sym.path, mtime, mtime);
  }
  await readBlobBatches(link, access.agentId, readIds, (blobs, frame) => {
    const perWorker: { id: Buffer; envelope: Buffer; targets: { file: number; offset: number }[] }[][] = workers.map(() => []);
    for (const { id, envelope } of blobs) {
      const perWorkerTargets = targets.get(id.toString('hex'));
      if (!perWorkerTargets) continue;
      perWorkerTargets.forEach((mine, w) => { if (mine.length) perWorker[w].push({ id, envelope, targets: mine }); });
    }
    const only = perWorker.filter((batch) => batch.length > 0);
    if (frame && only.length === 1) {
      // One worker's blobs: the frame moves to it, the envelopes stay views into it (8 MiB not copied per read).
      inWorkers += frame.byteLength;
      workers[perWorker.indexOf(only[0])].postMessage({ type: 'blobs', blobs: only[0] } satisfies ToRestoreWorker, [frame]);
      return;
    }
    perWorker.forEach((batch, w) => {
      if (batch.length === 0) return;
      // One buffer per worker and frame, transferred (views into the received frame would clone all of it) and handed back.
      const size = batch.reduce((n, b) => n + 32 + b.envelope.length, 0);
      const bytes = new Uint8Array(batchBuffers.take(size), 0, size);
      let at = 0;
      const items: RestoreBlob[] = batch.map((b) => {
        bytes.set(b.id, at);
        bytes.set(b.envelope, at + 32);
        const item = { id: bytes.subarray(at, at + 32), envelope: bytes.subarray(at + 32, at + 32 + b.envelope.length), targets: b.targets };
        at += 32 + b.envelope.length;
        return item;
      });
      inWorkers += bytes.buffer.byteLength;
      workers[w].postMessage({ type: 'blobs', blobs: items } satisfies ToRestoreWorker, [bytes.buffer]);
    });
  }, {
    beforeRequest: async () => {
      while (inWorkers >= WORKER_WINDOW_BYTES && !failure) await new Promise<void>((resolve) => windowWaiters.push(resolve));
    },
    plainSizes: readSizes,
    breaks,
  });
  checkDone();
  await finished;
  if (failure) throw failure;

  for (const link of links) await restoreHardLink(link, chown);
  dirs.sort((a, b) => b.depth - a.depth);
  for (const dir of dirs) applyMetadata(dir.path, dir.node, chown);
  return { files: files.length, dirs: dirs.length, symlinks: symlinks.length, hardlinks: links.length, bytes: totalBytes, holeBytes };
}
