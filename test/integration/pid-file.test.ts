import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAllCorrals, startCorral, TEST_APPS } from '../helpers/corral.js';
import { expectSurvivedFault } from '../helpers/fault.js';

const tmpDirs: string[] = [];
afterEach(() => {
  killAllCorrals();
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const GRACEFUL = 5;

/** A corral with --pid at `pidFile` (its control socket beside it) and a metrics port. */
async function startWithPidFile(pidFile: string) {
  const metricsPort = await freePort();
  const corral = startCorral([
    '-w', '1', '-b', `127.0.0.1:${await freePort()}`, '--pid', pidFile, '--metrics-bind', `127.0.0.1:${metricsPort}`,
    '--graceful-timeout', String(GRACEFUL), '--app-dir', TEST_APPS, 'app:app',
  ]);
  await corral.waitForReadyWorkers(1);
  const controlSocket = `${pidFile.replace(/\.pid$/, '')}.control.sock`;
  return { corral, controlSocket, metricsPort, gracefulTimeout: GRACEFUL };
}

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-pid-link-'));
  tmpDirs.push(dir);
  return dir;
}

describe('--pid at a symlink', () => {
  it('replaces a symlink to a file by its own pid file, never writes the target, and removes the pid file at exit', async () => {
    const dir = tmpDir();
    const target = path.join(dir, 'precious.conf');
    fs.writeFileSync(target, 'the contents of a file root can write\n');
    const pidFile = path.join(dir, 'corral.pid');
    fs.symlinkSync(target, pidFile);

    const running = await startWithPidFile(pidFile);
    const { corral } = running;
    expect(fs.readFileSync(target, 'utf8')).toBe('the contents of a file root can write\n');
    const stat = fs.lstatSync(pidFile);
    expect(stat.isFile()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o644);
    expect(fs.readFileSync(pidFile, 'utf8')).toBe(`${corral.pid}\n`);
    expect(corral.find((r) => r.level === 40 && r.msg === `pid file ${pidFile} was a symlink (to ${target}): replaced by a regular file; the link's target is left untouched`)).toHaveLength(1);

    await expectSurvivedFault(running);
    expect(fs.existsSync(pidFile)).toBe(false);
    expect(fs.readFileSync(target, 'utf8')).toBe('the contents of a file root can write\n');
    // Nothing else is left in the directory: no temporary file, no control socket.
    expect(fs.readdirSync(dir)).toEqual(['precious.conf']);
  });

  it('does not create the target of a dangling symlink', async () => {
    const dir = tmpDir();
    const target = path.join(dir, 'created-through-the-link');
    const pidFile = path.join(dir, 'corral.pid');
    fs.symlinkSync(target, pidFile);

    const running = await startWithPidFile(pidFile);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.lstatSync(pidFile).isFile()).toBe(true);
    expect(fs.readFileSync(pidFile, 'utf8')).toBe(`${running.corral.pid}\n`);

    await expectSurvivedFault(running);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
