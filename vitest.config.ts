import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The sanitizer run (npm run test:asan) loads its addon build in each worker first.
    setupFiles: process.env.VNETLINK_ADDON ? ['test/asan-setup.ts'] : [],
    // Installs (as root with apt) or names the Debian packages the suite uses, before any test.
    globalSetup: ['test/setup/global.ts'],
    // Native addons and worker threads do not mix well: one process per test file.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The second reporter fails a CI run that skipped anything.
    reporters: ['default', './test/setup/no-skip-in-ci.ts'],
  },
});
