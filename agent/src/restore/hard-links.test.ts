import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeType, type TreeNode } from '@bulwark/proto';
import { restoreHardLink, splitHardLinks } from './hard-links.js';

const node = (name: string, hardlinkId: number): TreeNode => ({
  name: Buffer.from(name), type: NodeType.FILE, mode: 0o640, uid: 0, gid: 0, size: 5, mtimeSec: 1_000_000_000, mtimeNsec: 250_000_000, hardlinkId,
});

describe('hard links in a restore', () => {
  const dirs: string[] = [];
  const temp = (under: string) => { const d = fs.mkdtempSync(path.join(under, 'bulwark-links-')); dirs.push(d); return d; };
  afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  it('writes the first path of each group and links the rest to it', () => {
    const files = [
      { path: Buffer.from('/r/a'), node: node('a', 1) },
      { path: Buffer.from('/r/plain'), node: node('plain', 0) },
      { path: Buffer.from('/r/b'), node: node('b', 1) },
      { path: Buffer.from('/r/c'), node: node('c', 2) },
      { path: Buffer.from('/r/d'), node: node('d', 1) },
    ];
    const { written, links } = splitHardLinks(files);
    expect(written.map((f) => f.path.toString())).toEqual(['/r/a', '/r/plain', '/r/c']);
    expect(links.map((l) => [l.path.toString(), l.to.toString()])).toEqual([['/r/b', '/r/a'], ['/r/d', '/r/a']]);
  });

  it('links on one filesystem', async () => {
    const dir = temp(os.tmpdir());
    fs.writeFileSync(path.join(dir, 'first'), 'hello');
    await restoreHardLink({ path: Buffer.from(path.join(dir, 'second')), to: Buffer.from(path.join(dir, 'first')), node: node('second', 1) }, false);
    expect(fs.statSync(path.join(dir, 'second')).ino).toBe(fs.statSync(path.join(dir, 'first')).ino);
  });

  it('copies, with the node\'s mode and mtime, where the filesystem cannot link', async () => {
    // /dev/shm is a tmpfs, the temp directory another filesystem: link() fails with EXDEV.
    const from = temp('/dev/shm');
    const to = temp(os.tmpdir());
    expect(fs.statSync(from).dev).not.toBe(fs.statSync(to).dev);
    fs.writeFileSync(path.join(from, 'first'), 'hello');
    await restoreHardLink({ path: Buffer.from(path.join(to, 'second')), to: Buffer.from(path.join(from, 'first')), node: node('second', 1) }, false);
    const st = fs.statSync(path.join(to, 'second'));
    expect(fs.readFileSync(path.join(to, 'second'), 'utf8')).toBe('hello');
    expect(st.ino).not.toBe(fs.statSync(path.join(from, 'first')).ino);
    expect(st.mode & 0o7777).toBe(0o640);
    expect(st.mtimeMs).toBe(1_000_000_000_250);
  });
});
