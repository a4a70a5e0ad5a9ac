/**
 * @module The gateway's side of the kernel guard: learn at start whether the
 * store is protected, hand every sealed pack to the guard with its remaining
 * retention, and re-seal the catalog's packs after a reboot (seals live in
 * kernel memory). Without a guard every call is a no-op and the status says
 * loudly why the store is unprotected.
 */
import { connectGuard, type GuardClient, type GuardStatus } from './client.js';
import { NEVER, type Catalog, type SealedPackRecord } from '../catalog/catalog.js';
import type { BlobStore } from '../store/pack-store.js';
import type { RetentionClock } from '../retention/clock.js';
import type { Log } from '../log/log.js';

export class StoreGuard {
  private constructor(private readonly client: GuardClient, private readonly store: BlobStore, private readonly clock: RetentionClock | undefined, private readonly log: Log) {}

  static async open(storeDir: string, store: BlobStore, clock: RetentionClock | undefined, log: Log): Promise<StoreGuard> {
    return new StoreGuard(await connectGuard(undefined, { storeDir }), store, clock, log);
  }

  status(): GuardStatus { return this.client.status(); }

  /** One line for the operator: "protected …" or "UNPROTECTED: reason". */
  describe(): string {
    const s = this.client.status();
    return s.protected ? 'protected by the kernel guard (eBPF LSM): only this gateway may write the store, nobody may change a sealed pack' : `UNPROTECTED: ${s.reason ?? 'no kernel guard'}`;
  }

  private async remainingSeconds(retainUntil: number | undefined): Promise<number> {
    if (retainUntil === undefined || !this.clock) return 0;
    // Held or never-expiring: the guard's own hold.
    if (retainUntil >= NEVER) return Infinity;
    return Math.max(0, Math.ceil((retainUntil - (await this.clock.now())) / 1000));
  }

  async seal(pack: SealedPackRecord): Promise<void> {
    if (!this.client.status().protected) return;
    try {
      await this.client.sealFile(this.store.packPath(pack.hash), await this.remainingSeconds(pack.retainUntil));
    } catch (err) {
      // The pack is durable either way; a missing kernel seal is an alert, not a lost backup.
      this.log.error(`ALERT kernel guard refused to seal pack ${pack.hash.toString('hex')}: ${(err as Error).message}`);
    }
  }

  /** After a reboot the guard knows no seals: give it every pack still under retention. */
  async resealAll(catalog: Catalog): Promise<number> {
    if (!this.client.status().protected) return 0;
    let sealed = 0;
    for (const pack of await catalog.listPacks()) {
      if (pack.state === 'deleted' || (await this.remainingSeconds(pack.retain_until)) <= 0) continue;
      await this.seal({ hash: pack.hash, agentId: pack.agent_id, size: pack.size, entries: [], retainUntil: pack.retain_until });
      sealed++;
    }
    return sealed;
  }

  close(): void { this.client.close(); }
}
