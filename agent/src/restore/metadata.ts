/**
 * @module A restored path's owner (when restoring as root), mode and mtime,
 * from its tree node: directories once their contents are in place, copies
 * made where a hard link could not be.
 */
import fsp from 'node:fs/promises';
import type { TreeNode } from '@bulwark/proto';

export async function applyMetadata(target: Buffer, node: TreeNode, chown: boolean): Promise<void> {
  if (chown) await fsp.chown(target, node.uid, node.gid);
  await fsp.chmod(target, node.mode);
  const mtime = node.mtimeSec + node.mtimeNsec / 1e9;
  await fsp.utimes(target, mtime, mtime);
}
