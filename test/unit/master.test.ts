import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/corral.js';

/** Every TypeScript file under src/, relative to the repository. */
function sourceFiles(dir = path.join(ROOT, 'src')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [path.relative(ROOT, full)] : [];
  });
}

/** A listener added to `process` for an event named by a variable or a SIG… literal: a signal handler, as far as text can tell. */
const SIGNAL_LISTENER = /process\.(?:on|once|addListener|prependListener|prependOnceListener)\(\s*(?!['"`](?!SIG))/;

describe("the master's signal handlers", () => {
  it('are installed in src/master.ts alone (src/platform/pid-one.ts only relays signals to the init, in the Node that stays PID 1)', () => {
    const installing = sourceFiles().filter((file) => SIGNAL_LISTENER.test(fs.readFileSync(path.join(ROOT, file), 'utf8')));
    expect(installing.sort()).toEqual(['src/master.ts', 'src/platform/pid-one.ts']);
  });
});
