/**
 * Volume backups (issue 3): every point restores exactly after many rounds
 * of random writes; an untrustworthy bitmap forces a scan and the result is
 * still exact; zero blocks and holes are never stored; a kill -9 mid-backup
 * leaves the previous points intact and the next run correct.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, backupVolume, createSite, enrollAgent, restoreVolume, runOk, tempDir, type Site, type VolumeJson } from '../support/cluster.js';
import { BLOCK, FastRng, bitmapFile, randomStream, randomWrites, sha256File, textBytes, writeAt } from '../support/volume-images.js';

/** A sparse image: holes, explicit zero ranges, random and text-like data. */
function makeImage(file: string, size: number, seed: string): void {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const rng = new FastRng(size);
  const random = randomStream(seed);
  for (let at = 0; at < size; at += 4 * 1024 * 1024) {
    const kind = rng.int(4);
    const len = Math.min(3 * 1024 * 1024, size - at);
    if (kind === 0) continue; // hole
    writeAt(file, kind === 1 ? random(len) : kind === 2 ? textBytes(rng, len) : Buffer.alloc(len), at);
  }
}

describe('volume backup', () => {
  let site: Site;
  let state: string;
  const work = tempDir('volume');

  beforeAll(async () => {
    site = await createSite();
    state = await enrollAgent(site);
  });
  afterAll(async () => { await site.gateway.stop(); fs.rmSync(work, { recursive: true, force: true }); });

  it('restores every point of many rounds of random writes exactly', async () => {
    const image = path.join(work, 'rounds.img');
    makeImage(image, 24 * 1024 * 1024 + 3 * BLOCK + 123, 'rounds');
    const rng = new FastRng(7);
    const points: { point: string; hash: string }[] = [];
    const first = await backupVolume(state, image);
    expect(first.provider).toBe('full-read');
    expect(first.crashConsistent).toBe(false);
    points.push({ point: first.point, hash: sha256File(image) });
    for (let round = 0; round < 5; round++) {
      randomWrites(image, rng, 5 + rng.int(40), round % 2 ? 300_000 : 9000, `round-${round}`);
      const r = await backupVolume(state, image);
      expect(r.provider).toBe('hash-scan');
      expect(r.bytesSent).toBeLessThan(r.changedBytes * 1.5 + 200_000);
      points.push({ point: r.point, hash: sha256File(image) });
    }
    for (const [i, p] of points.entries()) {
      const target = path.join(work, `rounds-restored-${i}.img`);
      const restored = await restoreVolume(state, p.point, target);
      expect(restored.verified).toBe(true);
      expect(sha256File(target), `point ${i}`).toBe(p.hash);
      fs.rmSync(target);
    }
    const { stdout } = await runOk(AGENT_CLI, ['points', '--state', state]);
    expect(stdout).toMatch(/volume .*hash-scan\s+crash-inconsistent/);
  });

  it('restores exactly when a scan has more jobs than its workers hold at once', async () => {
    // 384 MiB: six 64 MiB jobs, more than two workers with two jobs each, so later jobs wait in a worker's queue.
    const size = 384 * 1024 * 1024;
    const image = path.join(work, 'many-jobs.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, size);
    const random = randomStream('many-jobs');
    for (let at = 0; at < size; at += 32 * 1024 * 1024) writeAt(image, random(1024 * 1024), at + 7 * 1024 * 1024);
    const first = await backupVolume(state, image);
    expect(first.provider).toBe('full-read');
    const firstHash = sha256File(image);
    randomWrites(image, new FastRng(384), 60, 200_000, 'many-jobs-writes');
    const second = await backupVolume(state, image);
    expect(second.provider).toBe('hash-scan');
    expect(second.bytesRead).toBe(size);
    for (const [point, hash] of [[first.point, firstHash], [second.point, sha256File(image)]]) {
      const target = path.join(work, 'many-jobs-restored.img');
      expect((await restoreVolume(state, point, target)).verified).toBe(true);
      expect(sha256File(target)).toBe(hash);
      fs.rmSync(target);
    }
  });

  it('trusts a bitmap only when it continues the previous point, and falls back to a scan otherwise', async () => {
    const image = path.join(work, 'cbt.img');
    const size = 16 * 1024 * 1024;
    makeImage(image, size, 'cbt');
    const bitmap = path.join(work, 'cbt.bitmap');
    const rng = new FastRng(11);
    const check = async (r: VolumeJson) => {
      const target = path.join(work, 'cbt-restored.img');
      fs.rmSync(target, { force: true });
      await restoreVolume(state, r.point, target);
      expect(sha256File(target)).toBe(sha256File(image));
    };
    const gen = 0x1234_5678_9abc_def0n;
    fs.writeFileSync(bitmap, bitmapFile({ sizeBytes: size, generation: gen, sequence: 1n, dirty: [] }));
    const base = await backupVolume(state, image, bitmap);
    expect(base.provider).toBe('full-read');

    let dirty = randomWrites(image, rng, 30, 50_000, 'cbt-1');
    fs.writeFileSync(bitmap, bitmapFile({ sizeBytes: size, generation: gen, sequence: 2n, dirty }));
    const trusted = await backupVolume(state, image, bitmap);
    expect(trusted.provider).toBe('cbt-bitmap');
    expect(trusted.bytesRead).toBe(dirty.size * BLOCK);
    await check(trusted);

    // The tracker restarted: a new generation. Its bits may miss writes made while it was down.
    randomWrites(image, rng, 30, 50_000, 'cbt-2');
    const missed = randomWrites(image, rng, 10, 20_000, 'cbt-2-untracked');
    dirty = randomWrites(image, rng, 10, 20_000, 'cbt-2-tracked');
    void missed;
    const gen2 = 0x0fed_cba9_8765_4321n;
    fs.writeFileSync(bitmap, bitmapFile({ sizeBytes: size, generation: gen2, sequence: 1n, dirty }));
    const restarted = await backupVolume(state, image, bitmap);
    expect(restarted.provider).toBe('hash-scan');
    expect(restarted.declined.join(' ')).toMatch(/generation/);
    await check(restarted);

    // The next dump of the new generation continues from the scan point and is trusted again.
    dirty = randomWrites(image, rng, 20, 30_000, 'cbt-3');
    fs.writeFileSync(bitmap, bitmapFile({ sizeBytes: size, generation: gen2, sequence: 2n, dirty }));
    const again = await backupVolume(state, image, bitmap);
    expect(again.provider).toBe('cbt-bitmap');
    await check(again);

    // A skipped dump (sequence jump), a wrong checksum, a wrong size: each forces a scan.
    const bad: [string, Buffer][] = [];
    dirty = randomWrites(image, rng, 20, 30_000, 'cbt-4');
    bad.push(['dump 4', bitmapFile({ sizeBytes: size, generation: gen2, sequence: 4n, dirty })]);
    const corrupt = bitmapFile({ sizeBytes: size, generation: gen2, sequence: 3n, dirty });
    corrupt[70] ^= 1;
    bad.push(['checksum', corrupt]);
    bad.push(['bytes', bitmapFile({ sizeBytes: size + BLOCK, generation: gen2, sequence: 3n, dirty })]);
    for (const [why, file] of bad) {
      randomWrites(image, rng, 5, 10_000, `cbt-bad-${why}`);
      fs.writeFileSync(bitmap, file);
      const r = await backupVolume(state, image, bitmap);
      expect(r.provider, why).toBe('hash-scan');
      expect(r.declined.join(' '), why).toMatch(new RegExp(why));
      await check(r);
    }
  });

  it('stores no zero blocks of an image with holes and zero ranges', async () => {
    const image = path.join(work, 'sparse.img');
    const size = 128 * 1024 * 1024;
    fs.writeFileSync(image, '');
    fs.truncateSync(image, size);
    const random = randomStream('sparse');
    let data = 0;
    for (let at = 0; at < size; at += 16 * 1024 * 1024) { writeAt(image, random(1024 * 1024), at); data += 1024 * 1024; }
    writeAt(image, Buffer.alloc(8 * 1024 * 1024), 40 * 1024 * 1024); // explicit zeros, not a hole
    writeAt(image, Buffer.concat([Buffer.alloc(BLOCK), random(100), Buffer.alloc(BLOCK * 3)]), 100 * 1024 * 1024 + 8192);
    data += BLOCK; // the 100 bytes sit in one block
    const r = await backupVolume(state, image);
    expect(r.dataBytes).toBe(data);
    expect(r.changedBytes).toBe(data);
    expect(r.bytesSent).toBeLessThan(data * 1.05 + 100_000);
    const target = path.join(work, 'sparse-restored.img');
    await restoreVolume(state, r.point, target);
    expect(sha256File(target)).toBe(sha256File(image));
    expect(fs.statSync(target).blocks * 512).toBeLessThan(data * 1.1 + 1024 * 1024);
  });

  it('survives a kill -9 mid-backup: earlier points intact, the next run correct', async () => {
    const image = path.join(work, 'kill.img');
    const size = 96 * 1024 * 1024;
    fs.writeFileSync(image, randomStream('kill')(size));
    const started = Date.now();
    const first = await backupVolume(state, image);
    const fullMs = Date.now() - started;
    const firstHash = sha256File(image);
    writeAt(image, randomStream('kill-2')(80 * 1024 * 1024), 16 * 1024 * 1024);
    const child = spawn(process.execPath, [AGENT_CLI, 'backup', '--state', state, '--json', '--volume', image], { stdio: 'ignore' });
    let running = true;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => { running = false; r(code); }));
    // Killed once the gateway is writing its first pack of the changed data (80 MiB make five): mid-upload, whatever
    // this machine's speed. A fixed delay (half a full read) let a fast run finish first.
    const incoming = path.join(site.dir, 'store', 'incoming');
    const writingPack = () => fs.readdirSync(incoming).some((n) => (fs.statSync(path.join(incoming, n), { throwIfNoEntry: false })?.size ?? 0) > 1024 * 1024);
    const deadline = Date.now() + Math.max(30_000, fullMs * 20);
    while (running && !writingPack() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(running, 'the backup was still under way when killed').toBe(true);
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    const target = path.join(work, 'kill-restored-1.img');
    await restoreVolume(state, first.point, target);
    expect(sha256File(target)).toBe(firstHash);
    fs.rmSync(target);
    const next = await backupVolume(state, image);
    expect(next.provider).toBe('hash-scan');
    await restoreVolume(state, next.point, target);
    expect(sha256File(target)).toBe(sha256File(image));
    fs.rmSync(target);
    expect(fs.readdirSync(work).filter((n) => n.includes('bulwark-snap'))).toEqual([]);
  });
});
