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

function chattr(flag: '+i' | '-i', file: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('chattr', [flag, file], { timeout: 10_000 }, (err, _stdout, stderr) => resolve(err ? (stderr.trim() || err.message) : undefined));
  });
}

export class ChattrImmutable implements ImmutableFlag {
  supported: boolean | undefined = undefined;
  onUnsupported?: (reason: string) => void;

  constructor(private readonly enabled = true) { if (!enabled) this.supported = false; }

  async set(file: string): Promise<boolean> {
    if (this.supported === false) return false;
    const err = await chattr('+i', file);
    if (err === undefined) { this.supported = true; return true; }
    if (this.supported === undefined) { this.supported = false; this.onUnsupported?.(err); }
    return false;
  }

  async clear(file: string): Promise<boolean> {
    if (!this.enabled) return false;
    return (await chattr('-i', file)) === undefined;
  }
}
