'use strict';
/**
 * @module gateway-standin
 * Raw store verbs for the qemu test guest, built INTO the real gateway's
 * Node single executable (SEA) for the kernel-guard test only
 * (installers/sea/bundle-gateway.mjs --test-standin): the guard
 * authenticates that one binary by dev+ino and SHA-256, and these verbs let
 * the attack cases write, delete and seal arbitrary files as the gateway.
 * Every other verb of that binary is the real gateway CLI.
 *
 * It writes packs the way the gateway's store does (create, write, fsync,
 * chmod 0444, fsync the directory, hand to the guard) and speaks the guard
 * socket protocol through gateway/src/guard/client.ts itself: the bundle's
 * entry sets it as global `__bulwarkGuardClient` before requiring this
 * file. Run alone (plain node) it falls back to the plain-JS copy below.
 *
 *   gateway ingest STORE NAME RETAIN_S   write a pack and seal it
 *   gateway write  STORE NAME            write a pack, no seal
 *   gateway delete STORE NAME            unlink a pack
 *   gateway status                       print the guard status as JSON
 *   gateway status-store DIR             the same, for a gateway whose store is DIR
 *   gateway hold-open SECONDS            stay alive (a ptrace target)
 * Prints "OK ..." or "ERR <code> <message>" and exits 0 or 1.
 */
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');

// ---- fallback copy of gateway/src/guard/client.ts (keep the protocol in step) ----
const DEFAULT_GUARD_SOCKET = '/run/bulwark-guard.sock';

function readLsm() {
  try {
    return fs.readFileSync('/sys/kernel/security/lsm', 'utf8').trim();
  } catch {
    return null;
  }
}

function unprotected(reason) {
  return { status: () => ({ protected: false, reason }), sealFile: async () => {}, close() {} };
}

async function connectGuardCopy(socketPath = DEFAULT_GUARD_SOCKET, options = {}) {
  const lsm = readLsm();
  if (lsm === null) return unprotected('no BPF LSM found: /sys/kernel/security/lsm is unreadable (securityfs not mounted?), so the kernel guard cannot run');
  if (!lsm.split(',').includes('bpf')) return unprotected(`no BPF LSM in this kernel (lsm=${lsm})`);
  let sock;
  try {
    sock = await new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  } catch (e) {
    return unprotected(`the kernel guard is not running (${e.code} on ${socketPath}): start bulwark-guard run --lock`);
  }
  let buf = '';
  let nextId = 1;
  const waiting = new Map();
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg;
      try { msg = JSON.parse(line); } catch { continue; }
      const w = waiting.get(msg.id);
      if (w) { waiting.delete(msg.id); w.resolve(msg); }
    }
  });
  const fail = (err) => { for (const w of waiting.values()) w.reject(err); waiting.clear(); };
  sock.on('error', fail);
  sock.on('close', () => fail(new Error('the kernel guard closed its socket')));
  const call = (req) => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`the kernel guard did not answer "${req.op}" within 10 s`)); }, 10000);
    waiting.set(id, { resolve: (m) => { clearTimeout(timer); resolve(m); }, reject: (e) => { clearTimeout(timer); reject(e); } });
    sock.write(JSON.stringify({ id, ...req }) + '\n');
  });
  const st = await call({ op: 'status' });
  const stores = Array.isArray(st.stores) ? st.stores : [];
  let status = st.protected ? { protected: true, stores } : { protected: false, reason: String(st.reason || 'the kernel guard gave no reason'), stores };
  if (status.protected && options.storeDir !== undefined) {
    let real = options.storeDir;
    try { real = fs.realpathSync(options.storeDir); } catch { /* will not match */ }
    if (!stores.includes(real)) {
      status = { protected: false, stores, reason: `the kernel guard does not protect the store ${real} (it protects: ${stores.join(', ') || 'nothing'}): start bulwark-guard with --store ${real}` };
    }
  }
  return {
    status: () => status,
    async sealFile(file, retainSeconds) {
      if (!st.authenticated) return; // dev run: the guard would refuse anyway
      const req = { op: 'seal', path: path.resolve(file) };
      if (retainSeconds === Infinity) req.hold = true; else req.retainSeconds = retainSeconds;
      const r = await call(req);
      if (!r.ok) throw new Error(`the kernel guard refused to seal ${file}: ${r.error}`);
    },
    close() { sock.end(); },
  };
}
// ---- end of the client copy ----

/* global __bulwarkGuardClient */
const connectGuard = typeof __bulwarkGuardClient !== 'undefined'
  ? __bulwarkGuardClient.connectGuard
  : connectGuardCopy;
const clientSource = typeof __bulwarkGuardClient !== 'undefined' ? 'client.ts' : 'fallback copy';

function writePack(store, name) {
  const file = path.join(store, name);
  const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
  try {
    // deterministic content: the pack name seeds it
    let block = crypto.createHash('sha256').update(name).digest();
    for (let i = 0; i < 64; i++) {
      const chunk = Buffer.alloc(4096);
      for (let j = 0; j < 4096; j += 32) { block.copy(chunk, j); block = crypto.createHash('sha256').update(block).digest(); }
      fs.writeSync(fd, chunk);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(file, 0o444);
  const dfd = fs.openSync(store, 'r');
  fs.fsyncSync(dfd);
  fs.closeSync(dfd);
  return file;
}

async function main(argv) {
  const [cmd, store, name, retain] = argv;
  if (cmd === 'status' || cmd === 'status-store') {
    const g = await connectGuard(undefined, cmd === 'status-store' ? { storeDir: store } : {});
    console.log(JSON.stringify(g.status()));
    console.error(`guard client: ${clientSource}`);
    g.close();
    return;
  }
  if (cmd === 'hold-open') {
    console.log(`READY ${process.pid}`);
    await new Promise((r) => setTimeout(r, Number(store) * 1000));
    return;
  }
  if (cmd === 'write') { writePack(store, name); console.log('OK'); return; }
  if (cmd === 'delete') { fs.unlinkSync(path.join(store, name)); console.log('OK'); return; }
  if (cmd === 'ingest') {
    const g = await connectGuard();
    try {
      const file = writePack(store, name);
      await g.sealFile(file, Number(retain));
      console.log(`OK ${JSON.stringify(g.status())}`);
    } finally {
      g.close();
    }
    return;
  }
  throw Object.assign(new Error(`unknown command ${cmd}`), { code: 'USAGE' });
}

// In a SEA argv[1] repeats the executable; plain `node x.cjs` has the script.
main(process.argv.slice(2)).catch((e) => {
  console.log(`ERR ${e.code || 'ERROR'} ${e.message}`);
  process.exitCode = 1;
});
