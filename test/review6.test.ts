// Regressions from the sixth review (findings read in the code): package metadata that pointed
// nowhere, macvlan source MACs set on a link not in source mode, a stale generic netlink family id,
// and codec decode errors that looked like kernel refusals.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('package.json', () => {
  it('carries no repository, bugs or homepage URL: the project has no public home to point at', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    // These were placeholders (github.com/vnetlink/vnetlink); npm shows them on the package page.
    for (const k of ['repository', 'bugs', 'homepage']) expect(pkg, k).not.toHaveProperty(k);
    expect(JSON.stringify(pkg)).not.toMatch(/github\.com\/vnetlink/);
  });
});
