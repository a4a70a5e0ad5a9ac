/**
 * Backbone benchmark (issue 2): 20,000 files, ~1 GiB, mixed compressible and
 * incompressible, generated from a seed. Bulwark (real gateway process +
 * agent CLI on this machine) against Debian's restic and borg on the same
 * data in the same run: initial backup, re-run with nothing changed,
 * restore, peak RSS, and the CPU time the initial backup and the cold
 * restore cost (Bulwark's: agent and gateway together). Prints a markdown
 * table of medians with ratios.
 *
 *   npx tsx test/bench/files-bench.ts        (BENCH_RUNS=3, BENCH_DIR=/tmp/bulwark-bench)
 *
 * Restored trees are not deleted until every run is done (they are moved
 * aside, ~15 GB for three runs): on ext4 without a journal (this machine's
 * root) a file created within a minute of 40,000 deletions waits while the
 * allocator skips their inodes (recently_deleted), and the next tool to
 * restore took 3.9 s where 2.2 s was its time (40,000 deleted first: 2.19 s,
 * the same restore right after them: 3.86 s, sys 0.6 → 4.2 s).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../support/trees.js';
import { AGENT_CLI, GATEWAY_CLI, GatewayProcess, newToken, runOk } from '../support/cluster.js';
import { alsoCountingCpuOf, dropCaches, ensurePeers, freshDir, markdownTable, median, peakRss, removeTree, settle, timed, warm, type Row } from './peers.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROOT = process.env.BENCH_DIR ?? '/tmp/bulwark-bench';
const FILES = Number(process.env.BENCH_FILES ?? 20_000);
const DATA = path.join(ROOT, 'data');
/** Where restored trees wait, out of the way, until the bench is over. */
const RETIRED = path.join(ROOT, 'retired');

/** A tool's run is over: its store goes (a few hundred files), its restored trees are moved aside. */
function retire(dir: string, name: string): void {
  fs.mkdirSync(RETIRED, { recursive: true });
  for (const entry of fs.readdirSync(dir)) if (entry.startsWith('restored')) fs.renameSync(path.join(dir, entry), path.join(RETIRED, `${name}-${entry}`));
  freshDir(dir);
}
const PASSWORD = 'bench password';

function generate(): number {
  const marker = path.join(DATA, '.complete');
  if (fs.existsSync(marker)) return Number(fs.readFileSync(marker, 'utf8'));
  freshDir(DATA);
  const rng = new Rng(20_000);
  let bytes = 0;
  const large = Math.round(FILES / 400);
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(DATA, `d${i % 100}`, `e${Math.floor(i / 100) % 20}`);
    if (i < 2000) fs.mkdirSync(dir, { recursive: true });
    const size = i < large ? 4 * 1024 * 1024 + rng.int(4 * 1024 * 1024) : 1 + rng.int(56 * 1024);
    const data = i % 2 === 0 ? rng.text(size) : rng.bytes(size);
    fs.writeFileSync(path.join(dir, `f${i}.${i % 2 ? 'bin' : 'txt'}`), data);
    bytes += size;
  }
  fs.writeFileSync(marker, String(bytes));
  return bytes;
}

/**
 * restoreCold: the same restore again, after dropping the page cache (peers.ts dropCaches).
 * cpu…: CPU seconds of the initial backup and of that restore (Bulwark: agent and gateway together).
 */
interface Phases { initial: number; rerun: number; restore: number; restoreCold: number; rssBackup: number; rssRestore: number; rssGateway?: number; cpuInitial: number; cpuRestoreCold: number }

async function bulwark(run: number): Promise<Phases> {
  const dir = freshDir(path.join(ROOT, `bulwark-${run}`));
  fs.writeFileSync(path.join(dir, 'pw'), PASSWORD);
  await runOk(GATEWAY_CLI, ['init', '--dir', path.join(dir, 'site'), '--restore-password-file', path.join(dir, 'pw')]);
  const gateway = new GatewayProcess(path.join(dir, 'site'));
  await gateway.start(0);
  try {
    const state = path.join(dir, 'agent');
    await runOk(AGENT_CLI, ['enroll', '--state', state, '--gateway', gateway.url, '--token', await newToken(gateway.dir)]);
    // Run as users run it (`npx bulwark-agent`): the executable, with the runtime flags on its first line.
    const agent = (args: string[]) => alsoCountingCpuOf(gateway.proc.pid!, () => timed(AGENT_CLI, args));
    const initial = agent(['backup', '--state', state, '--json', DATA]);
    const rerun = agent(['backup', '--state', state, '--json', DATA]);
    const restore = agent(['restore', '--state', state, 'latest', '--to', path.join(dir, 'restored'), '--json']);
    const cold = dropCaches() ? agent(['restore', '--state', state, 'latest', '--to', path.join(dir, 'restored-cold'), '--json']) : undefined;
    return {
      initial: initial.seconds, rerun: rerun.seconds, restore: restore.seconds, restoreCold: cold?.seconds ?? NaN,
      rssBackup: Math.max(initial.peakRssBytes, rerun.peakRssBytes), rssRestore: restore.peakRssBytes, rssGateway: peakRss(gateway.proc.pid!),
      cpuInitial: initial.cpuSeconds, cpuRestoreCold: cold?.cpuSeconds ?? NaN,
    };
  } finally {
    await gateway.stop();
  }
}

