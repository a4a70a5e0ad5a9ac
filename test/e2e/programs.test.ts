/**
 * The quick start and README run the two programs as `npx bulwark-gateway`
 * and `npx bulwark-agent` from the repository root: after the install step
 * (scripts/setup.sh) both resolve there, to the built programs.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cluster.js';

describe('workspace programs', () => {
  it.each(['bulwark-gateway', 'bulwark-agent'])('%s runs from node_modules/.bin, where npx finds it', (name) => {
    const usage = execFileSync(path.join(ROOT, 'node_modules', '.bin', name), ['--help'], { encoding: 'utf8' });
    expect(usage).toMatch(new RegExp(`^Usage: ${name} <command>`));
  });
});
