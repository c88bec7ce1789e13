// Loaded first in every test worker by `npm run test:asan` (vitest.config.ts adds it when
// VNETLINK_ADDON is set): this worker loads the ASan build of the addon, then the variables
// are dropped so the processes tests start (ip, nft, dnsmasq, a child node) run as usual,
// uninstrumented and with the normal addon. Preloaded ASan made some of them (dnsmasq) hang.
import '../lib/native.js';

delete process.env.LD_PRELOAD;
delete process.env.VNETLINK_ADDON;