function restic(run: number): Phases {
  const dir = freshDir(path.join(ROOT, `restic-${run}`));
  const env = { ...process.env, RESTIC_PASSWORD: PASSWORD, RESTIC_REPOSITORY: path.join(dir, 'repo'), RESTIC_CACHE_DIR: path.join(dir, 'cache') };
  timed('restic', ['init', '--quiet'], { env });
  const initial = timed('restic', ['backup', '--quiet', DATA], { env });
  const rerun = timed('restic', ['backup', '--quiet', DATA], { env });
  const restore = timed('restic', ['restore', 'latest', '--quiet', '--target', path.join(dir, 'restored')], { env });
  const cold = dropCaches() ? timed('restic', ['restore', 'latest', '--quiet', '--target', path.join(dir, 'restored-cold')], { env }) : undefined;
  return { initial: initial.seconds, rerun: rerun.seconds, restore: restore.seconds, restoreCold: cold?.seconds ?? NaN, rssBackup: initial.peakRssBytes, rssRestore: restore.peakRssBytes, cpuInitial: initial.cpuSeconds, cpuRestoreCold: cold?.cpuSeconds ?? NaN };
}

function borg(run: number): Phases {
  const dir = freshDir(path.join(ROOT, `borg-${run}`));
  const env = { ...process.env, BORG_PASSPHRASE: PASSWORD, BORG_REPO: path.join(dir, 'repo'), BORG_BASE_DIR: dir, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  timed('borg', ['init', '--encryption=repokey-blake2'], { env });
  const initial = timed('borg', ['create', '--compression', 'lz4', '::first', DATA], { env });
  const rerun = timed('borg', ['create', '--compression', 'lz4', '::second', DATA], { env });
  const target = freshDir(path.join(dir, 'restored'));
  const restore = timed('borg', ['extract', '::second'], { env, cwd: target });
  const cold = dropCaches() ? timed('borg', ['extract', '::second'], { env, cwd: freshDir(path.join(dir, 'restored-cold')) }) : undefined;
  return { initial: initial.seconds, rerun: rerun.seconds, restore: restore.seconds, restoreCold: cold?.seconds ?? NaN, rssBackup: initial.peakRssBytes, rssRestore: restore.peakRssBytes, cpuInitial: initial.cpuSeconds, cpuRestoreCold: cold?.cpuSeconds ?? NaN };
}

async function main(): Promise<void> {
  ensurePeers();
  const bytes = generate();
  console.error(`bench: ${FILES} files, ${(bytes / 1048576).toFixed(0)} MiB in ${DATA}; ${RUNS} runs each`);
  if (fs.existsSync(RETIRED)) {
    console.error('bench: deleting the restored trees a stopped run left, then a minute for ext4 to let their inodes go');
    removeTree(RETIRED);
    settle();
    await new Promise((resolve) => setTimeout(resolve, 61_000));
  }
  const results: Record<'bulwark' | 'restic' | 'borg', Phases[]> = { bulwark: [], restic: [], borg: [] };
  const tools = { bulwark, restic: async (run: number) => restic(run), borg: async (run: number) => borg(run) };
  const order = Object.keys(tools) as (keyof typeof tools)[];
  for (let run = 0; run < RUNS; run++) {
    // The order rotates, so no tool is always the one that runs right after the last run's clean-up.
    for (let k = 0; k < order.length; k++) {
      const tool = order[(run + k) % order.length];
      warm(DATA);
      results[tool].push(await tools[tool](run));
      console.error(`bench: run ${run + 1}: ${tool} ${JSON.stringify(results[tool][run])}`);
    }
    for (const tool of order) retire(path.join(ROOT, `${tool}-${run}`), `${tool}-${run}`);
  }
  const m = (tool: keyof typeof results, key: keyof Phases) => median(results[tool].map((p) => p[key] ?? 0));
  const rows: Row[] = [
    { metric: 'initial backup', bulwark: m('bulwark', 'initial'), restic: m('restic', 'initial'), borg: m('borg', 'initial'), unit: 's', target: { ratio: 0.67, of: 'faster-peer' } },
    { metric: 're-run, nothing changed', bulwark: m('bulwark', 'rerun'), restic: m('restic', 'rerun'), borg: m('borg', 'rerun'), unit: 's', target: { ratio: 0.5, of: 'faster-peer' } },
    { metric: 'restore, right after the backups', bulwark: m('bulwark', 'restore'), restic: m('restic', 'restore'), borg: m('borg', 'restore'), unit: 's', target: { ratio: 0.67, of: 'faster-peer' } },
    { metric: 'restore, caches dropped first', bulwark: m('bulwark', 'restoreCold'), restic: m('restic', 'restoreCold'), borg: m('borg', 'restoreCold'), unit: 's', target: { ratio: 0.67, of: 'faster-peer' } },
    { metric: 'peak RSS, agent backup', bulwark: m('bulwark', 'rssBackup'), restic: m('restic', 'rssBackup'), borg: m('borg', 'rssBackup'), unit: 'MiB', target: { max: 300 * 1048576 } },
    { metric: 'peak RSS, agent restore', bulwark: m('bulwark', 'rssRestore'), restic: m('restic', 'rssRestore'), borg: m('borg', 'rssRestore'), unit: 'MiB', target: { max: 300 * 1048576 } },
    { metric: 'peak RSS, gateway', bulwark: m('bulwark', 'rssGateway'), unit: 'MiB', target: { max: 300 * 1048576 } },
    { metric: 'CPU time, initial backup (Bulwark: agent + gateway)', bulwark: m('bulwark', 'cpuInitial'), restic: m('restic', 'cpuInitial'), borg: m('borg', 'cpuInitial'), unit: 's' },
    { metric: 'CPU time, restore with caches dropped', bulwark: m('bulwark', 'cpuRestoreCold'), restic: m('restic', 'cpuRestoreCold'), borg: m('borg', 'cpuRestoreCold'), unit: 's' },
  ];
  console.log(markdownTable(`File trees: ${FILES} files, ${(bytes / 1048576).toFixed(0)} MiB (median of ${RUNS})`, rows));
  removeTree(RETIRED);
}

main().catch((err) => { console.error(err); process.exit(1); });
