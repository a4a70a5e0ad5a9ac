/**
 * @module Hard links in a restore: per group of files with one
 * `hardlink_id` the first path is written and the others are linked to it.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { TreeNode } from '@bulwark/proto';
import { applyMetadata } from './metadata.js';

export interface PlannedFile { path: Buffer; node: TreeNode }
export interface PlannedLink { path: Buffer; node: TreeNode; to: Buffer }

/** Per hard-link group the first path is written; the others become links to it once it is. */
export function splitHardLinks(files: PlannedFile[]): { written: PlannedFile[]; links: PlannedLink[] } {
  const first = new Map<number, Buffer>();
  const written: PlannedFile[] = [];
  const links: PlannedLink[] = [];
  for (const f of files) {
    const id = f.node.hardlinkId ?? 0;
    const to = id ? first.get(id) : undefined;
    if (to) { links.push({ ...f, to }); continue; }
    if (id) first.set(id, f.path);
    written.push(f);
  }
  return { written, links };
}

/**
 * A filesystem that cannot link these paths (another mount under the
 * target, FAT, a link-count limit) gets a copy of the written file: the data
 * is restored either way, and only the sharing is lost.
 */
export async function restoreHardLink(link: PlannedLink, chown: boolean): Promise<void> {
  try {
    await fsp.link(link.to, link.path);
    return;
  } catch (err) {
    if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
  await fsp.copyFile(link.to, link.path, fs.constants.COPYFILE_EXCL);
  applyMetadata(link.path, link.node, chown);
}

