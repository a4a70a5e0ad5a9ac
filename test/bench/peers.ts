/**
 * @module Benchmark support: deterministic data, timing of whole commands,
 * the peers (Debian's restic and borg) and markdown tables with ratios.
 */
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** cpuSeconds: user + system time of the command and its threads (and of children it waited for). */
export interface Timed { seconds: number; stdout: string; peakRssBytes: number; cpuSeconds: number }

/**
 * Each timed command starts with no dirty pages of the one before: otherwise the previous tool's
 * writeback (a restore of ~1 GiB) lands in the next tool's fsyncs and its time.
 */
export function settle(): void { execFileSync('sync'); }

/**
 * Start the next command with nothing in the page cache, as a restore days after the
 * backup does: each tool reads its repository from disk. Without it, a tool whose writes
 * stayed in the cache (restic, borg) restores from memory and one that wrote around it
 * (Bulwark's packs) from disk. Needs root; false where it is not allowed.
 */
export function dropCaches(): boolean {
  settle();
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/**
 * Every tool starts with its input in the page cache, whoever read it last: borg drops the
 * pages of what it read (posix_fadvise DONTNEED), which left the next tool reading from disk.
 */
export function warm(target: string, buffer = Buffer.allocUnsafe(8 * 1024 * 1024)): void {
  const st = fs.statSync(target);
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(target)) warm(path.join(target, name), buffer);
    return;
  }
  if (!st.isFile()) return;
  const fd = fs.openSync(target, 'r');
  try {
    while (fs.readSync(fd, buffer, 0, buffer.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

/** Run a command to completion; wall time, CPU time and peak RSS (GNU time) of the whole process tree's leader. */
export function timed(cmd: string, args: string[], options: SpawnSyncOptions = {}): Timed {
  settle();
  const started = process.hrtime.bigint();
  const result = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${result.status}):\n${result.stderr}`);
  const lines = String(result.stderr).trim().split('\n');
  const [kib, user, system] = lines[lines.length - 1].split(' ').map(Number);
  return { seconds, stdout: String(result.stdout), peakRssBytes: kib * 1024, cpuSeconds: hundredths(user + system) };
}

/** CPU times come in hundredths of a second (GNU time, clock ticks): sums are kept to them (no 4.870000000000001 in the logs). */
const hundredths = (seconds: number): number => Math.round(seconds * 100) / 100;

/**
 * CPU time a running process (all its threads) has used so far: for the gateway, which serves
 * the agent's commands while they are timed. Agent and gateway share two cores and keep them
 * ~85–90 % busy in these benches, so what both spend says more than wall time alone.
 */
function processCpuSeconds(pid: number): number {
  // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 per second on Linux).
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `command` timed, with what process `pid` (the gateway) spent meanwhile added to its CPU time. */
export function alsoCountingCpuOf(pid: number, command: () => Timed): Timed {
  const before = processCpuSeconds(pid);
  const result = command();
  return { ...result, cpuSeconds: hundredths(result.cpuSeconds + processCpuSeconds(pid) - before) };
}

/** A running process's peak resident memory so far (VmHWM), in bytes. */
export function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

export function ensurePeers(): void {
  const missing = ['restic', 'borgbackup'].filter((pkg) => spawnSync('sh', ['-c', `command -v ${pkg === 'borgbackup' ? 'borg' : pkg}`]).status !== 0);
  if (missing.length === 0) return;
  console.error(`bench: installing ${missing.join(' ')} from Debian`);
  execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`], { stdio: 'inherit' });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface Row { metric: string; bulwark: number; restic?: number; borg?: number; unit: string; target?: { ratio: number; of: 'faster-peer' } | { max: number } }

export function markdownTable(title: string, rows: Row[]): string {
  const fmt = (v: number | undefined, unit: string) => (v === undefined ? '–' : unit === 's' ? v.toFixed(2) : unit === 'MiB' ? (v / 1048576).toFixed(1) : String(v));
  const lines = [`### ${title}`, '', '| metric | Bulwark | restic | borg | ratio vs the better peer | target | met |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const peers = [r.restic, r.borg].filter((v): v is number => v !== undefined);
    const best = peers.length ? Math.min(...peers) : undefined;
    const ratio = best ? r.bulwark / best : undefined;
    let target = '';
    let met = '';
    if (r.target && 'ratio' in r.target) { target = `≤ ${r.target.ratio} ×`; met = ratio !== undefined && ratio <= r.target.ratio ? 'yes' : 'NO'; }
    if (r.target && 'max' in r.target) { target = `≤ ${fmt(r.target.max, r.unit)} ${r.unit}`; met = r.bulwark <= r.target.max ? 'yes' : 'NO'; }
    lines.push(`| ${r.metric} (${r.unit}) | ${fmt(r.bulwark, r.unit)} | ${fmt(r.restic, r.unit)} | ${fmt(r.borg, r.unit)} | ${ratio === undefined ? '–' : ratio.toFixed(2)} | ${target} | ${met} |`);
  }
  return lines.join('\n');
}

/** Remove a bench directory. Sealed packs carry the immutable flag; a bench owns its store and lifts it. */
export function removeTree(dir: string): void {
  if (fs.existsSync(dir)) spawnSync('chattr', ['-R', '-i', dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}

export function freshDir(dir: string): string {
  removeTree(dir);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
