/**
 * Point-in-time reads of volumes (issue 3) on real filesystems and devices:
 * an image on XFS is read from a reflink copy, so writes made while the
 * backup runs are not in its point; a raw block device (a loop device) is
 * backed up, incrementally and restored exactly, and its points say they
 * are crash-inconsistent. The LVM snapshot is exercised in the kernel-guard
 * guest, the only machine here with device-mapper.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, backupVolume, createSite, enrollAgent, restoreVolume, tempDir, type Site, type VolumeJson } from '../support/cluster.js';
import { BLOCK, FastRng, randomStream, randomWrites, sha256File, writeAt } from '../support/volume-images.js';

const MiB = 1024 * 1024;

describe('volume point-in-time reads', () => {
  let site: Site;
  let state: string;
  const work = tempDir('volume-snapshot');
  const xfs = path.join(work, 'xfs');
  const loops: string[] = [];

  beforeAll(async () => {
    site = await createSite();
    state = await enrollAgent(site);
    // XFS needs at least 300 MiB; the file is sparse.
    const fsImage = path.join(work, 'xfs.fs');
    fs.writeFileSync(fsImage, '');
    fs.truncateSync(fsImage, 400 * MiB);
    execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', fsImage]);
    fs.mkdirSync(xfs);
    execFileSync('mount', ['-o', 'loop', fsImage, xfs]);
  });
  afterAll(async () => {
    await site.gateway.stop();
    try { execFileSync('umount', [xfs]); } catch { /* not mounted */ }
    for (const loop of loops) try { execFileSync('losetup', ['-d', loop]); } catch { /* already detached */ }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('reads an image on XFS from a reflink copy: writes during the backup are not in the point', async () => {
    const image = path.join(xfs, 'disk.img');
    const size = 128 * MiB;
    fs.writeFileSync(image, randomStream('before')(size));
    const before = sha256File(image);
    // A copy left by an agent that was killed: the next backup removes it.
    const stale = path.join(xfs, '.disk.img.bulwark-snap-999999999');
    fs.writeFileSync(stale, 'left by a killed agent');

    const child = spawn(process.execPath, [AGENT_CLI, 'backup', '--state', state, '--json', '--volume', image], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const snapshot = path.join(xfs, `.disk.img.bulwark-snap-${child.pid}`);
    // Once the copy is whole, stop the agent, overwrite the whole image, let it go on.
    const deadline = Date.now() + 30_000;
    while (!(fs.existsSync(snapshot) && fs.statSync(snapshot).size === size)) {
      if (Date.now() > deadline) throw new Error('the agent never made its reflink copy');
      await new Promise((r) => setTimeout(r, 2));
    }
    child.kill('SIGSTOP');
    writeAt(image, randomStream('during')(size), 0);
    child.kill('SIGCONT');
    expect(await exited).toBe(0);
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as VolumeJson;

    expect(report.snapshot).toBe('reflink');
    expect(report.crashConsistent).toBe(true);
    expect(fs.existsSync(snapshot)).toBe(false);
    expect(fs.existsSync(stale)).toBe(false);
    const target = path.join(work, 'reflink-restored.img');
    expect((await restoreVolume(state, report.point, target)).verified).toBe(true);
    expect(sha256File(target)).toBe(before);
    expect(sha256File(target)).not.toBe(sha256File(image));
  });

  it('backs up a raw block device and restores each point exactly; its points are crash-inconsistent', async () => {
    const backing = path.join(work, 'device.img');
    // Not a whole number of 4 KiB blocks: the last block is short.
    const size = 48 * MiB + 3 * 512;
    fs.writeFileSync(backing, randomStream('device')(size));
    const device = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
    loops.push(device);

    const points: { report: VolumeJson; hash: string }[] = [];
    const first = await backupVolume(state, device);
    expect(first.provider).toBe('full-read');
    expect(first.snapshot).toBe('none');
    expect(first.crashConsistent).toBe(false);
    expect(first.warnings.join('\n')).toContain('is not an LVM logical volume');
    points.push({ report: first, hash: sha256File(device) });

    const rng = new FastRng(11);
    for (let round = 0; round < 3; round++) {
      const dirty = randomWrites(device, rng, 20, 200_000, `device-${round}`, size);
      writeAt(device, Buffer.alloc(BLOCK, 0xee).subarray(0, 3 * 512), size - 3 * 512);
      const r = await backupVolume(state, device);
      expect(r.provider).toBe('hash-scan');
      expect(r.changedBytes).toBeLessThanOrEqual((dirty.size + 1) * BLOCK);
      points.push({ report: r, hash: sha256File(device) });
    }
    for (const [i, p] of points.entries()) {
      const target = path.join(work, `device-restored-${i}.img`);
      expect((await restoreVolume(state, p.report.point, target)).sizeBytes).toBe(size);
      expect(fs.statSync(target).size).toBe(size);
      expect(sha256File(target), `point ${i}`).toBe(p.hash);
      fs.rmSync(target);
    }
  });
});
