import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, killAllCorrals, startApp, startCorral, TEST_APPS, VENV_PYTHON } from '../helpers/corral.js';

afterEach(() => killAllCorrals());

const isRoot = process.getuid?.() === 0;
const SYSTEM_PYTHON = '/usr/bin/python3';
const tmpDirs: string[] = [];
// Where the test virtualenv's interpreter is out of nobody's reach (under /root here), corral must say so.
const venvOutOfNobodysReach =
  isRoot && execFileSync('su', ['-s', '/bin/sh', 'nobody', '-c', `test -x ${VENV_PYTHON} && echo yes || echo no`], { encoding: 'utf8' }).trim() === 'no';
afterEach(() => {
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Uid and gid lines of /proc/PID/status: [real, effective, saved, fs]. */
function ids(pid: number): { uid: number[]; gid: number[]; groups: string } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => status.match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'm'))?.[1]?.trim() ?? '';
  return { uid: field('Uid').split(/\s+/).map(Number), gid: field('Gid').split(/\s+/).map(Number), groups: field('Groups') };
}

/**
 * The test virtualenv's interpreter lives under /root (mode 700) on this machine, where `nobody`
 * cannot run it; the system interpreter with the virtualenv's packages on PYTHONPATH is the
 * interpreter such a deployment would use instead.
 */
function pythonForNobody(): { python: string; env: NodeJS.ProcessEnv } {
  const sitePackages = execFileSync(VENV_PYTHON, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).trim();
  return { python: SYSTEM_PYTHON, env: { PYTHONPATH: sitePackages } };
}

describe('-u/--user and -g/--group', () => {
  it.skipIf(!isRoot || !fs.existsSync(SYSTEM_PYTHON))(
    'runs the workers as nobody:nogroup while the master stays root; the unix socket belongs to them (needs root)',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-user-'));
      tmpDirs.push(dir);
      const socketPath = path.join(dir, 'app.sock');
      const port = await freePort();
      const { python, env } = pythonForNobody();
      const corral = startCorral(
        ['--python', python, '-u', 'nobody', '-g', 'nogroup', '-w', '2', '-b', `127.0.0.1:${port}`, '-b', `unix:${socketPath}`, '--app-dir', TEST_APPS, 'app:app'],
        { env },
      );
      const pids = await corral.waitForReadyWorkers(2);
      for (const pid of pids) {
        const worker = ids(pid);
        expect(worker.uid).toEqual([65534, 65534, 65534, 65534]);
        expect(worker.gid).toEqual([65534, 65534, 65534, 65534]);
        // No supplementary group of root's is left.
        expect(worker.groups).toBe('');
      }
      expect(ids(corral.pid).uid[1]).toBe(0);
      const started = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('corral '));
      expect(started).toMatchObject({ user: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 });

      // As gunicorn: the socket file belongs to the workers' user and group, with 0777 & ~umask (0o117).
      const stat = fs.statSync(socketPath);
      expect({ uid: stat.uid, gid: stat.gid, mode: stat.mode & 0o777 }).toEqual({ uid: 65534, gid: 65534, mode: 0o660 });
      expect((await get({ port })).status).toBe(200);
      expect((await get({ socketPath })).status).toBe(200);
      corral.signal('SIGTERM');
      expect(await corral.waitForExit()).toBe(0);
    },
  );

  it.skipIf(!isRoot)('with --user alone the workers get that user\'s primary group (needs root)', async () => {
    const { python, env } = pythonForNobody();
    const { corral } = await startApp(['--python', python, '-u', 'nobody', '-w', '1'], { env });
    const [pid] = await corral.waitForReadyWorkers(1);
    expect(ids(pid!).gid[1]).toBe(65534);
  });

  it.skipIf(!venvOutOfNobodysReach)('says once, before any worker, that the interpreter cannot be run as that user (needs root, and a virtualenv nobody cannot run)', async () => {
    const { corral } = await startApp(['-u', 'nobody']);
    expect(await corral.waitForExit()).toBe(1);
    const fatal = await corral.waitForLog((r) => r.level === 60);
    expect(fatal.msg).toContain('(as user nobody)');
    expect(corral.find((r) => r.msg === 'worker booting')).toEqual([]);
  });

  it('refuses an unknown user with one line and exit 2', async () => {
    const corral = startCorral(['-u', 'no-such-user-corral', '--app-dir', TEST_APPS, 'app:app']);
    expect(await corral.waitForExit()).toBe(2);
    const fatal = await corral.waitForLog((r) => r.level === 60);
    expect(fatal.msg).toBe('--user "no-such-user-corral": no such user on this system; give a user name or a numeric uid');
  });
});
