// The guest's vitest config: the suite's own, with these differences. The host runner has already
// checked the Debian packages (and the guest has no network to install any), so no globalSetup.
// A TCG guest runs many times slower than the host, and most of a file's time there is vitest's
// own start in a fresh worker (node, the vitest runtime, importing lib/ and the addon), so every
// file runs in one worker, one after another, sharing its module cache (the kind tests keep no
// module state a later file could trip on: each makes its own namespaces and handles and
// removes them in afterAll); and each test and hook gets longer.
import base from '../../vitest.config.ts';

export default {
  ...base,
  test: {
    ...base.test,
    include: ['test/kinds/*.test.ts'],
    globalSetup: [],
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    isolate: false,
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
};
