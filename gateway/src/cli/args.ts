/**
 * @module The site-directory option and table output shared by the gateway's command modules.
 */
import { UsageError } from '@bulwark/proto';

export function requireDir(dir: string | undefined): string {
  if (!dir) throw new UsageError('--dir D is required: the site directory');
  return dir;
}

/** Columns padded to their widest cell, two spaces apart. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
