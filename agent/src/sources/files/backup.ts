/**
 * @module The file-tree source: walks the given paths, skips files whose
 * metadata is unchanged since the last point, chunks the rest in the worker
 * pool, and stores every directory as an encrypted Tree blob.
 * Names are handled as raw bytes throughout, so any name a filesystem
 * allows backs up and restores exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { storageCodec, NodeType, TREE_PART_BYTES, type Tree, type TreeNode, type SourceRoot } from '@bulwark/proto';
import { blobId, sealBlob } from '../../crypto/envelope.js';
import type { ChunkPool } from '../../pipeline/chunk-pool.js';
import type { Uploader } from '../../upload/uploader.js';
import type { FilesCache } from '../../cache/files-cache.js';
import type { AgentKeys } from '../../crypto/keys.js';

const treeCodec = storageCodec<Tree>('Tree');
const SLASH = Buffer.from('/');
/** Worker jobs queued at once; each holds at most GROUP_BYTES of small files or one large file. */
const JOBS_IN_FLIGHT = 8;
const GROUPED_FILE_BYTES = 256 * 1024;
const GROUP_FILES = 64;
const GROUP_BYTES = 4 * 1024 * 1024;

/** A file to chunk, and the place in its directory's node list that its node fills. */
interface PendingFile { index: number; full: Buffer; name: Buffer; st: fs.BigIntStats; nodes: (TreeNode | undefined)[]; inode?: SharedInode }

/**
 * A file with more than one hard link, met in this backup: its first path is
 * chunked, the others take its content when that is done, so the data is read
 * once, and restore makes them links again.
 */
