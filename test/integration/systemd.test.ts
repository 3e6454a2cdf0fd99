import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Corral, freePort, get, killAllCorrals, killGroup, ROOT, startApp, startCorral, TEST_APPS, VENV_PYTHON, waitFor } from '../helpers/corral.js';
import { expectExited, expectGroupGone } from '../helpers/process-group.js';

const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';
const RECEIVER = path.join(ROOT, 'test', 'helpers', 'notify_receiver.py');

interface Notification {
  pid: number | null;
  message: string;
  /** When the receiver passed it on (ms since the epoch). */
  receivedAt: number;
}

/** The test's own notify socket: a Python receiver (Node cannot bind unix datagram sockets). */
class NotifySocket {
  readonly path: string;
  readonly received: Notification[] = [];
  private readonly child: ChildProcess;

  constructor(dir: string) {
    this.path = path.join(dir, 'notify.sock');
    this.child = spawn(VENV_PYTHON, ['-u', RECEIVER, this.path], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const parsed = JSON.parse(line) as { pid?: number | null; message?: string; listening?: string };
        if (parsed.message !== undefined) this.received.push({ pid: parsed.pid ?? null, message: parsed.message, receivedAt: Date.now() });
        else if (parsed.listening) this.listening = true;
      }
    });
    receivers.add(this);
  }

  listening = false;

  /** The notifications' first lines (READY=1, RELOADING=1, …), in order, without the watchdog pings. */
  states(): string[] {
    return this.received.map((n) => n.message.split('\n')[0]!).filter((line) => line !== 'WATCHDOG=1' && !line.startsWith('STATUS='));
  }

  waitForMessage(predicate: (message: string) => boolean, what: string, after = 0): Promise<Notification> {
    return waitFor(() => this.received.slice(after).find((n) => predicate(n.message)), 20_000, `${what}; received: ${JSON.stringify(this.received.map((n) => n.message))}`);
  }

  kill(): void {
    killGroup(this.child.pid!);
  }
}

const receivers = new Set<NotifySocket>();
const tmpDirs: string[] = [];

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-systemd-'));
  tmpDirs.push(dir);
  return dir;
}

