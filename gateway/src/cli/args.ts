/**
 * @module Option parsing shared by the gateway's command modules.
 */
import { parseOptions, UsageError } from '@bulwark/proto';

export const options = parseOptions;

export function requireDir(dir: string | undefined): string {
  if (!dir) throw new UsageError('--dir D is required: the site directory');
  return dir;
}
