/**
 * @module FS_IMMUTABLE_FL on sealed files, where the filesystem supports it
 * (ext4, xfs, btrfs; needs CAP_LINUX_IMMUTABLE). Set with `chattr +i` after
 * a pack is sealed, cleared with `chattr -i` only by the store's deletePack
 * once the WORM checks passed. Without chattr, or on a filesystem that
 * refuses, packs stay read-only (0444) and the gateway says so once.
 */
import { execFile } from 'node:child_process';

export interface ImmutableFlag {
  set(file: string): Promise<boolean>;
  clear(file: string): Promise<boolean>;
  /** Called once with the reason when the flag turns out to be unsupported. */
  onUnsupported?: (reason: string) => void;
  readonly supported: boolean | undefined;
}

function chattr(flag: '+i' | '-i', files: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('chattr', [flag, '--', ...files], { timeout: 10_000 }, (err, _stdout, stderr) => resolve(err ? (stderr.trim() || err.message) : undefined));
  });
}

interface Waiting { file: string; resolve(ok: boolean): void }

export class ChattrImmutable implements ImmutableFlag {
  supported: boolean | undefined = undefined;
  onUnsupported?: (reason: string) => void;
  private queue: Waiting[] = [];
  private running = false;

  constructor(private readonly enabled = true) { if (!enabled) this.supported = false; }

  /** Files sealed while one chattr runs go together in the next: a fork of the gateway per pack costs more than the pack's fsync. */
  set(file: string): Promise<boolean> {
    if (this.supported === false) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.queue.push({ file, resolve });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 256);
      const err = await chattr('+i', batch.map((w) => w.file));
      if (err === undefined) { this.supported = true; for (const w of batch) w.resolve(true); continue; }
      // Someone failed: find out who, one by one (rare: a filesystem without the flag says so on the first pack).
      for (const w of batch) {
        const one = batch.length === 1 ? err : await chattr('+i', [w.file]);
        if (one === undefined) { this.supported = true; w.resolve(true); continue; }
        if (this.supported === undefined) { this.supported = false; this.onUnsupported?.(one); }
        w.resolve(false);
      }
    }
    this.running = false;
  }

  async clear(file: string): Promise<boolean> {
    if (!this.enabled) return false;
    return (await chattr('-i', [file])) === undefined;
  }
}
