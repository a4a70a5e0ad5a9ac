/**
 * Verification benchmark (issue 4). Run: `npx tsx test/bench/verify-bench.ts`.
 * 1. Metadata verify of a synthetic site catalog with 1,000,000 blobs in
 *    10,000 real pack files (PackWriter, tiny envelopes), 10 agents, 3 points
 *    per agent each referencing 90% of its blobs: median of 3, target ≤ 5 s.
 * 2. Full verify of ~1 GiB of real packs (1 MiB blobs) against sha256sum and
 *    b3sum over the same files (target ≥ 0.8 × their speed) and against
 *    `restic check --read-data` on a restic repo of the same source data
 *    (target ≤ 0.5 × its time). Data is generated from a seed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { encodePointHeader, merkleRoot } from '@bulwark/proto';
import { Catalog } from '../../gateway/dist/catalog/catalog.js';
import { PackStore } from '../../gateway/dist/store/pack-store.js';
import { verifyStore } from '../../gateway/dist/verify/verify.js';
import { ensurePeers, median, timed } from './peers.js';

const ROOT = process.env.BULWARK_BENCH_DIR ?? path.join(os.tmpdir(), 'bulwark-verify-bench');

/** Deterministic bytes: SHA-256 in counter mode from a seed. */
function seeded(seed: string, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let at = 0, i = 0; at < bytes; i++, at += 32) createHash('sha256').update(`${seed}:${i}`).digest().copy(out, at, 0, Math.min(32, bytes - at));
  return out;
}

async function buildStore(dir: string, agents: number, packsPerAgent: number, blobsPerPack: number, envelopeBytes: number, pointsPerAgent: number, blobSeed: (a: number, i: number) => Buffer) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // Bench files must stay removable: no immutable flag.
  const store = await PackStore.open(path.join(dir, 'store'), { supported: false, set: async () => false, clear: async () => false });
  const catalog = await Catalog.open(path.join(dir, 'catalog.db'));
  await catalog.db.exec('PRAGMA synchronous=OFF');
  let blobs = 0;
  for (let a = 0; a < agents; a++) {
    const agentId = `agent-${a}`;
    const ids: Buffer[] = [];
    for (let p = 0; p < packsPerAgent; p++) {
      const writer = store.openPack(agentId, { class: 'default', retainUntil: 30 * 86_400_000 });
      const batch = [];
      for (let b = 0; b < blobsPerPack; b++) {
        const id = createHash('sha256').update(`${a}/${p}/${b}`).digest();
        ids.push(id);
        batch.push({ id, envelope: blobSeed(a, p * blobsPerPack + b) });
      }
      await writer.append(batch);
      const sealed = await writer.seal();
      await catalog.recordPack(sealed, Date.now());
      blobs += batch.length;
    }
    ids.sort(Buffer.compare);
    await catalog.db.transaction(async () => {
      for (let k = 0; k < pointsPerAgent; k++) {
        const start = Math.floor((ids.length * k) / (pointsPerAgent * 10));
        const refs = Buffer.concat(ids.slice(start, start + Math.floor(ids.length * 0.9)));
        const header = encodePointHeader({ pointId: randomBytes(16), agentId, createdUnixMs: Date.now(), kind: 'files', manifestBlobId: refs.subarray(0, 32), merkleRoot: merkleRoot(refs), blobCount: refs.length / 32, logicalBytes: refs.length * 1000 });
        await catalog.db.run('INSERT INTO points(id, agent_id, created_ms, committed_ms, header, agent_signature, gateway_signature, refs, state, retain_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, \'ok\', ?)',
          [randomBytes(16), agentId, Date.now(), Date.now(), header, Buffer.alloc(64), Buffer.alloc(64), refs, 30 * 86_400_000]);
      }
    });
    console.error(`bench: agent ${a + 1}/${agents}: ${blobs} blobs so far`);
  }
  await catalog.db.exec('PRAGMA synchronous=FULL');
  return { store, catalog, blobs };
}

