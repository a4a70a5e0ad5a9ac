/**
 * Volume benchmark (issue 3): Bulwark against Debian's restic and borg on the
 * same 2 GiB image in the same run. Image: first half random, second half
 * text-like, generated from a seed; then 1% of its 4 KiB blocks rewritten at
 * scattered offsets. Prints a markdown table of medians with ratios to the
 * faster peer, then bytes sent, metadata, peak RSS and the CPU time of the
 * initial backup and the cold restore (Bulwark's: agent and gateway
 * together). Every backup starts with the image in the page cache (borg drops
 * the pages it read, which would leave the next tool reading from disk).
 *
 *   npm run build && node --import tsx test/bench/volume-bench.ts
 *   (also run by `npm run bench`, test/bench/run.sh)
 *
 * Environment: BENCH_DIR (default /var/tmp/volume-bench-data), BENCH_GIB (2),
 * BENCH_REPS (3), BENCH_SEED ("bulwark"), BENCH_PEERS=0 to skip restic/borg.
 * Not part of `npm test`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_CLI, createSite, enrollAgent, type Site } from '../support/cluster.js';
import { alsoCountingCpuOf, dropCaches, ensurePeers, freshDir, median, peakRss, removeTree, timed as timedCommand, warm, type Timed } from './peers.js';
import { BLOCK, FastRng, bitmapFile, randomStream, sha256File, textBytes, writeAt } from '../support/volume-images.js';

const DIR = process.env.BENCH_DIR ?? '/var/tmp/volume-bench-data';
const GIB = Number(process.env.BENCH_GIB ?? 2);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const SEED = process.env.BENCH_SEED ?? 'bulwark';
const PEERS = process.env.BENCH_PEERS !== '0';
const SIZE = Math.round(GIB * 1024 * 1024 * 1024 / BLOCK) * BLOCK;
const PASSWORD = 'bench password';

const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;

/** The base image, cached by size and seed. */
function baseImage(): string {
  const file = path.join(DIR, `base-${SIZE}-${SEED}.img`);
  if (fs.existsSync(file) && fs.statSync(file).size === SIZE && fs.existsSync(`${file}.done`)) return file;
  console.log(`generating ${mib(SIZE)} image (seed ${SEED})…`);
  const fd = fs.openSync(file, 'w');
  const random = randomStream(`${SEED} image`);
  const rng = new FastRng(12345);
  const half = Math.floor(SIZE / 2 / BLOCK) * BLOCK;
  const step = 8 * 1024 * 1024;
  for (let at = 0; at < SIZE; at += step) {
    const n = Math.min(step, SIZE - at);
    const data = at < half ? random(Math.min(n, half - at)) : textBytes(rng, n);
    fs.writeSync(fd, data, 0, data.length, at);
    if (data.length < n) { const t = textBytes(rng, n - data.length); fs.writeSync(fd, t, 0, t.length, at + data.length); }
  }
  fs.closeSync(fd);
  fs.writeFileSync(`${file}.done`, '');
  return file;
}

/** 1% of the blocks, scattered, distinct from `avoid`. */
function changeSet(seed: number, avoid: Set<number> = new Set()): number[] {
  const blocks = SIZE / BLOCK;
  const want = Math.round(blocks * 0.01);
  const rng = new FastRng(seed);
  const chosen = new Set<number>();
  while (chosen.size < want) { const b = rng.int(blocks); if (!avoid.has(b)) chosen.add(b); }
  return [...chosen].sort((a, b) => a - b);
}

