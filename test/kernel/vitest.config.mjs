// The guest's vitest config: the suite's own, with two differences. The host runner has already
// checked the Debian packages (and the guest has no network to install any), so no globalSetup;
// and a TCG guest runs several times slower than the host, so each test and hook gets longer.
import base from '../../vitest.config.ts';

export default {
  ...base,
  test: { ...base.test, include: ['test/kinds/*.test.ts'], globalSetup: [], testTimeout: 240_000, hookTimeout: 240_000 },
};
