import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initArgv } from '../../src/platform/pid-one.js';
import { containerInitParent } from '../../src/platform/upgrade.js';
import { statusJson } from '../helpers/control.js';
import { Corral, freePort, get, killAllCorrals, killGroup, startCorral, TEST_APPS, VENV_PYTHON, waitFor } from '../helpers/corral.js';
import { canUnsharePid, namespaceInit, namespaceProcesses, PID_NAMESPACE_WRAPPER, pidNamespaceOf, type NamespaceProcess } from '../helpers/pid-namespace.js';
import { expectGroupGone } from '../helpers/process-group.js';

const tmpDirs: string[] = [];
const groups: number[] = [];
afterEach(() => {
  killAllCorrals();
  for (const pgid of groups.splice(0)) killGroup(pgid);
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const root = process.getuid?.() === 0 && canUnsharePid();
const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';

function show(processes: readonly NamespaceProcess[]): string[] {
  return processes.map((process) => `${process.pid} ${process.comm} ${process.state}`);
}

describe('corral as PID 1 of a container with no init', () => {
  it.skipIf(!root)('reaps the orphans of the app\'s subprocesses, forwards HUP and TERM to the master, and leaves nothing (needs root for unshare)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-pid1-'));
    tmpDirs.push(dir);
    const controlSocket = path.join(dir, 'control.sock');
    const [port, metricsPort] = [await freePort(), await freePort()];
    const corral = startCorral(
      ['-w', '2', '-b', `127.0.0.1:${port}`, '--metrics-bind', `127.0.0.1:${metricsPort}`, '--control-socket', controlSocket, '--graceful-timeout', '5', '--app-dir', TEST_APPS, 'app:app'],
      { wrapper: PID_NAMESPACE_WRAPPER },
    );
    // PID 1 of the namespace: what `docker stop` and `docker kill -s` signal.
    const init = await waitFor(() => namespaceInit(corral.pid), 10_000, 'the namespace\'s PID 1');
    const namespace = pidNamespaceOf(init);
    await waitFor(() => corral.find((r) => r.msg === 'worker ready').length >= 2, 20_000, `2 ready workers; log:\n${corral.output.slice(-3000)}`);
    const master = (await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('corral 0.1.0 listening'))).pid;
    // Where Node can execve, the init is PID 1 itself; on Node 20 it is PID 1's child, a subreaper.
    const inits = namespaceProcesses(namespace).filter((process) => process.comm === 'corral-init');
    expect(inits).toHaveLength(1);
    expect(inits[0]!.pid === 1).toBe(typeof (process as { execve?: unknown }).execve === 'function');

    // Each request runs a shell that leaves an orphaned `sleep 0.1` behind.
    for (let i = 0; i < 20; i++) expect((await get({ port }, '/orphan')).status).toBe(200);
    const leftovers = () => namespaceProcesses(namespace).filter((process) => process.state === 'Z' || process.comm === 'sleep');
    await waitFor(() => leftovers().length === 0, 10_000, 'every orphan to exit and be reaped').catch(() => undefined);
    expect(show(leftovers())).toEqual([]);

    // The master still answers its control socket and /readyz.
    expect((await get({ port: metricsPort }, '/readyz')).status).toBe(200);
    expect((await statusJson(controlSocket, 15_000)).pid).toBe(master);

    // HUP to PID 1 reaches the master: a rolling restart.
    process.kill(init, 'SIGHUP');
    await corral.waitForLog((r) => r.msg === 'rolling restart complete' && r.pid === master, 30_000, 'the rolling restart');
    expect((await get({ port })).status).toBe(200);

    // TERM to PID 1: a graceful stop, exit 0, and nothing left in the namespace.
    process.kill(init, 'SIGTERM');
    expect(await corral.waitForExit(20_000)).toBe(0);
    expect(corral.find((r) => r.msg === 'corral stopped' && r.pid === master)).toHaveLength(1);
    expect(show(namespaceProcesses(namespace))).toEqual([]);
    await expectGroupGone(corral.pid);
  });

  it.skipIf(!root || !fs.existsSync(SOCKET_ACTIVATE))('hands systemd socket activation meant for PID 1 on to the master (needs root for unshare)', async () => {
    const port = await freePort();
    // systemd-socket-activate is PID 1 and execs corral, with LISTEN_PID=1, on the first connection.
    const corral = startCorral(['-w', '1', '--app-dir', TEST_APPS, 'app:app'], {
      wrapper: [...PID_NAMESPACE_WRAPPER, SOCKET_ACTIVATE, '-l', `127.0.0.1:${port}`],
    });
    const reply = await waitFor(() => get({ port }, '/', 30_000).catch(() => undefined), 30_000, 'an answer on the activated socket');
    expect(reply.status).toBe(200);
    const activated = await corral.waitForLog((r) => r.msg === 'systemd socket activation: using the sockets from LISTEN_FDS instead of --bind');
    expect(activated.pid).not.toBe(1);
    expect(corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('running under corral-init'))).toHaveLength(1);
    process.kill(namespaceInit(corral.pid)!, 'SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
  });

  it.skipIf(!root)('warns as before when no Python can run its init, and then runs as PID 1 (needs root for unshare)', async () => {
    const port = await freePort();
    // No python3 on PATH and a --python that does not exist: corral-init cannot start (nor can the workers).
    const corral = new Corral(['--python', '/nonexistent/python', '--log-format', 'json', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app'], {
      wrapper: PID_NAMESPACE_WRAPPER,
      env: { PATH: '/nonexistent', VIRTUAL_ENV: undefined },
    });
    const warning = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('corral runs as PID 1'));
    expect(warning).toMatchObject({
      level: 40,
      pid: 1,
      msg: 'corral runs as PID 1 and could not start corral-init (no Python to run it: /nonexistent/python, python3 not found): nothing reaps orphaned processes; use tini as the ENTRYPOINT (ENTRYPOINT ["tini", "--"]) or docker run --init',
    });
    expect(await corral.waitForExit()).toBe(1);
  });
});

