import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['proto/src/**/*.test.ts', 'agent/src/**/*.test.ts', 'gateway/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'test/bench/**', 'kernel-guard/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machine has two cores and most tests run real gateway and agent processes.
    fileParallelism: false,
    pool: 'forks',
    globalSetup: ['test/support/temp-dirs.ts'],
  },
});
