import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodeOf, findExecutable, INIT_ENTRY, initArgv, initInterpreterCandidates, runBehindInitIfPidOne } from '../../../src/platform/pid-one.js';

describe('corral-init: the interpreter it runs on', () => {
  it('tries the configured --python first, then python3, once each', () => {
    expect(initInterpreterCandidates('/srv/app/.venv/bin/python')).toEqual(['/srv/app/.venv/bin/python', 'python3']);
    expect(initInterpreterCandidates('python3')).toEqual(['python3']);
    expect(initInterpreterCandidates(undefined)).toEqual(['python3']);
  });

  it('resolves a bare name on PATH as execvp does, and a path as it is', () => {
    const executables = new Set(['/usr/local/bin/python3', '/srv/venv/bin/python']);
    const isExecutable = (file: string) => executables.has(file);
    expect(findExecutable('python3', { PATH: '/usr/bin::/usr/local/bin' }, isExecutable)).toBe('/usr/local/bin/python3');
    expect(findExecutable('python3', { PATH: '/usr/bin' }, isExecutable)).toBeUndefined();
    expect(findExecutable('python3', {}, isExecutable)).toBeUndefined();
    expect(findExecutable('/srv/venv/bin/python', { PATH: '' }, isExecutable)).toBe('/srv/venv/bin/python');
    expect(findExecutable('/nonexistent/python', { PATH: '/usr/local/bin' }, isExecutable)).toBeUndefined();
  });

  it("runs the init isolated from the app's Python settings, with the master's command after it", () => {
    expect(initArgv('/usr/bin/python3', ['/usr/bin/node', '/app/bin/corral.js', '-w', '2', 'app:app'])).toEqual([
      '/usr/bin/python3', '-I', '-S', INIT_ENTRY, '/usr/bin/node', '/app/bin/corral.js', '-w', '2', 'app:app',
    ]);
    expect(path.basename(INIT_ENTRY)).toBe('corral_init.py');
  });
});

describe('corral-init: what it does not do', () => {
  it('stays out of the way unless this process is PID 1 and runs the server', async () => {
    expect(await runBehindInitIfPidOne(['-w', '2', 'app:app'], 4242)).toBeUndefined();
    expect(await runBehindInitIfPidOne(['status', '--pid', '/run/corral.pid'], 1)).toBeUndefined();
  });
});

describe('exitCodeOf', () => {
  it("is the child's code, or 128 + its signal's number", () => {
    expect(exitCodeOf(0, null)).toBe(0);
    expect(exitCodeOf(3, null)).toBe(3);
    expect(exitCodeOf(null, 'SIGKILL')).toBe(137);
    expect(exitCodeOf(null, 'SIGTERM')).toBe(143);
  });
});