class SharedInode {
  /** The first path's node; undefined if it could not be read (the next path then reads the file itself). */
  readonly node: Promise<TreeNode | undefined>;
  settle!: (node: TreeNode | undefined) => void;
  fail!: (err: Error) => void;
  constructor(readonly id: number) {
    this.node = new Promise((resolve, reject) => { this.settle = resolve; this.fail = reject; });
    this.node.catch(() => undefined);
  }
}

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
  const inodes = new Map<string, SharedInode>();
  const limit = new Semaphore(JOBS_IN_FLIGHT);
  let failure: Error | undefined;
  const { keys, pool, uploader, cache } = options;

  /**
   * Small files waiting for a job, from any number of directories: grouped
   * per directory, the bench's 20,000 files in 2,000 directories made 2,000
   * jobs of ~280 KiB, each ending in a small batch the main thread took
   * apart. `grouped` settles when the group's job is done; each directory
   * with a file in it waits for that.
   */
  let group: PendingFile[] = [];
  let groupBytes = 0;
  let grouped = deferred();

  const addRef = (id: Buffer) => refs.add(id.toString('hex'));
  const warn = (message: string) => { stats.warnings.push(message); stats.skipped++; };

  async function storeTree(nodes: TreeNode[]): Promise<Buffer> {
    nodes.sort((a, b) => Buffer.compare(a.name, b.name));
    let plain = treeCodec.encode({ nodes });
    // One blob must fit in a frame: a directory of ~100,000 entries would not (FORMAT.md "Agent objects").
    while (plain.length > TREE_PART_BYTES) {
      const parts: Buffer[] = [];
      for (let at = 0; at < plain.length; at += TREE_PART_BYTES) parts.push(await storeTreeBlob(plain.subarray(at, at + TREE_PART_BYTES)));
      plain = treeCodec.encode({ nodes: [], parts });
    }
    return storeTreeBlob(plain);
  }

  async function storeTreeBlob(plain: Buffer): Promise<Buffer> {
    const id = blobId(keys.blobId, plain);
    const hex = id.toString('hex');
    refs.add(hex);
    cache.rememberTree(hex);
    // An unchanged directory was stored with the last point: the commit's reference check still vouches for it.
    if (options.useCache && cache.knowsTree(hex)) return id;
    await uploader.add([{ id, envelope: sealBlob(keys.data, id, plain) }]);
    return id;
  }

  function baseNode(name: Buffer, st: fs.BigIntStats, type: NodeType): TreeNode {
    return {
      name, type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: 0,
      mtimeSec: Number(st.mtimeNs / 1_000_000_000n), mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
    };
  }

  function fileNodeFrom(name: Buffer, st: fs.BigIntStats, key: string, content: Buffer[], sizes: number[], size: number, inode?: SharedInode): TreeNode {
    const node = baseNode(name, st, NodeType.FILE);
    node.content = content;
    node.contentSizes = sizes;
    node.size = size;
    if (inode) node.hardlinkId = inode.id;
    cache.remember(key, st, size, content, sizes);
    for (const id of content) addRef(id);
    stats.files++;
    stats.logicalBytes += size;
    return node;
  }

  /**
   * Chunk a group of changed files in one worker job and fill in their nodes.
   * Call only while holding a job slot (`limit.take()`); it gives it back.
   */
  async function chunkGroup(group: PendingFile[]): Promise<void> {
    try {
      await chunkAndFill(group);
    } catch (err) {
      for (const f of group) f.inode?.fail(err as Error);
      throw err;
    } finally {
      limit.give();
    }
  }

  /** Start a job for the small files gathered so far. */
  async function flushGroup(): Promise<void> {
    if (group.length === 0) return;
    const files = group;
    const done = grouped;
    group = [];
    groupBytes = 0;
    grouped = deferred();
    await limit.take();
    chunkGroup(files).then(done.resolve, done.reject);
  }

  async function chunkAndFill(group: PendingFile[]): Promise<void> {
    const results = await pool.chunkFiles(group.map((f) => f.full), async (blobs, plainBytes) => {
      stats.bytesRead += plainBytes;
      await uploader.add(blobs);
    });
    results.forEach((result, k) => {
      const f = group[k];
      if (result.error) {
        if (!['ENOENT', 'EACCES', 'EPERM', 'ELOOP'].includes(result.error.code ?? '')) throw result.error;
        warn(`${f.full.toString()}: ${result.error.message} (skipped)`);
        f.inode?.settle(undefined);
        return;
      }
      f.nodes[f.index] = fileNodeFrom(f.name, f.st, f.full.toString('latin1'), result.ids, result.sizes, result.size, f.inode);
      f.inode?.settle(f.nodes[f.index]);
    });
    options.onProgress?.(stats);
  }

  /** Another path of an inode met before: its node, once the first path's content is known. */
  async function linkTo(first: SharedInode, file: PendingFile): Promise<void> {
    const content = await first.node;
    if (!content) {
      await limit.take();
      return chunkGroup([{ ...file, inode: undefined }]);
    }
    file.nodes[file.index] = fileNodeFrom(file.name, file.st, file.full.toString('latin1'), content.content!, content.contentSizes!, content.size, first);
  }

  /**
   * Depth first, one subdirectory at a time, and waiting for a job slot
   * before queueing more work: the walk never runs ahead of the workers, so
   * memory stays bounded by the jobs in flight and the depth of the tree,
   * not by the number of files. Resolves once the listing is walked, with
   * the directory's node to come when its files are chunked: the next
   * directory's walk need not wait for that.
   */
  async function walkDir(full: Buffer, name: Buffer, st: fs.BigIntStats): Promise<{ node: Promise<TreeNode> }> {
    const node = baseNode(name, st, NodeType.DIR);
    const names = fs.readdirSync(full, { encoding: 'buffer' });
    const nodes: (TreeNode | undefined)[] = new Array(names.length);
    const pending: Promise<unknown>[] = [];
    // Handled the moment it exists (a rejection while the walk goes on must not count as unhandled), and the walk stops at the first.
    const track = (work: Promise<unknown>) => {
      work.catch((err: Error) => { failure ??= err; });
      pending.push(work);
    };
    let inGroup: Promise<void> | undefined;
    for (let index = 0; index < names.length; index++) {
      if (failure) throw failure;
      const childName = names[index];
      const child = Buffer.concat([full, SLASH, childName]);
      let childSt: fs.BigIntStats;
      try {
        // Synchronous on purpose: a metadata call on a local disk costs microseconds; a promise per file costs more.
        childSt = fs.lstatSync(child, { bigint: true });
      } catch (err) {
        skipUnreadable(child, err);
        continue;
      }
      if (childSt.isFile()) {
        const file: PendingFile = { index, full: child, name: childName, st: childSt, nodes };
        let linkedTo: SharedInode | undefined;
        if (childSt.nlink > 1n) {
          const inodeKey = `${childSt.dev}:${childSt.ino}`;
          linkedTo = inodes.get(inodeKey);
          if (!linkedTo) inodes.set(inodeKey, (file.inode = new SharedInode(inodes.size + 1)));
        }
        const key = child.toString('latin1');
        const cached = options.useCache ? cache.lookup(key, childSt) : undefined;
        if (cached) {
          stats.unchangedFiles++;
          nodes[index] = fileNodeFrom(childName, childSt, key, cached.ids, cached.sizes, cached.size, linkedTo ?? file.inode);
          file.inode?.settle(nodes[index]);
        } else if (linkedTo) {
          track(linkTo(linkedTo, file));
        } else if (childSt.size <= GROUPED_FILE_BYTES) {
          if (inGroup !== grouped.promise) track((inGroup = grouped.promise));
          group.push(file);
          groupBytes += Number(childSt.size);
          if (group.length >= GROUP_FILES || groupBytes >= GROUP_BYTES) await flushGroup();
        } else {
          await limit.take();
          track(chunkGroup([file]));
        }
      } else if (childSt.isDirectory()) {
        try {
          const sub = await walkDir(child, childName, childSt);
          track(sub.node.then((n) => { nodes[index] = n; }));
        } catch (err) {
          skipUnreadable(child, err);
        }
      } else if (childSt.isSymbolicLink()) {
        try {
          const link = baseNode(childName, childSt, NodeType.SYMLINK);
          link.symlinkTarget = fs.readlinkSync(child, { encoding: 'buffer' });
          stats.symlinks++;
          nodes[index] = link;
        } catch (err) {
          skipUnreadable(child, err);
        }
      } else {
        warn(`${child.toString()}: special file (device, socket or fifo) not backed up`);
      }
    }
    const finished = Promise.all(pending).then(async () => {
      node.subtree = await storeTree(nodes.filter((c): c is TreeNode => c !== undefined));
      stats.dirs++;
      return node;
    });
    finished.catch(() => undefined);
    return { node: finished };
  }

  /** Something vanished or is not ours to read: warn and go on; anything else stops the backup. */
  function skipUnreadable(child: Buffer, err: unknown): void {
    const e = err as NodeJS.ErrnoException;
    if (!['ENOENT', 'EACCES', 'EPERM', 'ELOOP', 'ENOTDIR'].includes(e.code ?? '')) throw err;
    warn(`${child.toString()}: ${e.message} (skipped)`);
  }

  async function rootNode(full: Buffer): Promise<TreeNode> {
    const st = fs.lstatSync(full, { bigint: true });
    const name = Buffer.from(path.basename(full.toString()) || '/');
    if (st.isDirectory()) {
      const { node } = await walkDir(full, name, st);
      // The walk is over: the last small files go now, or the nodes waiting for them never settle.
      await flushGroup();
      return node;
    }
    const holder: (TreeNode | undefined)[] = [];
    if (st.isFile()) { await limit.take(); await chunkGroup([{ index: 0, full, name, st, nodes: holder }]); }
    else if (st.isSymbolicLink()) { holder[0] = baseNode(name, st, NodeType.SYMLINK); holder[0].symlinkTarget = fs.readlinkSync(full, { encoding: 'buffer' }); }
    if (!holder[0]) throw new Error(`cannot back up ${full.toString()}: ${stats.warnings[stats.warnings.length - 1] ?? 'not a file, directory or symlink'}`);
    return holder[0];
  }

  const roots: SourceRoot[] = [];
  for (const given of paths) {
    const absolute = path.resolve(given);
    if (!fs.existsSync(absolute)) throw new Error(`cannot back up ${absolute}: no such file or directory`);
    roots.push({ path: absolute, root: await rootNode(Buffer.from(absolute)) });
  }
  return { roots, refs, stats };
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  // Each directory that waits on it handles a rejection; one with none pending must not count as unhandled.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