afterEach(() => {
  killAllCorrals();
  for (const receiver of receivers) receiver.kill();
  receivers.clear();
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

describe('sd_notify', () => {
  it('sends READY=1 after every worker is ready, RELOADING=1/READY=1 around HUP, then STOPPING=1', async () => {
    const notify = new NotifySocket(tmpDir());
    await waitFor(() => notify.listening, 10_000, 'the notify receiver to listen');
    const { corral } = await startApp(['-w', '2'], {
      env: { NOTIFY_SOCKET: notify.path },
    });
    const ready = await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1');
    // Not before the workers: both were logged ready (the record's time is taken when it is logged,
    // before the master sends READY=1; the log line itself may be written a moment later).
    await waitFor(() => corral.find((r) => r.msg === 'worker ready').length === 2, 5_000, 'two ready records');
    for (const record of corral.find((r) => r.msg === 'worker ready')) expect(record.time as number).toBeLessThanOrEqual(ready.receivedAt);
    expect(ready.message).toContain('STATUS=2 of 2 workers ready');
    // Sent with the master's pid as credentials (root may), so NotifyAccess=main accepts it.
    expect(ready.pid).toBe(corral.pid);

    corral.signal('SIGHUP');
    const reloading = await notify.waitForMessage((m) => m.startsWith('RELOADING=1'), 'RELOADING=1');
    // systemd's Type=notify-reload wants the reload's monotonic time with it.
    expect(reloading.message).toMatch(/MONOTONIC_USEC=\d+/);
    await corral.waitForLog((r) => r.msg === 'rolling restart complete');
    await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1 after the reload', notify.received.indexOf(reloading) + 1);

    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
    await notify.waitForMessage((m) => m.startsWith('STOPPING=1'), 'STOPPING=1');
    expect(notify.states()).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  });

  it('sends READY=1 after a HUP only once the old workers have exited', async () => {
    const notify = new NotifySocket(tmpDir());
    await waitFor(() => notify.listening, 10_000, 'the notify receiver to listen');
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app'], {
      env: { NOTIFY_SOCKET: notify.path },
    });
    await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1');
    const old = await corral.waitForReadyWorkers(2);
    // A slow request keeps one old worker draining after its replacement is ready.
    const slow = get({ port }, '/sleep?s=6', 30_000);
    await corral.waitForLog((r) => r.msg === '/sleep started');
    corral.signal('SIGHUP');
    const reloading = await notify.waitForMessage((m) => m.startsWith('RELOADING=1'), 'RELOADING=1');
    const ready = await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1 after the reload', notify.received.indexOf(reloading) + 1);
    expect((await slow).status).toBe(200);
    // Each old worker's exit was logged before the master sent READY=1 (the record's time is taken
    // when it is logged; the line itself may be written a moment later).
    const exits = await waitFor(() => {
      const records = corral.find((r) => r.msg === 'worker exited' && old.includes(r.pid as number));
      return records.length === 2 ? records : undefined;
    }, 5_000, 'the exit records of both old workers');
    for (const record of exits) expect(record.time as number).toBeLessThanOrEqual(ready.receivedAt);
    expect(notify.states()).toEqual(['READY=1', 'RELOADING=1', 'READY=1']);
  });

  it('with --shutdown-delay, sends STOPPING=1 at TERM while the workers still serve', async () => {
    const notify = new NotifySocket(tmpDir());
    await waitFor(() => notify.listening, 10_000, 'the notify receiver to listen');
    const { corral, port } = await startApp(['-w', '1', '--shutdown-delay', '300'], {
      env: { NOTIFY_SOCKET: notify.path },
    });
    await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1');
    corral.signal('SIGTERM');
    await notify.waitForMessage((m) => m.startsWith('STOPPING=1'), 'STOPPING=1');
    // Said at the start of the 300 s delay, not at its end: the worker still answers.
    expect((await get({ port })).status).toBe(200);
    expect(corral.exitCode).toBeUndefined();
    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
    expect(notify.states()).toEqual(['READY=1', 'STOPPING=1']);
  });

  it('sends WATCHDOG=1 only while a worker is ready and beating', async () => {
    const notify = new NotifySocket(tmpDir());
    await waitFor(() => notify.listening, 10_000, 'the notify receiver to listen');
    // --timeout 2: the blocked worker is aborted and replaced, so the pings resume.
    const { corral, port } = await startApp(['-w', '1', '-t', '2'], {
      env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '300000' },
    });
    await notify.waitForMessage((m) => m === 'WATCHDOG=1', 'a first WATCHDOG=1');

    // Block the only worker's event loop: its heartbeat stops.
    void get({ port }, '/block?s=30', 40_000).catch(() => undefined);
    const unhealthy = await notify.waitForMessage((m) => m.startsWith('STATUS=unhealthy'), 'the unhealthy status');
    const from = notify.received.indexOf(unhealthy);
    await corral.waitForLog((r) => r.msg === 'worker hung: no heartbeat within the timeout; aborting it for a stack dump');
    const recovered = await notify.waitForMessage((m) => m.startsWith('STATUS=1 of 1'), 'the status after the replacement', from + 1);
    const to = notify.received.indexOf(recovered);
    await notify.waitForMessage((m) => m === 'WATCHDOG=1', 'WATCHDOG=1 again', to + 1);
    // Between "unhealthy" and the recovery, no ping at all.
    expect(notify.received.slice(from, to).filter((n) => n.message === 'WATCHDOG=1')).toEqual([]);
    expect(notify.received.slice(0, from).some((n) => n.message === 'WATCHDOG=1')).toBe(true);
  });

  it('the notify helper dies with the master', async () => {
    const notify = new NotifySocket(tmpDir());
    await waitFor(() => notify.listening, 10_000, 'the notify receiver to listen');
    const { corral } = await startApp(['-w', '1'], {
      env: { NOTIFY_SOCKET: notify.path },
    });
    await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1');
    const helper = childrenOf(corral.pid).find((pid) => cmdline(pid).includes('corral_notify.py'));
    expect(helper).toBeTypeOf('number');
    process.kill(corral.pid, 'SIGKILL');
    await corral.waitForExit();
    await expectExited([helper!], 10_000, 'the notify helper alive after the master was killed');
    await expectGroupGone(corral.pid);
  });
});