/** The pids of a process's children (zombies included) and their names. */
function childrenOf(pid: number): { pid: number; comm: string; state: string }[] {
  let pids: string[];
  try {
    pids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
  return pids.flatMap((child) => {
    try {
      const status = fs.readFileSync(`/proc/${child}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
      return [{ pid: Number(child), comm: field('Name'), state: field('State').charAt(0) }];
    } catch {
      return [];
    }
  });
}

describe('corral-init on its own (no root needed)', () => {
  it("takes the orphans below it as a subreaper, reaps them, forwards TERM, and ends with its child's code", async () => {
    // The "master" here is a shell that orphans a job, then exits 7 on TERM.
    const master = `trap "exit 7" TERM; sh -c "sleep 1 &"; while :; do sleep 0.05; done`;
    const [python, ...args] = initArgv(VENV_PYTHON, ['/bin/sh', '-c', master]);
    const init = spawn(python!, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    groups.push(init.pid!);
    let stderr = '';
    init.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => init.once('exit', (code) => resolve(code)));

    await waitFor(() => containerInitParent(init.pid) === 'corral-init', 10_000, 'the init to name itself');
    // The orphaned sleep is the init's child now, not the machine's init's...
    await waitFor(() => childrenOf(init.pid!).some((child) => child.comm === 'sleep'), 10_000, 'the orphan to be reparented to corral-init');
    // ...and once it has exited, nothing but the master is left below the init: no zombie.
    await waitFor(() => childrenOf(init.pid!).every((child) => child.comm !== 'sleep'), 10_000, 'the orphan to be reaped').catch(() => undefined);
    expect(childrenOf(init.pid!).map((child) => `${child.comm} ${child.state}`)).toEqual([expect.stringMatching(/^sh [RS]$/)]);

    process.kill(init.pid!, 'SIGTERM');
    expect(await exited).toBe(7);
    expect(stderr).toBe('');
  });
});
