// A frozen copy of corral at a commit, built apart from the work tree: a long benchmark run then
// measures exactly that commit, whatever other developers edit or rebuild meanwhile.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ROOT } from './servers.js';

export interface Snapshot {
  dir: string;
  commit: string;
  remove(): void;
}

export function snapshot(ref = 'HEAD'): Snapshot {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(os.tmpdir(), `corral-snapshot-${commit}-`));
  try {
    const tar = join(dir, '.snapshot.tar');
    execFileSync('git', ['archive', '--format=tar', '-o', tar, ref], { cwd: ROOT });
    execFileSync('tar', ['-xf', tar, '-C', dir]);
    rmSync(tar);
    // the packages are the same (package-lock.json is part of the commit); only src/ is built anew
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
      cwd: dir,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, commit, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
