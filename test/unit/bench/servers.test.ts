import { describe, expect, it } from 'vitest';
import { serverLabel } from '../../../bench/report.js';
import {
  DEFAULT_SERVERS,
  SERVERS,
  SERVER_LABELS,
  SERVER_NAMES,
  isCorralWorker,
  longOptions,
  unlistedOptions,
} from '../../../bench/servers.js';

const opts = { appDir: '/tmp/app', workers: 4, port: 8123, accessLog: false };

// Excerpts of `node bin/corral.js --help`, before and after the fork server.
const HELP_TODAY = `Options:
  -w, --workers WORKERS            Number of worker processes
  --preload                        accepted: workers are fresh interpreters
  --access-log, --no-access-log    Log every request
  --max-requests, --limit-max-requests MAX_REQUESTS
`;
const HELP_FORK = `${HELP_TODAY}  --start-method {fork,spawn}      How workers start: fork (from a fork server) or spawn [default: fork]
`;

describe('server entries', () => {
  it('runs corral (spawn) as corral with --start-method spawn, and nothing else differs', () => {
    const plain = SERVERS.corral.command(opts);
    const spawn = SERVERS['corral-spawn'].command(opts);
    expect(spawn.cmd).toBe(plain.cmd);
    const i = plain.args.indexOf('app:app');
    expect(spawn.args).toEqual([...plain.args.slice(0, i), '--start-method', 'spawn', 'app:app']);
    expect(SERVERS['corral-spawn'].family).toBe('corral');
    expect(SERVER_LABELS['corral-spawn']).toBe('corral (spawn)');
    expect(serverLabel('reload', 'corral-spawn')).toBe('corral --reload --start-method spawn');
    expect(serverLabel('reload', 'corral')).toBe('corral --reload');
    expect(serverLabel('reload', 'gunicorn')).toBe('gunicorn --reload + UvicornWorker');
  });

  it('measures the extra corral column only when asked for', () => {
    expect(SERVER_NAMES).toContain('corral-spawn');
    expect(DEFAULT_SERVERS).not.toContain('corral-spawn');
    expect(SERVERS.corral.extraArgs).toEqual([]);
  });

  it("finds the options an entry needs in corral's --help, as whole words", () => {
    expect(longOptions(['--start-method', 'spawn', '-w', '2', '--max-surge=2'])).toEqual(['--start-method', '--max-surge']);
    expect(unlistedOptions(HELP_TODAY, ['--start-method'])).toEqual(['--start-method']);
    expect(unlistedOptions(HELP_FORK, ['--start-method'])).toEqual([]);
    // a prefix or a longer option is not the option
    expect(unlistedOptions(HELP_TODAY, ['--max-request', '--access'])).toEqual(['--max-request', '--access']);
    expect(unlistedOptions(HELP_TODAY, ['--limit-max-requests', '--no-access-log'])).toEqual([]);
  });
});

describe("corral's workers in its process tree", () => {
  const PY = '/repo/.venv/bin/python -u /repo/src/python/corral_worker.py';
  const FORK_SERVER = `${PY} --fork-server`;
  const MASTER = 'node /repo/bin/corral.js -w 2 app:app';

  it('counts spawned workers (children of the master) and forked ones (children of a fork server)', () => {
    expect(isCorralWorker({ cmd: PY, depth: 1, parentCmd: MASTER })).toBe(true);
    // a forked worker inherits the fork server's command line
    expect(isCorralWorker({ cmd: FORK_SERVER, depth: 2, parentCmd: FORK_SERVER })).toBe(true);
  });

  it('does not count fork servers, one-shot helpers, or what a worker starts', () => {
    expect(isCorralWorker({ cmd: FORK_SERVER, depth: 1, parentCmd: MASTER })).toBe(false);
    expect(isCorralWorker({ cmd: '/repo/.venv/bin/python -c import sys', depth: 1, parentCmd: MASTER })).toBe(false);
    expect(isCorralWorker({ cmd: '/usr/bin/sh -c date', depth: 2, parentCmd: PY })).toBe(false);
    expect(isCorralWorker({ cmd: PY, depth: 2, parentCmd: PY })).toBe(false);
    expect(isCorralWorker({ cmd: FORK_SERVER, depth: 3, parentCmd: FORK_SERVER })).toBe(false);
  });

  it('keeps the other servers as they were: children of the master', () => {
    expect(SERVERS.uvicorn.isWorker({ cmd: 'python -c from multiprocessing.spawn import spawn_main', depth: 1, parentCmd: '' })).toBe(true);
    expect(SERVERS.uvicorn.isWorker({ cmd: 'python -c from multiprocessing.resource_tracker import main', depth: 1, parentCmd: '' })).toBe(false);
    expect(SERVERS.gunicorn.isWorker({ cmd: 'gunicorn: worker', depth: 1, parentCmd: '' })).toBe(true);
    expect(SERVERS.granian.isWorker({ cmd: 'granian', depth: 2, parentCmd: '' })).toBe(false);
  });
});
