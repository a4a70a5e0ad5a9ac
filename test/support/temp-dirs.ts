/**
 * @module Vitest global setup: when the run ends, the directories its tests
 * made with `tempDir` go (sites, restored trees, images: ~1 GiB a run, which
 * filled this machine's disk once they had piled up). Only those created
 * since the run began, so another run's or a bench's are left alone.
 * BULWARK_KEEP_TEST_DIRS=1 keeps them for a look after a failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from './cluster.js';

const TEMP_DIR = /^bulwark-[a-z0-9-]+-[A-Za-z0-9]{6}$/;

export default function setup(): () => void {
  const started = Date.now();
  return () => {
    if (process.env.BULWARK_KEEP_TEST_DIRS) return;
    for (const name of fs.readdirSync(os.tmpdir())) {
      if (!TEMP_DIR.test(name)) continue;
      const dir = path.join(os.tmpdir(), name);
      const st = fs.statSync(dir, { throwIfNoEntry: false });
      // A filesystem without birth times reports 0: nothing is removed rather than something not ours.
      if (st?.isDirectory() && st.birthtimeMs >= started) removeTree(dir);
    }
  };
}
