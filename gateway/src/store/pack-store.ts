/**
 * @module The WORM pack store on local disk. Packs are written under
 * `incoming/`, sealed (footer, fsync, read-only) and only then linked to
 * `packs/<xx>/<hash>.pack` (never over an existing file), so a file under
 * `packs/` is always complete. Sealed packs are made immutable where the
 * filesystem allows. What is in `incoming/` at start-up was never
 * acknowledged and is removed. The only code that removes a sealed pack is
 * `deletePack`, and it refuses unless the retention gate (retention clock,
 * holds, references) agrees.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import {
  ENTRY_PREFIX_BYTES, PACK_NONCE_BYTES, PackEntry, PackFooter, TRAILER_BYTES,
  entryPrefix, packHeader, packIndex, packTrailer, parseFooter, parseHeader, type PackRetention,
} from './pack-format.js';
import type { SealedPackRecord } from '../catalog/catalog.js';
import { ChattrImmutable, type ImmutableFlag } from './immutable.js';
import { PackFile } from './pack-file.js';
import { PackReader } from './pack-reader.js';
import { WormViolation } from '../retention/worm.js';

/** Decides whether a sealed pack may go, and records its removal in the catalog (retention/retention.ts). */
export interface PackDeleteGate {
  /** Throw WormViolation unless the pack may be deleted; on success the catalog no longer serves it. */
  approveDeletion(hash: Buffer, headerRetention: PackRetention | undefined): Promise<void>;
}

/** Retention of packs written without a policy: never expires. */
export const FOREVER: PackRetention = { class: 'unassigned', retainUntil: Number.MAX_SAFE_INTEGER };

export interface IncomingBlob { id: Buffer; envelope: Buffer }

export interface BlobStore {
  openPack(agentId: string, retention?: PackRetention): PackWriter;
  /** Fill `buffers`, in order, from the pack's bytes starting at `offset` (one read). */
  readInto(packHash: Buffer, offset: number, buffers: Buffer[]): Promise<void>;
  packPath(packHash: Buffer): string;
  listSealedPacks(): Promise<Buffer[]>;
  readFooter(packHash: Buffer): Promise<PackFooter>;
  closeReaders(): void;
}

export class PackWriter {
  private readonly hasher = new Blake3Hasher();
  private readonly entries: PackEntry[] = [];
  private position: number;
  private closed = false;

  private readonly file: PackFile;

  /** Creates the pack at `filePath` (it must not exist), its header its first bytes. */
  constructor(private readonly store: PackStore, readonly agentId: string, filePath: string, readonly retention: PackRetention = FOREVER) {
    const header = packHeader(agentId, retention, randomBytes(PACK_NONCE_BYTES));
    this.file = new PackFile(filePath, { start: header });
    this.hasher.update(header);
    this.position = header.length;
  }

  get size(): number { return this.position; }
  get blobCount(): number { return this.entries.length; }
  get blobIds(): Buffer[] { return this.entries.map((e) => e.id); }

  /** Append blobs; they become durable at seal(). One call at a time. */
  async append(blobs: IncomingBlob[]): Promise<void> {
    if (this.closed) throw new Error('pack is already sealed');
    const parts: Buffer[] = [];
    for (const blob of blobs) {
      const prefix = entryPrefix(blob.id, blob.envelope.length);
      parts.push(prefix, blob.envelope);
      // A copy: the id is a view into the frame it came in, which the connection frees once appended.
      this.entries.push({ id: Buffer.from(blob.id), offset: this.position + ENTRY_PREFIX_BYTES, length: blob.envelope.length });
      this.position += ENTRY_PREFIX_BYTES + blob.envelope.length;
      this.hasher.update(prefix).update(blob.envelope);
    }
    await this.file.append(parts);
  }

  /** Footer, fsync, read-only, link into place (never over a file), fsync the directory, immutable flag. */
  async seal(): Promise<SealedPackRecord> {
    if (this.closed) throw new Error('pack is already sealed');
    this.closed = true;
    const index = packIndex(this.entries);
    this.hasher.update(index);
    const hash = this.hasher.digestBuffer();
    const trailer = packTrailer(hash, index.length);
    await this.file.append([index, trailer]);
    const size = this.position + index.length + TRAILER_BYTES;
    await this.file.finish();
    const finalPath = this.store.packPath(hash);
    await fsp.mkdir(path.dirname(finalPath), { recursive: true });
    // link() fails if the name exists: no code path replaces a sealed pack.
    await fsp.link(this.file.path, finalPath);
    await fsp.unlink(this.file.path);
    await fsyncDir(path.dirname(finalPath));
    // Asynchronous: the pack is already complete and read-only; acknowledgement need not wait for chattr.
    void this.store.immutable.set(finalPath).catch(() => undefined);
    return { hash, agentId: this.agentId, size, entries: this.entries, class: this.retention.class, retainUntil: this.retention.retainUntil };
  }

