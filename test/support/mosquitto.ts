/**
 * @module Test support: a real Mosquitto on a free loopback port, configured
 * from the files `bulwark-gateway broker-config` generates (site CA, broker
 * certificate, ACL): mutual TLS with `require_certificate` and
 * `use_identity_as_username`, persistence on, so a restart keeps sessions.
 * Mosquitto drops to the `mosquitto` user, so its files are made its own.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { GATEWAY_CLI, runOk, tempDir } from './cluster.js';

export function mosquittoBinary(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) if (fs.existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('mosquitto is not installed: run test/support/install-deps.sh');
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function mosquittoIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return { uid: Number(execFileSync('id', ['-u', 'mosquitto'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'mosquitto'], { encoding: 'utf8' })) };
  } catch {
    return undefined;
  }
}

export class Mosquitto {
  proc?: ChildProcess;
  log = '';

  private constructor(readonly dir: string, readonly port: number, readonly confFile: string) {}

  get url(): string { return `mqtts://127.0.0.1:${this.port}`; }

  /** Generate the broker files for a site and start Mosquitto on a free port. */
  static async start(siteDir: string): Promise<Mosquitto> {
    const dir = tempDir('mosquitto');
    const port = await freePort();
    await runOk(GATEWAY_CLI, ['broker-config', '--dir', siteDir, '--out', dir, '--port', String(port)]);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    const confFile = path.join(dir, 'mosquitto.conf');
    const listener = fs.readFileSync(confFile, 'utf8').replace(/^listener (\d+)$/m, 'listener $1 127.0.0.1');
    fs.writeFileSync(confFile, [
      listener,
      'persistence true',
      `persistence_location ${data}/`,
      'autosave_interval 1',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type subscribe',
      'max_queued_messages 10000',
      '',
    ].join('\n'));
    fs.chmodSync(dir, 0o755);
    const ids = mosquittoIds();
    if (ids) for (const f of [dir, data, ...fs.readdirSync(dir).map((f) => path.join(dir, f))]) fs.chownSync(f, ids.uid, ids.gid);
    const broker = new Mosquitto(dir, port, confFile);
    await broker.launch();
    return broker;
  }

  async launch(): Promise<void> {
    this.proc = spawn(mosquittoBinary(), ['-c', this.confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => { this.log += d; });
    this.proc.stdout!.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`mosquitto exited (${this.proc.exitCode}):\n${this.log}`);
      if (await new Promise<boolean>((resolve) => {
        const s = net.connect(this.port, '127.0.0.1', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      })) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM (Mosquitto saves its persistence file), wait for exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => { clearTimeout(timer); resolve(); });
      proc.kill('SIGTERM');
    });
  }

  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }
}
