/**
 * Must-hold 1: a tree with empty files, large files, symlinks, odd names and
 * deep paths restores byte-identical, with modes, mtimes, symlinks and hard
 * links.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, backup, createSite, enrollAgent, runOk, run, tempDir, type Site } from '../support/cluster.js';
import { Rng, digestTree } from '../support/trees.js';

const DEEP = Array.from({ length: 40 }, (_, i) => `level-${i}-${'d'.repeat(20)}`).join('/');

function makeTree(root: string): void {
  const rng = new Rng(1);
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'empty'), '');
  fs.writeFileSync(path.join(root, 'small.txt'), 'hello\n');
  fs.writeFileSync(path.join(root, 'large-random.bin'), rng.bytes(9 * 1024 * 1024 + 17));
  fs.writeFileSync(path.join(root, 'large-text.log'), rng.text(6 * 1024 * 1024 + 3));
  fs.writeFileSync(path.join(root, 'dup-a'), Buffer.alloc(300_000, 7));
  fs.writeFileSync(path.join(root, 'dup-b'), Buffer.alloc(300_000, 7));
  fs.symlinkSync('small.txt', path.join(root, 'link-to-small'));
  fs.symlinkSync('/nonexistent/target', path.join(root, 'dangling'));
  fs.writeFileSync(path.join(root, 'spaces and $pecial ch@rs ✓'), 'odd\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(root + '/'), Buffer.from([0x6e, 0xff, 0xfe, 0x0a, 0x61])]), 'not utf-8 and a newline in the name');
  const deep = path.join(root, DEEP);
  fs.mkdirSync(deep, { recursive: true });
  fs.writeFileSync(path.join(deep, 'bottom.txt'), 'deep\n');
  fs.mkdirSync(path.join(root, 'empty-dir'));
  fs.writeFileSync(path.join(root, 'exec.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'private'), 'secret-ish', { mode: 0o600 });
  fs.chmodSync(path.join(root, 'empty-dir'), 0o750);
  fs.utimesSync(path.join(root, 'small.txt'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(root, `many-${i}.dat`), rng.bytes(rng.int(5000)));
  // Hard links: a large file under three names in three directories, a small one (chunked in a group) under two.
  fs.mkdirSync(path.join(root, 'links'));
  fs.writeFileSync(path.join(root, 'links', 'original.bin'), rng.bytes(5 * 1024 * 1024 + 5));
  fs.linkSync(path.join(root, 'links', 'original.bin'), path.join(root, 'links', 'second-name.bin'));
  fs.linkSync(path.join(root, 'links', 'original.bin'), path.join(deep, 'third-name.bin'));
  fs.writeFileSync(path.join(root, 'links', 'small'), 'tiny and linked\n');
  fs.linkSync(path.join(root, 'links', 'small'), path.join(root, 'small-elsewhere'));
}

/** Bytes of the distinct regular files under root: what a backup that reads each inode once reads. */
function distinctFileBytes(root: string): number {
  const seen = new Set<string>();
  let bytes = 0;
  // Names as bytes: the tree holds one that is not UTF-8.
  const walk = (dir: Buffer) => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = fs.lstatSync(full);
      if (st.isDirectory()) { walk(full); continue; }
      if (!st.isFile()) continue;
      if (seen.has(`${st.dev}:${st.ino}`)) continue;
      seen.add(`${st.dev}:${st.ino}`);
      bytes += st.size;
    }
  };
  walk(Buffer.from(root));
  return bytes;
}

function inodeOf(file: string): { ino: number; nlink: number } {
  const st = fs.statSync(file);
  return { ino: st.ino, nlink: st.nlink };
}