describe('socket activation', () => {
  const available = fs.existsSync(SOCKET_ACTIVATE);

  it.skipIf(!available)('serves on the sockets systemd-socket-activate passes, instead of --bind', async () => {
    const dir = tmpDir();
    const port = await freePort();
    const unixPath = path.join(dir, 'activated.sock');
    const ignoredPort = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${ignoredPort}`, '--app-dir', TEST_APPS, 'app:app'], {
      wrapper: [SOCKET_ACTIVATE, '-l', `127.0.0.1:${port}`, '-l', unixPath, '--fdname=web:local'],
    });
    // systemd-socket-activate starts corral on the first connection; that request waits in the backlog.
    await waitFor(() => fs.existsSync(unixPath), 10_000, 'systemd-socket-activate to listen');
    const first = await get({ port }, '/', 30_000);
    expect(first.status).toBe(200);
    const pids = await corral.waitForReadyWorkers(2);
    const activation = await corral.waitForLog((r) => r.msg === 'systemd socket activation: using the sockets from LISTEN_FDS instead of --bind');
    expect(activation).toMatchObject({ fds: 2, names: 'web:local' });
    const started = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('corral ') && Array.isArray(r.binds));
    expect(started.binds).toEqual([`127.0.0.1:${port}`, `unix:${unixPath}`]);
    expect((await get({ socketPath: unixPath }, '/')).status).toBe(200);
    // The --bind address was not bound.
    await expect(get({ port: ignoredPort }, '/', 2_000)).rejects.toThrow(/ECONNREFUSED/);
    // systemd's variables are the master's alone.
    for (const pid of pids) {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      expect(environ.filter((entry) => /^(LISTEN_|NOTIFY_SOCKET|WATCHDOG_)/.test(entry))).toEqual([]);
    }
    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
  });
});

/** `Key=value` lines of a unit file's section, in order (repeated keys kept). */
function unitSettings(file: string): [string, string][] {
  return fs
    .readFileSync(path.join(ROOT, file), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]);
}

describe('examples/systemd', () => {
  const available = fs.existsSync(SOCKET_ACTIVATE);

  it.skipIf(!available)('the units work: ExecStart on the socket unit\'s socket, READY=1, ExecReload, stop', async () => {
    const service = unitSettings('examples/systemd/corral.service');
    const socketUnit = unitSettings('examples/systemd/corral.socket');
    const get1 = (settings: [string, string][], key: string) => settings.find(([name]) => name === key)?.[1];
    expect(get1(service, 'Type')).toBe('notify');
    expect(get1(service, 'KillMode')).toBe('mixed');
    // systemd's stop timeout must outlast corral's drain.
    const execStart = get1(service, 'ExecStart')!.split(/\s+/);
    const graceful = Number(execStart[execStart.indexOf('--graceful-timeout') + 1]);
    expect(Number(get1(service, 'TimeoutStopSec'))).toBeGreaterThan(graceful);

    // The unit's command line, with /opt/corral being this checkout; on loopback and a free port here.
    expect(execStart.slice(0, 2)).toEqual(['/usr/bin/node', '/opt/corral/bin/corral.js']);
    const args = execStart.slice(2).map((word) => word.replaceAll('/opt/corral', ROOT));
    const listen = get1(socketUnit, 'ListenStream')!;
    const port = await freePort();
    const address = listen.replace(/^0\.0\.0\.0:\d+$/, `127.0.0.1:${port}`);
    const notify = new NotifySocket(tmpDir());
    await waitFor(() => notify.listening, 10_000, 'the notify receiver to listen');
    // systemd-socket-activate drops NOTIFY_SOCKET and WATCHDOG_USEC from its own environment: -E passes them.
    const corral = new Corral(args, {
      wrapper: [
        SOCKET_ACTIVATE,
        '-l',
        address,
        `--fdname=${get1(socketUnit, 'FileDescriptorName')}`,
        '-E',
        `NOTIFY_SOCKET=${notify.path}`,
        '-E',
        `WATCHDOG_USEC=${Number(get1(service, 'WatchdogSec')) * 1_000_000}`,
      ],
      env: { CORRAL_LOG_FORMAT: 'json' },
    });
    await waitFor(async () => (await get({ port }, '/', 30_000).catch(() => undefined))?.status === 200, 30_000, 'the first request through the activated socket');
    await notify.waitForMessage((m) => m.startsWith('READY=1'), 'READY=1');
    // ExecReload=/bin/kill -HUP $MAINPID
    expect(get1(service, 'ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    process.kill(corral.pid, 'SIGHUP');
    await notify.waitForMessage((m) => m.startsWith('RELOADING=1'), 'RELOADING=1');
    await corral.waitForLog((r) => r.msg === 'rolling restart complete');
    process.kill(corral.pid, get1(service, 'KillSignal') as NodeJS.Signals);
    expect(await corral.waitForExit()).toBe(0);
    await notify.waitForMessage((m) => m.startsWith('STOPPING=1'), 'STOPPING=1');
    expect(notify.states()).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  });
});
