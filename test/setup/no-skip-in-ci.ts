// In CI a skipped test is a failure: everything the suite needs is installed there, so a skip
// means a test did not run that should have. Outside CI skips are reported as usual.
import type { Reporter, TestModule } from 'vitest/node';

const inCI = process.env.CI === 'true' || process.env.CI === '1';

export default class NoSkipInCI implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (!inCI) return;
    const skipped: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        if (r.state === 'skipped') skipped.push(`${m.moduleId.replace(process.cwd() + '/', '')} > ${t.fullName}${r.note ? ` (${r.note})` : ''}`);
      }
    }
    if (!skipped.length) return;
    console.error(`\nCI: ${skipped.length} test(s) were skipped, and a skip is a failure in CI:\n  ${skipped.join('\n  ')}`);
    process.exitCode = 1;
  }
}