describe('round trip', () => {
  let site: Site;
  let state: string;
  const work = tempDir('roundtrip');
  const source = path.join(work, 'source');

  beforeAll(async () => {
    makeTree(source);
    site = await createSite();
    state = await enrollAgent(site);
  });
  afterAll(async () => { await site.gateway.stop(); });

  it('restores every kind of entry byte-identically', async () => {
    const result = await backup(state, [source]);
    expect(result.point).toMatch(/^[0-9a-f]{32}$/);
    expect(result.bytesRead).toBeGreaterThan(15 * 1024 * 1024);
    // Each hard-linked file is read once.
    expect(result.bytesRead).toBe(distinctFileBytes(source));
    const target = path.join(work, 'restored');
    const restored = await runOk(AGENT_CLI, ['restore', '--state', state, result.point, '--to', target, '--json']);
    expect(JSON.parse(restored.stdout).verified).toBe(true);
    expect(digestTree(path.join(target, 'source'))).toEqual(digestTree(source));
    expectLinksKept(path.join(target, 'source'));
  });

  function expectLinksKept(restored: string): void {
    const original = inodeOf(path.join(restored, 'links', 'original.bin'));
    expect(original.nlink).toBe(3);
    expect(inodeOf(path.join(restored, 'links', 'second-name.bin'))).toEqual(original);
    expect(inodeOf(path.join(restored, DEEP, 'third-name.bin'))).toEqual(original);
    const small = inodeOf(path.join(restored, 'links', 'small'));
    expect(small.nlink).toBe(2);
    expect(inodeOf(path.join(restored, 'small-elsewhere'))).toEqual(small);
  }

  it('skips unchanged files on the next run and sends almost nothing', async () => {
    const again = await backup(state, [source]);
    expect(again.bytesRead).toBe(0);
    expect(again.unchangedFiles).toBe(again.files);
    expect(again.bytesSent).toBeLessThan(100_000);
    fs.appendFileSync(path.join(source, 'small.txt'), 'changed\n');
    const changed = await backup(state, [source]);
    expect(changed.bytesRead).toBe(fs.statSync(path.join(source, 'small.txt')).size);
    const target = path.join(work, 'restored-2');
    await runOk(AGENT_CLI, ['restore', '--state', state, 'latest', '--to', target]);
    expect(digestTree(path.join(target, 'source'))).toEqual(digestTree(source));
    expectLinksKept(path.join(target, 'source'));
  });

  it('refuses to restore over existing files', async () => {
    const target = path.join(work, 'restored');
    const result = await run(AGENT_CLI, ['restore', '--state', state, 'latest', '--to', target]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/already exists/);
  });

  it('says in one line why it cannot restore where the system refuses, without a stack trace', async () => {
    const notADir = path.join(work, 'plain-file');
    fs.writeFileSync(notADir, 'x');
    const result = await run(AGENT_CLI, ['restore', '--state', state, 'latest', '--to', path.join(notADir, 'inside')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^bulwark-agent: ENOTDIR: not a directory, mkdir '.*plain-file\/inside'\n$/);
  });

  it('stores a directory whose listing exceeds a frame in parts, and restores it', async () => {
    // 48,000 entries with random 200-byte names and distinct contents: a tree whose envelope, even
    // compressed, is over the 8 MiB frame limit.
    const wide = path.join(work, 'wide');
    fs.mkdirSync(path.join(wide, 'dir'), { recursive: true });
    const rng = new Rng(5);
    for (let i = 0; i < 48_000; i++) fs.writeFileSync(path.join(wide, 'dir', `${i}-${rng.bytes(150).toString('base64url').slice(0, 190)}`), String(i));
    const first = await backup(state, [wide]);
    expect(first.files).toBe(48_000);
    const again = await backup(state, [wide]);
    expect(again.unchangedFiles).toBe(48_000);
    const target = path.join(work, 'restored-wide');
    await runOk(AGENT_CLI, ['restore', '--state', state, again.point, '--to', target]);
    expect(digestTree(path.join(target, 'wide'))).toEqual(digestTree(wide));
  }, 120_000);

  it('with --sparse leaves runs of zeros as holes and restores the same bytes; without it allocates every block', async () => {
    const MiB = 1024 * 1024;
    const dir = path.join(work, 'sparse');
    fs.mkdirSync(dir);
    const rng = new Rng(6);
    const image = path.join(dir, 'disk.img');
    fs.writeFileSync(image, Buffer.concat([rng.bytes(3 * MiB + 5), Buffer.alloc(24 * MiB), rng.bytes(2 * MiB), Buffer.alloc(16 * MiB)]));
    fs.writeFileSync(path.join(dir, 'zeros-only'), Buffer.alloc(MiB));
    fs.writeFileSync(path.join(dir, 'few-zeros'), Buffer.alloc(10_000));
    const point = (await backup(state, [dir])).point;
    const allocated = (file: string) => fs.statSync(file).blocks * 512;

    const sparse = path.join(work, 'restored-sparse');
    const report = JSON.parse((await runOk(AGENT_CLI, ['restore', '--state', state, point, '--to', sparse, '--sparse', '--json'])).stdout) as { holeBytes: number };
    expect(digestTree(path.join(sparse, 'sparse'))).toEqual(digestTree(dir));
    // Chunks of 256 KiB to 4 MiB: all of each zero run is hole but a chunk at either end of it.
    expect(report.holeBytes).toBeGreaterThanOrEqual(28 * MiB + MiB);
    expect(allocated(path.join(sparse, 'sparse', 'disk.img'))).toBeLessThanOrEqual(fs.statSync(image).size - 28 * MiB);
    expect(allocated(path.join(sparse, 'sparse', 'zeros-only'))).toBe(0);
    expect(allocated(path.join(sparse, 'sparse', 'few-zeros'))).toBeGreaterThan(0);

    const full = path.join(work, 'restored-not-sparse');
    const plain = JSON.parse((await runOk(AGENT_CLI, ['restore', '--state', state, point, '--to', full, '--json'])).stdout) as { holeBytes: number };
    expect(plain.holeBytes).toBe(0);
    expect(digestTree(path.join(full, 'sparse'))).toEqual(digestTree(dir));
    expect(allocated(path.join(full, 'sparse', 'disk.img'))).toBeGreaterThanOrEqual(fs.statSync(image).size);
    expect(allocated(path.join(full, 'sparse', 'zeros-only'))).toBeGreaterThanOrEqual(MiB);
  });

  it('restores files that share content when their writer threads differ', async () => {
    // Consecutive files go to one writer until they fill a read (8 MiB): a and b land on different writers, and so do
    // b and its copy d, so the reads of b's blobs carry blobs both writers need.
    const shared = path.join(work, 'shared');
    fs.mkdirSync(shared);
    const rng = new Rng(5);
    const a = rng.bytes(9 * 1024 * 1024);
    const b = rng.bytes(9 * 1024 * 1024);
    for (const [name, data] of [['a.bin', a], ['b.bin', b], ['c.bin', a], ['d.bin', b], ['e.bin', Buffer.concat([b.subarray(0, 4 * 1024 * 1024), a])]] as const) fs.writeFileSync(path.join(shared, name), data);
    const point = (await backup(state, [shared])).point;
    const target = path.join(work, 'restored-shared');
    await runOk(AGENT_CLI, ['restore', '--state', state, point, '--to', target]);
    expect(digestTree(path.join(target, 'shared'))).toEqual(digestTree(shared));
  });

  it('restores more files than the process may hold open at once', async () => {
    const many = path.join(work, 'many-files');
    const rng = new Rng(4);
    for (let d = 0; d < 4; d++) {
      fs.mkdirSync(path.join(many, `d${d}`), { recursive: true });
      for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(many, `d${d}`, `f${i}`), rng.bytes(1 + rng.int(3000)));
    }
    const point = (await backup(state, [many])).point;
    const target = path.join(work, 'restored-many');
    const { execFileSync } = await import('node:child_process');
    // 1,600 files under a limit of 256 open files.
    execFileSync('sh', ['-c', `ulimit -n 256 && exec "$0" "$@"`, process.execPath, AGENT_CLI, 'restore', '--state', state, point, '--to', target], { stdio: 'pipe' });
    expect(digestTree(path.join(target, 'many-files'))).toEqual(digestTree(many));
  });
});
