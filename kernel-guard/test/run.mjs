/**
 * @module kernel-guard/test/run
 * The kernel guard's test: build everything, boot Debian's 6.1 kernel in
 * qemu (TCG), let test/guest/attacks.sh attack the guard as root, and judge
 * by the PASS/FAIL lines on the serial console (qemu exits 0 whatever the
 * guest did). Prints one line per case and "N passed, N failed" last.
 *
 * Env: KG_BUILD (build dir), KG_TIMEOUT_S (guest deadline, default 240),
 *      KG_RETAIN_S (seal retention used in the guest, default 30).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const build = process.env.KG_BUILD ?? join(here, 'build');
const timeoutS = Number(process.env.KG_TIMEOUT_S ?? 240);
const results = [];

function step(label, cmd, args) {
  const t = Date.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: here });
  if (r.status !== 0) {
    results.push({ name: label, ok: false, why: `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}` });
    return false;
  }
  console.log(`# ${label}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return true;
}

/** Fresh disks: an ext4 store (vda), a raw disk for the tracker (vdb), an LVM physical volume (vdc). */
function makeDisks() {
  const disks = { store: join(build, 'store.img'), cbt: join(build, 'cbt.img'), lvm: join(build, 'lvm.img') };
  const sizes = { store: '128M', cbt: '16M', lvm: '64M' };
  for (const [name, file] of Object.entries(disks)) {
    rmSync(file, { force: true });
    spawnSync('truncate', ['-s', sizes[name], file]);
  }
  const r = spawnSync('mkfs.ext4', ['-q', '-F', disks.store], { stdio: 'inherit' });
  return r.status === 0 ? disks : null;
}

function bootGuest(disks) {
  const log = createWriteStream(join(build, 'guest.log'));
  const args = [
    '-accel', 'tcg', '-smp', '2', '-m', '1536M', '-nographic', '-no-reboot', '-nic', 'none',
    '-kernel', join(build, 'kernel', 'bzImage'), '-initrd', join(build, 'initramfs.cpio'),
    '-append', `console=ttyS0 panic=-1 quiet tsc=reliable kg_retain=${process.env.KG_RETAIN_S ?? 30}`,
    '-drive', `file=${disks.store},format=raw,if=virtio`,
    '-drive', `file=${disks.cbt},format=raw,if=virtio`,
    '-drive', `file=${disks.lvm},format=raw,if=virtio`,
  ];
  return new Promise((resolve) => {
    const t0 = Date.now();
    const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let done = false;
    let events = [];
    let inEvents = false;
    const timer = setTimeout(() => {
      console.log(`# guest still running after ${timeoutS} s: killing qemu`);
      q.kill('SIGKILL');
    }, timeoutS * 1000);
    const onLine = (raw) => {
      const line = raw.replace(/\r$/, '').replace(/^.*?(PASS |FAIL |KG-)/, '$1');
      if (line === 'KG-EVENTS-BEGIN') { inEvents = true; return; }
      if (line === 'KG-EVENTS-END') { inEvents = false; return; }
      if (inEvents) { events.push(raw.replace(/\r$/, '')); return; }
      let m;
      if ((m = /^PASS (\S+)/.exec(line))) results.push({ name: m[1], ok: true });
      else if ((m = /^FAIL (\S+?):? (.*)$/.exec(line))) results.push({ name: m[1], ok: false, why: m[2] });
      else if (line.startsWith('KG-DONE')) done = true;
      else if (line.startsWith('KG-INFO') || line.startsWith('KG-WARN') || line.startsWith('KG-BOOTED')) {
        console.log(`# ${line}`);
        return;
      } else return;
      const r = results.at(-1);
      if (!line.startsWith('KG-DONE')) console.log(r.ok ? `PASS ${r.name}` : `FAIL ${r.name}: ${r.why}`);
    };
    const onData = (d) => {
      log.write(d);
      buf += d.toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    };
    q.stdout.on('data', onData);
    q.stderr.on('data', onData);
    q.on('close', () => {
      clearTimeout(timer);
      log.end();
      writeFileSync(join(build, 'events.jsonl'), events.join('\n') + '\n');
      const secs = (Date.now() - t0) / 1000;
      console.log(`# boot+test cycle: ${secs.toFixed(1)} s (guest log: ${join(build, 'guest.log')})`);
      if (!done) results.push({ name: 'guest-finished', ok: false, why: `no KG-DONE on the console (see ${join(build, 'guest.log')})` });
      else results.push({ name: 'guest-finished', ok: true });
      if (secs > 180) console.log('# warning: the cycle took more than 3 minutes');
      resolve();
    });
  });
}

async function main() {
  mkdirSync(build, { recursive: true });
  const ok = step('dependencies', 'sh', ['scripts/deps.sh']) && step('build', 'sh', ['scripts/build.sh', build]);
  if (ok) {
    const disks = makeDisks();
    if (disks) await bootGuest(disks);
    else results.push({ name: 'disks', ok: false, why: 'mkfs.ext4 failed' });
  }
  for (const r of results.filter((x) => !x.ok && ['dependencies', 'build', 'disks', 'guest-finished'].includes(x.name))) {
    console.log(`FAIL ${r.name}: ${r.why}`);
  }
  if (results.at(-1)?.name === 'guest-finished' && results.at(-1).ok) console.log('PASS guest-finished');
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed || !passed ? 1 : 0;
}

await main();