function applyChanges(image: string, blocks: number[], seed: string): void {
  const random = randomStream(seed);
  const fd = fs.openSync(image, 'r+');
  for (const b of blocks) fs.writeSync(fd, random(BLOCK), 0, BLOCK, b * BLOCK);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

function measure(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Timed {
  return timedCommand(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
}

/**
 * Run as users run it (`npx bulwark-agent`): the executable, with the runtime flags on its first line.
 * cpu: the agent's CPU seconds and the gateway's (process `gatewayPid`) while it ran.
 */
async function agent(gatewayPid: number, args: string[]): Promise<{ wall: number; rss: number; cpu: number; json: Record<string, unknown> }> {
  const { seconds, stdout, peakRssBytes, cpuSeconds } = alsoCountingCpuOf(gatewayPid, () => timedCommand(AGENT_CLI, args));
  return { wall: seconds, rss: peakRssBytes, cpu: cpuSeconds, json: JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown> };
}

/** A peer's times; cpu…: CPU seconds of its initial backup and of its restore with caches dropped. */
interface PeerRep { initial: number; incremental: number; restore: number; restoreCold: number; cpuInitial: number; cpuRestoreCold: number }

const peerRep = (initial: Timed): PeerRep => ({ initial: initial.seconds, cpuInitial: initial.cpuSeconds, incremental: 0, restore: 0, restoreCold: NaN, cpuRestoreCold: NaN });

interface Rep {
  bulwark: { initial: number; scan: number; bitmap: number; restore: number; restoreCold: number; scanSent: number; bitmapSent: number; changed: number; scanIn: number; bitmapIn: number; metadata: number; provider: string[]; scanPhases?: unknown; bitmapPhases?: unknown; restoreVerify?: number; rssBackup: number; rssRestore: number; rssGateway: number; cpuInitial: number; cpuRestoreCold: number };
  restic?: PeerRep;
  borg?: PeerRep;
}

async function main(): Promise<void> {
  fs.mkdirSync(DIR, { recursive: true });
  if (PEERS) ensurePeers();
  const base = baseImage();
  const c1 = changeSet(1);
  const c2 = changeSet(2, new Set(c1));
  const reps: Rep[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const root = path.join(DIR, `rep-${rep}`);
    freshDir(root);
    const image = path.join(root, 'disk.img');
    fs.copyFileSync(base, image);
    const bitmap = path.join(root, 'disk.cbt');
    const generation = 0x5eed_0000_0000_0001n + BigInt(rep);
    let site: Site | undefined;
    try {
      site = await createSite(root);
      const state = await enrollAgent(site, path.join(root, 'agent'));
      const gatewayPid = site.gateway.proc.pid!;
      const r: Rep = { bulwark: { initial: 0, scan: 0, bitmap: 0, restore: 0, restoreCold: NaN, scanSent: 0, bitmapSent: 0, changed: c1.length * BLOCK, scanIn: 0, bitmapIn: 0, metadata: 0, provider: [], rssBackup: 0, rssRestore: 0, rssGateway: 0, cpuInitial: 0, cpuRestoreCold: NaN } };
      const env = { RESTIC_PASSWORD: PASSWORD, BORG_PASSPHRASE: PASSWORD, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
      const resticRepo = path.join(root, 'restic');
      const borgRepo = path.join(root, 'borg');
      if (PEERS) {
        measure('restic', ['init', '--repo', resticRepo], { env });
        measure('borg', ['init', '--encryption', 'repokey', borgRepo], { env });
        warm(image);
        r.restic = peerRep(measure('restic', ['--repo', resticRepo, 'backup', image], { env }));
        warm(image);
        r.borg = peerRep(measure('borg', ['create', `${borgRepo}::p1`, image], { env }));
      }
      // Bulwark initial, with the tracker's first dump as the baseline.
      fs.writeFileSync(bitmap, bitmapFile({ sizeBytes: SIZE, generation, sequence: 1n, dirty: [] }));
      warm(image);
      const initial = await agent(gatewayPid, ['backup', '--state', state, '--json', '--volume', image, '--cbt-bitmap', bitmap]);
      r.bulwark.initial = initial.wall;
      r.bulwark.rssBackup = initial.rss;
      r.bulwark.cpuInitial = initial.cpu;
      r.bulwark.provider.push(String(initial.json.provider));

      applyChanges(image, c1, `${SEED} change 1`);
      if (PEERS) {
        warm(image);
        r.restic!.incremental = measure('restic', ['--repo', resticRepo, 'backup', image], { env }).seconds;
        warm(image);
        r.borg!.incremental = measure('borg', ['create', `${borgRepo}::p2`, image], { env }).seconds;
      }
      warm(image);
      const scan = await agent(gatewayPid, ['backup', '--state', state, '--json', '--volume', image]);
      r.bulwark.scan = scan.wall;
      r.bulwark.scanIn = Number(scan.json.seconds);
      r.bulwark.scanSent = Number(scan.json.bytesSent);
      r.bulwark.scanPhases = scan.json.phases;
      r.bulwark.provider.push(String(scan.json.provider));

      // A second 1% change; the tracker's next dump marks every write since dump 1 (c1 and c2).
      applyChanges(image, c2, `${SEED} change 2`);
      fs.writeFileSync(bitmap, bitmapFile({ sizeBytes: SIZE, generation, sequence: 2n, dirty: [...c1, ...c2] }));
      warm(image);
      const cbt = await agent(gatewayPid, ['backup', '--state', state, '--json', '--volume', image, '--cbt-bitmap', bitmap]);
      r.bulwark.bitmap = cbt.wall;
      r.bulwark.bitmapIn = Number(cbt.json.seconds);
      r.bulwark.bitmapSent = Number(cbt.json.bytesSent);
      r.bulwark.bitmapPhases = cbt.json.phases;
      r.bulwark.metadata = Math.max(Number(scan.json.metadataBytes), Number(cbt.json.metadataBytes));
      r.bulwark.provider.push(String(cbt.json.provider));

      // Each tool restores twice: right after the backups (whatever they left in the page
      // cache), then, after all of those, with caches dropped before each (from disk).
      const target = path.join(root, 'restored.img');
      const restoreBulwark = async () => {
        const restored = await agent(gatewayPid, ['restore', '--state', state, 'latest', '--to-volume', target, '--json']);
        r.bulwark.restoreVerify = Number(restored.json.verifySeconds);
        r.bulwark.rssRestore = Math.max(r.bulwark.rssRestore, restored.rss);
        if (rep === 0 && sha256File(target) !== sha256File(image)) throw new Error('the restored image differs from the source');
        fs.rmSync(target);
        return restored;
      };
      const rt = path.join(root, 'restic-restore');
      const restoreRestic = () => {
        const restored = measure('restic', ['--repo', resticRepo, 'restore', 'latest', '--target', rt], { env });
        fs.rmSync(rt, { recursive: true, force: true });
        return restored;
      };
      const bt = path.join(root, 'borg-restore');
      const restoreBorg = () => {
        fs.mkdirSync(bt);
        const restored = measure('borg', ['extract', `${borgRepo}::p2`], { env, cwd: bt });
        fs.rmSync(bt, { recursive: true, force: true });
        return restored;
      };
      r.bulwark.restore = (await restoreBulwark()).wall;
      if (PEERS) { r.restic!.restore = restoreRestic().seconds; r.borg!.restore = restoreBorg().seconds; }
      if (dropCaches()) ({ wall: r.bulwark.restoreCold, cpu: r.bulwark.cpuRestoreCold } = await restoreBulwark());
      if (PEERS && dropCaches()) ({ seconds: r.restic!.restoreCold, cpuSeconds: r.restic!.cpuRestoreCold } = restoreRestic());
      if (PEERS && dropCaches()) ({ seconds: r.borg!.restoreCold, cpuSeconds: r.borg!.cpuRestoreCold } = restoreBorg());
      r.bulwark.rssGateway = peakRss(site.gateway.proc.pid!);
      await site.gateway.stop();
      site = undefined;
      reps.push(r);
      console.log(`rep ${rep}: ${JSON.stringify(r)}`);
    } finally {
      await site?.gateway.stop();
      removeTree(root);
    }
  }

  const b = (k: keyof Rep['bulwark']) => median(reps.map((r) => r.bulwark[k] as number));
  const peer = (tool: 'restic' | 'borg', k: keyof PeerRep) => (PEERS ? median(reps.map((r) => r[tool]![k])) : NaN);
  const faster = (k: 'initial' | 'incremental' | 'restore' | 'restoreCold') => Math.min(peer('restic', k), peer('borg', k));
  const rows: [string, number, number, number, number, string][] = [
    ['initial backup', b('initial'), peer('restic', 'initial'), peer('borg', 'initial'), faster('initial'), '≤ 0.67'],
    ['incremental, hash-scan (1% changed)', b('scan'), peer('restic', 'incremental'), peer('borg', 'incremental'), faster('incremental'), '≤ 0.10'],
    ['incremental, valid bitmap (1% more changed)', b('bitmap'), peer('restic', 'incremental'), peer('borg', 'incremental'), faster('incremental'), '≤ 0.02'],
    ['restore (full image), right after the backups', b('restore'), peer('restic', 'restore'), peer('borg', 'restore'), faster('restore'), '≤ 0.67'],
    ['restore (full image), caches dropped first', b('restoreCold'), peer('restic', 'restoreCold'), peer('borg', 'restoreCold'), faster('restoreCold'), '≤ 0.67'],
  ];
  const lines = [
    `Volume benchmark: ${mib(SIZE)} image (half random, half text), 1% of 4 KiB blocks changed; medians of ${reps.length} run(s), wall seconds of each command.`,
    '',
    '| operation | Bulwark | restic | borg | ratio to faster peer | target |',
    '|---|---:|---:|---:|---:|---|',
    ...rows.map(([name, ours, restic, borg, best, target]) => `| ${name} | ${ours.toFixed(2)} | ${restic.toFixed(2)} | ${borg.toFixed(2)} | ${(ours / best).toFixed(3)} | ${target} |`),
    '',
    `hash-scan incremental: sent ${mib(b('scanSent'))} for ${mib(b('changed'))} changed = ${(b('scanSent') / b('changed')).toFixed(3)}× (target ≤ 1.5× + metadata); in-process ${b('scanIn').toFixed(2)} s`,
    `bitmap incremental: sent ${mib(b('bitmapSent'))} for ${mib(b('changed'))} changed = ${(b('bitmapSent') / b('changed')).toFixed(3)}×; in-process ${b('bitmapIn').toFixed(2)} s`,
    `point metadata (volume map): ${mib(b('metadata'))} (target ≤ 2 MiB); providers: ${reps[0].bulwark.provider.join(', ')}`,
    `peak RSS (target ≤ 300 MiB each): agent initial backup ${mib(b('rssBackup'))}, agent restore ${mib(b('rssRestore'))}, gateway ${mib(b('rssGateway'))}`,
    `CPU seconds (Bulwark: agent + gateway), initial backup: Bulwark ${b('cpuInitial').toFixed(2)}, restic ${peer('restic', 'cpuInitial').toFixed(2)}, borg ${peer('borg', 'cpuInitial').toFixed(2)}; `
      + `restore with caches dropped: Bulwark ${b('cpuRestoreCold').toFixed(2)}, restic ${peer('restic', 'cpuRestoreCold').toFixed(2)}, borg ${peer('borg', 'cpuRestoreCold').toFixed(2)}`,
  ];
  console.log(lines.join('\n'));
  fs.writeFileSync(path.join(DIR, 'results.md'), lines.join('\n') + '\n');
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
