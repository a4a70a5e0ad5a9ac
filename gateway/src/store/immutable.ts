/**
 * @module FS_IMMUTABLE_FL on sealed files, where the filesystem supports it
 * (ext4, xfs, btrfs; needs CAP_LINUX_IMMUTABLE). Set with `chattr +i` after
 * a pack is sealed, cleared with `chattr -i` only by the store's deletePack
 * once the WORM checks passed. Without chattr, or on a filesystem that
 * refuses, packs stay read-only (0444) and the gateway says so once.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface ImmutableFlag {
  set(file: string): Promise<boolean>;
  clear(file: string): Promise<boolean>;
  /** Called once with the reason when the flag turns out to be unsupported. */
  onUnsupported?: (reason: string) => void;
  readonly supported: boolean | undefined;
}

/**
 * Reads lines of a flag (+i or -i) and a file (the store names them: no
 * newlines) and answers each with "ok" or chattr's complaint on one line.
 */
const CHATTR_SCRIPT = 'while IFS=" " read -r flag f; do if out=$(chattr "$flag" -- "$f" 2>&1); then echo ok; else printf "%s\\n" "$out" | tr "\\n" " "; echo; fi; done';

/**
 * One long-lived shell runs chattr for every pack sealed or deleted. Forking
 * the gateway per pack cost its main thread ~4 ms each time (a profile of a
 * 837 MiB backup: 0.23 s in spawn for ~55 packs), and after each fork every
 * page it wrote took a copy-on-write fault once more. The shell reads EOF and
 * ends when the gateway does, killed or not.
 */
class ChattrShell {
  private child?: ChildProcessByStdio<Writable, Readable, null>;
  private readonly waiting: ((complaint: string | undefined) => void)[] = [];
  private partial = '';

  /** Resolves with chattr's complaint, or undefined when it succeeded. */
  run(flag: '+i' | '-i', file: string): Promise<string | undefined> {
    const child = (this.child ??= this.start());
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      child.stdin.write(`${flag} ${file}\n`);
    });
  }

  private start(): ChildProcessByStdio<Writable, Readable, null> {
    const child = spawn('sh', ['-c', CHATTR_SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'] });
    // Never what keeps the gateway running.
    child.unref();
    (child.stdin as Writable & { unref?: () => void }).unref?.();
    (child.stdout as Readable & { unref?: () => void }).unref?.();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      const lines = (this.partial + text).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) this.waiting.shift()?.(line === 'ok' ? undefined : line.trim() || 'chattr failed');
    });
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      this.partial = '';
      for (const resolve of this.waiting.splice(0)) resolve(why);
    };
    child.on('error', (err) => gone(`cannot run sh for chattr: ${err.message}`));
    child.on('exit', (code, signal) => gone(`the chattr shell ended (${signal ?? code})`));
    child.stdin.on('error', () => undefined);
    return child;
  }
}

export class ChattrImmutable implements ImmutableFlag {
  supported: boolean | undefined = undefined;
  onUnsupported?: (reason: string) => void;
  private readonly shell = new ChattrShell();

  constructor(private readonly enabled = true) { if (!enabled) this.supported = false; }

  async set(file: string): Promise<boolean> {
    if (this.supported === false) return false;
    const complaint = await this.shell.run('+i', file);
    if (complaint === undefined) { this.supported = true; return true; }
    // A filesystem without the flag says so on the first pack.
    if (this.supported === undefined) { this.supported = false; this.onUnsupported?.(complaint); }
    return false;
  }

  async clear(file: string): Promise<boolean> {
    if (!this.enabled) return false;
    return (await this.shell.run('-i', file)) === undefined;
  }
}
