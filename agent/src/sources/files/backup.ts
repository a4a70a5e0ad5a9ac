/**
 * @module The file-tree source: walks the given paths, skips files whose
 * metadata is unchanged since the last point, chunks the rest in the worker
 * pool, and stores every directory as an encrypted Tree blob.
 * Names are handled as raw bytes throughout, so any name a filesystem
 * allows backs up and restores exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { storageCodec, NodeType, type Tree, type TreeNode, type SourceRoot } from '@bulwark/proto';
import { blobId, sealBlob } from '../../crypto/envelope.js';
import type { ChunkPool } from '../../pipeline/chunk-pool.js';
import type { Uploader } from '../../upload/uploader.js';
import type { FilesCache } from '../../cache/files-cache.js';
import type { AgentKeys } from '../../crypto/keys.js';

const treeCodec = storageCodec<Tree>('Tree');
const SLASH = Buffer.from('/');
const FILES_IN_FLIGHT = 64;

export interface WalkStats { files: number; dirs: number; symlinks: number; skipped: number; bytesRead: number; logicalBytes: number; unchangedFiles: number; warnings: string[] }

export interface FileTreeBackup { roots: SourceRoot[]; refs: Set<string>; stats: WalkStats }

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) { this.free--; return; }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next(); else this.free++;
  }
}

export interface FileTreeOptions {
  keys: AgentKeys;
  pool: ChunkPool;
  uploader: Uploader;
  cache: FilesCache;
  useCache: boolean;
  onProgress?: (stats: WalkStats) => void;
}

export async function backupFileTrees(paths: string[], options: FileTreeOptions): Promise<FileTreeBackup> {
  const stats: WalkStats = { files: 0, dirs: 0, symlinks: 0, skipped: 0, bytesRead: 0, logicalBytes: 0, unchangedFiles: 0, warnings: [] };
  const refs = new Set<string>();
  const limit = new Semaphore(FILES_IN_FLIGHT);
  const { keys, pool, uploader, cache } = options;

  const addRef = (id: Buffer) => refs.add(id.toString('hex'));
  const warn = (message: string) => { stats.warnings.push(message); stats.skipped++; };

  async function storeTree(nodes: TreeNode[]): Promise<Buffer> {
    nodes.sort((a, b) => Buffer.compare(a.name, b.name));
    const plain = treeCodec.encode({ nodes });
    const id = blobId(keys.blobId, plain);
    addRef(id);
    await uploader.add([{ id, envelope: sealBlob(keys.data, id, plain) }]);
    return id;
  }

  function baseNode(name: Buffer, st: fs.BigIntStats, type: NodeType): TreeNode {
    return {
      name, type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: 0,
      mtimeSec: Number(st.mtimeNs / 1_000_000_000n), mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
    };
  }

  async function fileNode(full: Buffer, name: Buffer, st: fs.BigIntStats): Promise<TreeNode> {
    const node = baseNode(name, st, NodeType.FILE);
    const key = full.toString('latin1');
    const cached = options.useCache ? cache.lookup(key, st) : undefined;
    if (cached) {
      stats.unchangedFiles++;
      node.content = cached.ids;
      node.contentSizes = cached.sizes;
      node.size = cached.size;
    } else {
      await limit.take();
      try {
        const result = await pool.chunkFile(full, async (blobs, plainBytes) => {
          stats.bytesRead += plainBytes;
          await uploader.add(blobs);
        });
        node.content = result.ids;
        node.contentSizes = result.sizes;
        node.size = result.size;
      } finally {
        limit.give();
      }
    }
    cache.remember(key, st, node.size, node.content!, node.contentSizes!);
    for (const id of node.content!) addRef(id);
    stats.files++;
    stats.logicalBytes += node.size;
    options.onProgress?.(stats);
    return node;
  }

  async function entryNode(full: Buffer, name: Buffer): Promise<TreeNode | undefined> {
    let st: fs.BigIntStats;
    try {
      // Synchronous on purpose: a metadata call on a local disk costs microseconds; a promise per file costs more.
      st = fs.lstatSync(full, { bigint: true });
    } catch (err) {
      warn(`${full.toString()}: ${(err as Error).message} (skipped)`);
      return undefined;
    }
    try {
      if (st.isFile()) return await fileNode(full, name, st);
      if (st.isDirectory()) return await dirNode(full, name, st);
      if (st.isSymbolicLink()) {
        const node = baseNode(name, st, NodeType.SYMLINK);
        node.symlinkTarget = fs.readlinkSync(full, { encoding: 'buffer' });
        stats.symlinks++;
        return node;
      }
      warn(`${full.toString()}: special file (device, socket or fifo) not backed up`);
      return undefined;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'ELOOP') {
        warn(`${full.toString()}: ${e.message} (skipped)`);
        return undefined;
      }
      throw err;
    }
  }

  async function dirNode(full: Buffer, name: Buffer, st: fs.BigIntStats): Promise<TreeNode> {
    const node = baseNode(name, st, NodeType.DIR);
    const names = fs.readdirSync(full, { encoding: 'buffer' });
    const children = await Promise.all(names.map((child) => entryNode(Buffer.concat([full, SLASH, child]), child)));
    node.subtree = await storeTree(children.filter((c): c is TreeNode => c !== undefined));
    stats.dirs++;
    return node;
  }

  const roots: SourceRoot[] = [];
  for (const given of paths) {
    const absolute = path.resolve(given);
    const node = await entryNode(Buffer.from(absolute), Buffer.from(path.basename(absolute) || '/'));
    if (!node) throw new Error(`cannot back up ${absolute}: ${stats.warnings[stats.warnings.length - 1] ?? 'not found'}`);
    roots.push({ path: absolute, root: node });
  }
  return { roots, refs, stats };
}
