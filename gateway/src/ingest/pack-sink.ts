/**
 * @module Where one agent connection's blobs go: appended to an open pack,
 * which is sealed when it is full, on Flush, on commit and on disconnect.
 * Seals run one after another so acknowledgements leave in order; a blob is
 * acknowledged only after its pack is sealed and recorded in the catalog.
 */
import type { Catalog, SealedPackRecord } from '../catalog/catalog.js';
import type { BlobStore, IncomingBlob, PackWriter } from '../store/pack-store.js';
import type { PackRetention } from '../store/pack-format.js';

export const PACK_TARGET_BYTES = 16 * 1024 * 1024;

export interface SealListener { (ids: Buffer[]): void }
/** Runs after a pack is durable and recorded, before it is acknowledged (the kernel guard's seal). */
export type AfterSeal = (sealed: SealedPackRecord) => Promise<void>;

export class PackSink {
  private writer?: PackWriter;
  private sealing: Promise<void> = Promise.resolve();
  private appending: Promise<void> = Promise.resolve();
  private sealsInFlight = 0;
  private failure?: Error;
  /** Blobs written but not yet sealed: answered as present so nobody sends them twice. */
  private readonly pending = new Set<string>();

  /** `retention`: the class and retain-until a new pack of this agent gets (retention/retention.ts). */
  constructor(private readonly store: BlobStore, private readonly catalog: Catalog, private readonly agentId: string, private readonly onSealed: SealListener, private readonly retention?: () => PackRetention, private readonly afterSeal?: AfterSeal) {}

  get backlog(): number { return this.sealsInFlight; }

  has(id: Buffer): boolean { return this.pending.has(id.toString('hex')); }

  /** One call at a time (a connection's frames are handled in order); flush() waits for the one under way. */
  async append(blobs: IncomingBlob[]): Promise<void> {
    if (this.failure) throw this.failure;
    const fresh = blobs.filter((b) => !this.pending.has(b.id.toString('hex')));
    if (fresh.length === 0) return;
    const writer = (this.writer ??= this.store.openPack(this.agentId, this.retention?.()));
    for (const b of fresh) this.pending.add(b.id.toString('hex'));
    const appended = writer.append(fresh);
    this.appending = appended.catch(() => undefined);
    await appended;
    if (writer.size >= PACK_TARGET_BYTES) this.sealCurrent();
  }

  /** Seal what is open and wait for every seal so far. */
  async flush(): Promise<void> {
    // A connection that closes mid-append: its pack is sealed with all of that append or not at all.
    await this.appending;
    this.sealCurrent();
    await this.sealing;
    if (this.failure) throw this.failure;
  }

  private sealCurrent(): void {
    const writer = this.writer;
    if (!writer) return;
    this.writer = undefined;
    this.sealsInFlight++;
    this.sealing = this.sealing.then(async () => {
      try {
        if (this.failure) { writer.discard(); return; }
        const sealed = await writer.seal();
        await this.catalog.recordPack(sealed, Date.now());
        await this.afterSeal?.(sealed);
        const ids = sealed.entries.map((e) => e.id);
        for (const id of ids) this.pending.delete(id.toString('hex'));
        this.onSealed(ids);
      } catch (err) {
        this.failure = new Error(`sealing a pack failed: ${(err as Error).message}`);
        writer.discard();
      } finally {
        this.sealsInFlight--;
      }
    });
  }
}
