/**
 * @module guard/client
 * The gateway's side of the kernel guard (kernel-guard/, `bulwark-guard run`).
 *
 * The guard daemon listens on a unix socket and speaks newline-delimited
 * JSON: each request `{"id":N,"op":...}` gets one reply line with the same
 * id and `"ok":true|false` (protocol: kernel-guard/README.md, "Socket
 * protocol"). The gateway asks for its status once at start and hands every
 * sealed pack over with `seal`.
 *
 * Without a guard (no BPF LSM, daemon not running) the client still works:
 * status() says UNPROTECTED and why, and sealFile() does nothing, so a
 * development run behaves like production minus the kernel layer.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { resolve } from 'node:path';

export const DEFAULT_GUARD_SOCKET = '/run/bulwark-guard.sock';
const REQUEST_TIMEOUT_MS = 10_000;

export interface GuardStatus {
  protected: boolean;
  /** Why the store is not protected: a sentence for the status page and logs. */
  reason?: string;
  /** The store directories the guard protects (real paths), when it runs. */
  stores?: string[];
}

export interface ConnectOptions {
  /** The gateway's store root: unless the guard protects it, status() is unprotected. */
  storeDir?: string;
}

export interface GuardClient {
  /** The protection state learnt when connecting. */
  status(): GuardStatus;
  /**
   * Seal a pack: nobody, the gateway included, may change, rename or delete
   * it for retainSeconds on the guard's monotonic clock (Infinity: legal
   * hold). The file must be fsynced and chmod 0444 first. Throws if the
   * guard refuses; a no-op when the store is unprotected.
   */
  sealFile(path: string, retainSeconds: number): Promise<void>;
  close(): void;
}

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  protected?: boolean;
  reason?: string;
  authenticated?: boolean;
  locked?: boolean;
  stores?: string[];
}

function activeLsms(): string | null {
  try {
    return readFileSync('/sys/kernel/security/lsm', 'utf8').trim();
  } catch {
    return null;
  }
}

function unprotected(reason: string): GuardClient {
  const status: GuardStatus = { protected: false, reason };
  return { status: () => status, sealFile: async () => {}, close: () => {} };
}

function connect(socketPath: string): Promise<Socket> {
  return new Promise((ok, fail) => {
    const s = createConnection(socketPath);
    s.once('connect', () => {
      s.removeListener('error', fail);
      ok(s);
    });
    s.once('error', fail);
  });
}

/** One connection, requests matched to replies by id. */
class Connection {
  private buf = '';
  private nextId = 1;
  private readonly waiting = new Map<number, { ok: (r: Reply) => void; fail: (e: Error) => void }>();

  constructor(private readonly sock: Socket, private readonly socketPath: string) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (e) => this.failAll(new Error(`kernel guard socket ${socketPath}: ${e.message}`)));
    sock.on('close', () => this.failAll(new Error(`the kernel guard closed ${socketPath}; is bulwark-guard still running?`)));
  }

  call(req: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((ok, fail) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        fail(new Error(`the kernel guard did not answer "${String(req.op)}" within ${REQUEST_TIMEOUT_MS / 1000} s (${this.socketPath})`));
      }, REQUEST_TIMEOUT_MS);
      this.waiting.set(id, {
        ok: (r) => { clearTimeout(timer); ok(r); },
        fail: (e) => { clearTimeout(timer); fail(e); },
      });
      this.sock.write(JSON.stringify({ id, ...req }) + '\n');
    });
  }

  close(): void {
    this.sock.end();
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: Reply;
      try {
        msg = JSON.parse(line) as Reply;
      } catch {
        continue; // not ours to interpret; the request will time out
      }
      const w = this.waiting.get(msg.id);
      if (w) {
        this.waiting.delete(msg.id);
        w.ok(msg);
      }
    }
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.fail(e);
    this.waiting.clear();
  }
}

export async function connectGuard(
  socketPath: string = DEFAULT_GUARD_SOCKET,
  options: ConnectOptions = {},
): Promise<GuardClient> {
  const lsm = activeLsms();
  if (lsm === null) {
    return unprotected('no BPF LSM found: /sys/kernel/security/lsm is unreadable (securityfs not mounted?), so the kernel guard cannot run');
  }
  if (!lsm.split(',').includes('bpf')) {
    return unprotected(`no BPF LSM in this kernel (lsm=${lsm}): boot with lsm=${lsm},bpf on a kernel with CONFIG_BPF_LSM=y`);
  }
  let sock: Socket;
  try {
    sock = await connect(socketPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return unprotected(`the kernel guard is not running (${code} on ${socketPath}): start "bulwark-guard run --store DIR --gateway-exe PATH --lock" before the gateway`);
  }
  const conn = new Connection(sock, socketPath);
  let st: Reply;
  try {
    st = await conn.call({ op: 'status' });
  } catch (e) {
    conn.close();
    return unprotected(`the kernel guard did not answer its status: ${(e as Error).message}`);
  }
  const stores = Array.isArray(st.stores) ? st.stores : [];
  let status: GuardStatus = st.protected
    ? { protected: true, stores }
    : { protected: false, reason: st.reason ?? 'the kernel guard gave no reason', stores };
  if (status.protected && options.storeDir !== undefined) {
    let real = options.storeDir;
    try {
      real = realpathSync(options.storeDir);
    } catch {
      // keep the given path; it will not match and the reason says so
    }
    if (!stores.includes(real)) {
      status = {
        protected: false,
        stores,
        reason: `the kernel guard does not protect the store ${real} (it protects: ${stores.join(', ') || 'nothing'}): start bulwark-guard with --store ${real}`,
      };
    }
  }
  // Only an authenticated gateway may seal; for anyone else the guard would
  // refuse every pack, so a development run just skips the call.
  const canSeal = st.authenticated === true;
  return {
    status: () => status,
    async sealFile(path: string, retainSeconds: number): Promise<void> {
      if (!canSeal) return;
      if (!(retainSeconds >= 0)) throw new Error(`cannot seal ${path}: retainSeconds must be >= 0 (got ${retainSeconds})`);
      const req: Record<string, unknown> = { op: 'seal', path: resolve(path) };
      if (retainSeconds === Infinity) req.hold = true;
      else req.retainSeconds = retainSeconds;
      const r = await conn.call(req);
      if (!r.ok) throw new Error(`the kernel guard refused to seal ${path}: ${r.error ?? 'no reason given'}`);
    },
    close: () => conn.close(),
  };
}