  /** Throw the pack away (nothing in it was acknowledged). */
  discard(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.abandon();
    fs.rmSync(this.file.path, { force: true });
  }
}

export class PackStore implements BlobStore {
  private readonly reader = new PackReader();
  readonly packsDir: string;
  readonly incomingDir: string;
  /** Set by the gateway; without one, deletePack refuses everything. */
  gate?: PackDeleteGate;

  constructor(readonly root: string, readonly immutable: ImmutableFlag = new ChattrImmutable()) {
    this.packsDir = path.join(root, 'packs');
    this.incomingDir = path.join(root, 'incoming');
  }

  static async open(root: string, immutable?: ImmutableFlag): Promise<PackStore> {
    const store = new PackStore(root, immutable);
    await fsp.mkdir(store.packsDir, { recursive: true });
    await fsp.mkdir(store.incomingDir, { recursive: true });
    return store;
  }

  packPath(hash: Buffer): string {
    const hex = hash.toString('hex');
    return path.join(this.packsDir, hex.slice(0, 2), `${hex}.pack`);
  }

  openPack(agentId: string, retention: PackRetention = FOREVER): PackWriter {
    return new PackWriter(this, agentId, path.join(this.incomingDir, `${randomBytes(12).toString('hex')}.tmp`), retention);
  }

  /** Remove unsealed leftovers of a crash (`incoming/*.tmp` only); returns how many. */
  async discardIncoming(): Promise<number> {
    const names = (await fsp.readdir(this.incomingDir)).filter((n) => n.endsWith('.tmp'));
    for (const name of names) await fsp.rm(path.join(this.incomingDir, name), { force: true });
    return names.length;
  }

  /**
   * The one way a sealed pack leaves the store. The gate checks, on the
   * retention clock, the pack's own retain-until (catalog and the
   * tamper-evident header), legal holds and every point that still
   * references its blobs, and removes it from the catalog; only then is the
   * immutable flag cleared and the file unlinked.
   */
  async deletePack(hash: Buffer): Promise<void> {
    const hex = hash.toString('hex');
    if (!this.gate) throw new WormViolation(`pack ${hex}`, 'this store has no retention gate, so nothing may be deleted');
    const file = this.packPath(hash);
    let headerRetention: PackRetention | undefined;
    try {
      const head = Buffer.alloc(64 * 1024 + 512);
      const fd = fs.openSync(file, 'r');
      try { fs.readSync(fd, head, 0, head.length, 0); } finally { fs.closeSync(fd); }
      headerRetention = parseHeader(head).retention;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') headerRetention = undefined; // unreadable header: the catalog decides
    }
    await this.gate.approveDeletion(hash, headerRetention);
    await this.removeApproved(hash);
  }

  private async removeApproved(hash: Buffer): Promise<void> {
    const file = this.packPath(hash);
    if (!fs.existsSync(file)) return;
    await this.immutable.clear(file);
    await fsp.unlink(file);
    await fsyncDir(path.dirname(file));
  }

  async listSealedPacks(): Promise<Buffer[]> {
    const hashes: Buffer[] = [];
    for (const dir of await fsp.readdir(this.packsDir)) {
      for (const name of await fsp.readdir(path.join(this.packsDir, dir))) {
        if (/^[0-9a-f]{64}\.pack$/.test(name)) hashes.push(Buffer.from(name.slice(0, 64), 'hex'));
      }
    }
    return hashes;
  }

  async readFooter(hash: Buffer): Promise<PackFooter> {
    const handle = await fsp.open(this.packPath(hash), 'r');
    try {
      const { size } = await handle.stat();
      const head = Buffer.alloc(Math.min(size, 14 + 65535 + 2 + 65535 + 8 + PACK_NONCE_BYTES));
      await handle.read(head, 0, head.length, 0);
      const trailer = Buffer.alloc(Math.min(size, TRAILER_BYTES));
      await handle.read(trailer, 0, trailer.length, size - trailer.length);
      const footerLength = trailer.length === TRAILER_BYTES ? trailer.readUInt32LE(32) : 0;
      const tailLength = Math.min(size, footerLength + TRAILER_BYTES);
      const tail = Buffer.alloc(tailLength);
      await handle.read(tail, 0, tailLength, size - tailLength);
      return parseFooter(head, tail, size);
    } finally {
      await handle.close();
    }
  }

  readInto(packHash: Buffer, offset: number, buffers: Buffer[]): Promise<void> {
    return this.reader.readInto(this.packPath(packHash), offset, buffers);
  }

  closeReaders(): void {
    this.reader.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try { await handle.sync(); } finally { await handle.close(); }
}