function dropCaches(): void { spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']); }

async function main(): Promise<void> {
  ensurePeers();
  if (spawnSync('sh', ['-c', 'command -v b3sum']).status !== 0) spawnSync('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends b3sum'], { stdio: 'inherit' });
  const haveB3 = spawnSync('sh', ['-c', 'command -v b3sum']).status === 0;
  const lines: string[] = ['### Verification', '', '| metric | Bulwark | peer | ratio | target | met |', '|---|---|---|---|---|---|'];

  // 1. Metadata verify at catalog scale.
  const tiny = Buffer.alloc(48, 7);
  const meta = await buildStore(path.join(ROOT, 'meta'), 10, 1000, 100, 48, 3, () => tiny);
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const report = await verifyStore(meta.catalog, meta.store, { full: false });
    if (report.findings.length) throw new Error(`bench store does not verify: ${JSON.stringify(report.findings.slice(0, 3))}`);
    runs.push(report.seconds);
    console.error(`bench: metadata verify run ${i + 1}: ${report.seconds.toFixed(2)} s (${report.packs} packs, ${report.blobs} blobs, ${report.points} points)`);
  }
  const metaSeconds = median(runs);
  lines.push(`| metadata verify, ${meta.blobs.toLocaleString('en')} blobs / 10,000 packs / 30 points (s) | ${metaSeconds.toFixed(2)} | – | – | ≤ 5 s | ${metaSeconds <= 5 ? 'yes' : 'NO'} |`);
  await meta.catalog.close();
  fs.rmSync(path.join(ROOT, 'meta'), { recursive: true, force: true });

  // 2. Full verify of ~1 GiB of packs.
  const MiB = 1048576;
  const data = await buildStore(path.join(ROOT, 'full'), 1, 64, 16, MiB, 1, (_a, i) => seeded(`blob-${i}`, MiB));
  const packFiles: string[] = [];
  for (const h of await data.store.listSealedPacks()) packFiles.push(data.store.packPath(h));
  const totalBytes = packFiles.reduce((s, f) => s + fs.statSync(f).size, 0);
  // Same source data as files, for restic.
  const src = path.join(ROOT, 'source');
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  for (let i = 0; i < 64; i++) fs.writeFileSync(path.join(src, `f${i}`), Buffer.concat(Array.from({ length: 16 }, (_, b) => seeded(`blob-${i * 16 + b}`, MiB))));
  const repo = path.join(ROOT, 'restic-repo');
  fs.rmSync(repo, { recursive: true, force: true });
  const env = { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench' };
  timed('restic', ['init'], { env });
  timed('restic', ['backup', '-q', src], { env });

  const result = { bulwark: [] as number[], sha: [] as number[], b3: [] as number[], restic: [] as number[] };
  for (let i = 0; i < 3; i++) {
    dropCaches();
    const r = await verifyStore(data.catalog, data.store, { full: true, apply: false });
    if (r.findings.length) throw new Error('full bench store does not verify');
    result.bulwark.push(r.seconds);
    dropCaches();
    result.sha.push(timed('sha256sum', packFiles).seconds);
    if (haveB3) { dropCaches(); result.b3.push(timed('b3sum', packFiles).seconds); }
    dropCaches();
    result.restic.push(timed('restic', ['check', '--read-data'], { env }).seconds);
    console.error(`bench: full run ${i + 1}: bulwark ${r.seconds.toFixed(2)} s, sha256sum ${result.sha[i].toFixed(2)} s, b3sum ${haveB3 ? result.b3[i].toFixed(2) : '–'} s, restic check --read-data ${result.restic[i].toFixed(2)} s`);
  }
  const mib = totalBytes / MiB;
  const speed = (s: number) => mib / s;
  const bw = median(result.bulwark);
  const sha = median(result.sha);
  lines.push(`| full verify, ${mib.toFixed(0)} MiB from disk (MiB/s) vs sha256sum | ${speed(bw).toFixed(0)} | ${speed(sha).toFixed(0)} | ${(sha / bw).toFixed(2)} | ≥ 0.8 × | ${sha / bw >= 0.8 ? 'yes' : 'NO'} |`);
  if (haveB3) {
    const b3 = median(result.b3);
    lines.push(`| full verify (MiB/s) vs b3sum | ${speed(bw).toFixed(0)} | ${speed(b3).toFixed(0)} | ${(b3 / bw).toFixed(2)} | ≥ 0.8 × | ${b3 / bw >= 0.8 ? 'yes' : 'NO'} |`);
  }
  const rc = median(result.restic);
  lines.push(`| full verify vs restic check --read-data (s) | ${bw.toFixed(2)} | ${rc.toFixed(2)} | ${(bw / rc).toFixed(2)} | ≤ 0.5 × | ${bw / rc <= 0.5 ? 'yes' : 'NO'} |`);
  await data.catalog.close();
  console.log(lines.join('\n'));
  fs.rmSync(ROOT, { recursive: true, force: true });
}

main().catch((err) => { console.error(err); process.exit(1); });
