/**
 * @module Test support: real gateway and agent processes, started from the
 * built command-line programs exactly as a user runs them.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const GATEWAY_CLI = path.join(ROOT, 'gateway/dist/cli/main.js');
export const AGENT_CLI = path.join(ROOT, 'agent/dist/bundle/bulwark-agent.js');
export const RESTORE_PASSWORD = 'test restore password';

export interface RunResult { code: number; stdout: string; stderr: string }

export function run(cli: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function runOk(cli: string, args: string[]): Promise<RunResult> {
  const result = await run(cli, args);
  if (result.code !== 0) throw new Error(`${path.basename(path.dirname(path.dirname(cli)))} ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`);
  return result;
}

/** A fresh directory for one test file; temp-dirs.ts removes it when the run ends. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bulwark-${prefix}-`));
}

export class GatewayProcess {
  proc!: ChildProcess;
  port = 0;
  log = '';
  /** More `serve` options; the default keeps the embedded fleet broker off fixed ports. */
  serveArgs: string[] = ['--mqtt-listen', '127.0.0.1:0'];

  constructor(readonly dir: string) {}

  get url(): string { return `wss://127.0.0.1:${this.port}`; }

  async start(port = this.port): Promise<void> {
    // The executable, as users run it: its first line carries the runtime flags.
    this.proc = spawn(GATEWAY_CLI, ['serve', '--dir', this.dir, '--listen', `127.0.0.1:${port}`, ...this.serveArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => { this.log += d; });
    this.port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${out}${this.log}`)), 20_000);
      this.proc.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on wss:\/\/[^:]+:(\d+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      this.proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited (${code}) at start:\n${out}${this.log}`)); });
    });
  }

  kill9(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      this.proc.once('exit', () => { clearTimeout(timer); resolve(); });
      this.proc.kill('SIGTERM');
    });
  }
}

export interface Site { dir: string; gateway: GatewayProcess; passwordFile: string }

export async function createSite(root = tempDir('site')): Promise<Site> {
  const dir = path.join(root, 'site');
  const passwordFile = path.join(root, 'restore-password');
  fs.writeFileSync(passwordFile, `${RESTORE_PASSWORD}\n`, { mode: 0o600 });
  await runOk(GATEWAY_CLI, ['init', '--dir', dir, '--restore-password-file', passwordFile]);
  const gateway = new GatewayProcess(dir);
  await gateway.start(0);
  return { dir, gateway, passwordFile };
}

export async function newToken(siteDir: string, ttlMinutes?: number): Promise<string> {
  const { stdout } = await runOk(GATEWAY_CLI, ['token', '--dir', siteDir, ...(ttlMinutes ? ['--ttl', String(ttlMinutes)] : [])]);
  return stdout.trim().split('\n').pop()!;
}

export async function enrollAgent(site: Site, stateDir = path.join(tempDir('agent'), 'state')): Promise<string> {
  await runOk(AGENT_CLI, ['enroll', '--state', stateDir, '--gateway', site.gateway.url, '--token', await newToken(site.dir)]);
  return stateDir;
}

export function agentId(stateDir: string): string {
  return (JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as { agentId: string }).agentId;
}

export interface BackupJson { point: string; bytesRead: number; bytesSent: number; seconds: number; blobsSent: number; files: number; unchangedFiles: number; reconnects: number }

export async function backup(stateDir: string, paths: string[]): Promise<BackupJson> {
  const { stdout } = await runOk(AGENT_CLI, ['backup', '--state', stateDir, '--json', ...paths]);
  return JSON.parse(stdout.trim().split('\n').pop()!) as BackupJson;
}

export interface VolumeJson {
  point: string; provider: string; crashConsistent: boolean; snapshot: string; declined: string[]; warnings: string[];
  bytesRead: number; changedBytes: number; zeroBytes: number; dataBytes: number; bytesSent: number; extents: number; metadataBytes: number;
}

export async function backupVolume(stateDir: string, volume: string, bitmap?: string): Promise<VolumeJson> {
  const { stdout } = await runOk(AGENT_CLI, ['backup', '--state', stateDir, '--json', '--volume', volume, ...(bitmap ? ['--cbt-bitmap', bitmap] : [])]);
  return JSON.parse(stdout.trim().split('\n').pop()!) as VolumeJson;
}

export async function restoreVolume(stateDir: string, point: string, target: string): Promise<{ verified: boolean; sizeBytes: number }> {
  const { stdout } = await runOk(AGENT_CLI, ['restore', '--state', stateDir, point, '--to-volume', target, '--json']);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}
