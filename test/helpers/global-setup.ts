import { execFileSync } from 'node:child_process';

/** Makes sure dist/ and .venv are current even when vitest runs without `npm test`'s pretest step. */
export default function setup(): void {
  execFileSync(process.execPath, ['scripts/setup.mjs', '--quiet'], { stdio: 'inherit' });
}
