/**
 * @module Terminal helpers both command-line programs share: reading a secret
 * without echo or from a file (never from argv), and a progress line that
 * only draws on a terminal.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
export type ParsedOptions<T extends OptionSpec> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>>;

/** Run `argv`'s command from `commands`; no command or a help flag prints `usage`, an unknown one is a UsageError. */
export async function runCommand(commands: Record<string, (args: string[]) => Promise<void>>, usage: string, argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') { process.stdout.write(usage); return; }
  const handler = commands[command];
  if (!handler) throw new UsageError(`unknown command "${command}"`);
  await handler(rest);
}

/** An operating-system error (ENOSPC, EACCES, …): its message already names the call and the path, a stack would only hide them. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException;
  return err instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string';
}

/** Strict option parsing whose mistakes come back as a UsageError naming the bad option. */
export function parseOptions<T extends OptionSpec>(args: string[], spec: T, positionals = false): ParsedOptions<T> {
  try {
    return parseArgs({ args, options: spec, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Read a secret from `file` (first line) or, on a terminal, from a prompt without echo. */
export async function readSecret(file: string | undefined, prompt: string, confirm = false): Promise<string> {
  if (file) {
    const text = fs.readFileSync(file, 'utf8').split(/\r?\n/)[0];
    if (!text) throw new UsageError(`${file} is empty: it must hold the password on its first line`);
    return text;
  }
  if (!process.stdin.isTTY) throw new UsageError(`no terminal to ask for the password: pass --restore-password-file FILE`);
  const first = await promptHidden(prompt);
  if (confirm && (await promptHidden('Repeat it: ')) !== first) throw new UsageError('the two passwords differ');
  return first;
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') { finish(); resolve(value); return; }
        if (ch === '\u0003') { finish(); reject(new UsageError('cancelled')); return; }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const finish = () => { stdin.off('data', onData); stdin.setRawMode(false); stdin.pause(); process.stderr.write('\n'); };
    stdin.on('data', onData);
  });
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A single redrawn status line on stderr; silent when stderr is not a terminal. */
export class ProgressLine {
  private last = 0;
  private readonly enabled: boolean;
  constructor(enabled = process.stderr.isTTY === true) { this.enabled = enabled; }

  update(render: () => string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = process.stderr.columns || 100;
    process.stderr.write(`\r${render().slice(0, width - 1).padEnd(width - 1)}`);
  }

  done(): void { if (this.enabled) process.stderr.write('\n'); }
}

/** A bar like `[#####.....]  42%`. */
export function bar(fraction: number, width = 24): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(f * 100).toFixed(0).padStart(3)}%`;
}
