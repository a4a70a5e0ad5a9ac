/**
 * @module A restored path's owner (when restoring as root), mode and mtime,
 * from its tree node: directories once their contents are in place, copies
 * made where a hard link could not be.
 */
import fs from 'node:fs';
import type { TreeNode } from '@bulwark/proto';

/**
 * Synchronous: called for thousands of paths in a row with nothing else to
 * do meanwhile, where each awaited call's round trip through the thread
 * pool cost more than the call (2,101 directories: 0.2 s).
 */
export function applyMetadata(target: Buffer, node: TreeNode, chown: boolean): void {
  if (chown) fs.chownSync(target, node.uid, node.gid);
  fs.chmodSync(target, node.mode);
  const mtime = node.mtimeSec + node.mtimeNsec / 1e9;
  fs.utimesSync(target, mtime, mtime);
}
