/**
 * @module Vitest global setup: when the run ends, the directories its tests
 * made with `tempDir` go (sites, restored trees, images: ~1 GiB a run, which
 * filled this machine's disk once they had piled up). Only those created
 * since the run began, so another run's or a bench's are left alone.
 * BULWARK_KEEP_TEST_DIRS=1 keeps them for a look after a failure.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const TEMP_DIR = /^bulwark-[a-z0-9-]+-[A-Za-z0-9]{6}$/;

export default function setup(): () => Promise<void> {
  const started = Date.now();
  // Asynchronous, so vitest goes on shutting its workers down meanwhile.
  return async () => {
    if (process.env.BULWARK_KEEP_TEST_DIRS) return;
    for (const name of await fs.promises.readdir(os.tmpdir())) {
      if (!TEMP_DIR.test(name)) continue;
      const dir = path.join(os.tmpdir(), name);
      const st = await fs.promises.stat(dir).catch(() => undefined);
      // A filesystem without birth times reports 0: nothing is removed rather than something not ours.
      if (!st?.isDirectory() || st.birthtimeMs < started) continue;
      // Sealed packs carry the immutable flag; the tests own their stores and lift it.
      await promisify(execFile)('chattr', ['-R', '-i', dir]).catch(() => undefined);
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  };
}
