// vitest globalSetup: the Debian packages the suite uses are installed (or named) before any test runs.
import { ensurePackages } from './packages.mjs';

export default function setup(): void {
  ensurePackages('tests');
}
