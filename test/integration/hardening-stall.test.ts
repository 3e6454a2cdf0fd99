import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statusJson } from '../helpers/control.js';
import { freePort, get, groupMembers, killAllCorrals, startCorral, TEST_APPS, waitFor, type Corral, type LogRecord } from '../helpers/corral.js';
import { expectSurvivedFault } from '../helpers/fault.js';
import { expectGroupGone } from '../helpers/process-group.js';

afterEach(() => {
  // A test that failed while the master was stopped must not leave it stopped: SIGKILL ends it either way.
  killAllCorrals();
});

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-stall-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const HUNG = 'worker hung: no heartbeat within the timeout; aborting it for a stack dump';
const isHung = (record: LogRecord) => record.msg === HUNG;
const GRACEFUL = 5;

/** A master with the endpoints every fault test checks afterwards. */
async function startWithEndpoints(args: string[], cwd?: string) {
  const port = await freePort();
  const metricsPort = await freePort();
  const controlSocket = path.join(fs.mkdtempSync(path.join(scratch, 'ctl-')), 'corral.sock');
  const corral = startCorral(
    [
      '-b', `127.0.0.1:${port}`,
      '--metrics-bind', `127.0.0.1:${metricsPort}`,
      '--control-socket', controlSocket,
      '--graceful-timeout', String(GRACEFUL),
      '--app-dir', TEST_APPS,
      ...args,
      'app:app',
    ],
    cwd ? { cwd } : {},
  );
  return { corral, port, fault: { corral, controlSocket, metricsPort, gracefulTimeout: GRACEFUL } };
}

/** Holds a fault for a fixed time: the stall itself is the fault under test, not a wait for a condition. */
const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A config file that is quick at start and, once `slow` exists beside it, takes that file's number of
 * seconds to run; `reading` and `read` beside it mark the start and the end of each slow run.
 */
function slowConfig(): { dir: string; file: string; slowDown(seconds: number): void; reading: string; read: string } {
  const dir = fs.mkdtempSync(path.join(scratch, 'conf-'));
  const file = path.join(dir, 'gunicorn.conf.py');
  fs.writeFileSync(
    file,
    [
      'import pathlib',
      'import time',
      '',
      'here = pathlib.Path(__file__).parent',
      'if (here / "slow").exists():',
      '    (here / "reading").touch()',
      '    time.sleep(float((here / "slow").read_text()))',
      '    (here / "read").touch()',
      '',
    ].join('\n'),
  );
  return {
    dir,
    file,
    slowDown: (seconds) => fs.writeFileSync(path.join(dir, 'slow'), String(seconds)),
    reading: path.join(dir, 'reading'),
    read: path.join(dir, 'read'),
  };
}

/** HUP, then: every old worker is replaced (exited as a restart), and none was judged hung. */
async function expectRolledWithoutAborts(corral: Corral, old: number[]): Promise<void> {
  await corral.waitForLog((r) => r.msg === 'rolling restart complete', 60_000);
  const exited = (pid: number) => corral.find((r) => typeof r.msg === 'string' && /^worker (exited|died)/.test(r.msg) && r.pid === pid);
  await waitFor(() => old.every((pid) => exited(pid).length > 0), 30_000, 'the master to see every old worker exit');
  for (const pid of old) expect(exited(pid).map((r) => [r.msg, r.reason]), `worker ${pid}`).toEqual([['worker exited', 'restart']]);
  expect(corral.find(isHung)).toEqual([]);
  expect(corral.find((r) => r.signal === 'SIGABRT')).toEqual([]);
}

describe('a stalled master (SIGSTOP, a VM pause, a blocked loop)', () => {
  it('kills no healthy worker after being stopped for longer than --timeout, and still catches the one that hung', async () => {
    const { corral, port, fault } = await startWithEndpoints(['-w', '2', '-t', '2']);
    const [first, second] = await corral.waitForReadyWorkers(2);
    // One worker hangs (its event loop blocked), then the master is stopped for more than twice --timeout.
    void get({ port }, '/block?s=120', 130_000).catch(() => undefined);
    const blocked = await corral.waitForLog((r) => r.msg === '/block started');
    const hung = blocked.pid as number;
    const healthy = hung === first ? second! : first!;
    corral.signal('SIGSTOP');
    try {
      await hold(5_000);
    } finally {
      corral.signal('SIGCONT');
    }
    // The hung worker is caught as before, and it is the only one.
    await waitFor(() => corral.readyWorkerPids().filter((pid) => pid !== healthy).some((pid) => pid !== hung), 30_000, 'a replacement for the hung worker');
    expect(corral.find(isHung).map((r) => r.pid)).toEqual([hung]);
    expect(corral.readyWorkerPids()).toContain(healthy);
    expect(corral.find((r) => r.pid === healthy && typeof r.msg === 'string' && /^worker (exited|died)/.test(r.msg))).toEqual([]);
    const stalls = corral.find((r) => r.msg === 'the master was stalled (stopped, paused or blocked); heartbeat and boot deadlines leave that time out');
    expect(stalls.filter((r) => (r.seconds as number) > 2)).toHaveLength(1);
    await expectSurvivedFault(fault);
  });
});

describe('a HUP whose config file is slow to run', () => {
  it('keeps serving /metrics, the control socket and heartbeats while the file runs, then rolls the same workers', async () => {
    const conf = slowConfig();
    const { corral, fault } = await startWithEndpoints(['-w', '2', '-t', '2', '-c', conf.file]);
    const old = await corral.waitForReadyWorkers(2);
    conf.slowDown(2);
    corral.signal('SIGHUP');
    await waitFor(() => fs.existsSync(conf.reading), 10_000, 'the config file to start its slow run');
    const metrics = await get({ port: fault.metricsPort }, '/metrics', 10_000);
    const status = await statusJson(fault.controlSocket, 10_000);
    // Both answered while the file was still running.
    expect(fs.existsSync(conf.read)).toBe(false);
    expect(metrics.status).toBe(200);
    expect(status.workers.map((w) => w.pid).sort()).toEqual([...old].sort());
    await expectRolledWithoutAborts(corral, old);
    fs.rmSync(path.join(conf.dir, 'slow'));
    await expectSurvivedFault(fault);
  });

  it('SIGABRTs no healthy worker when the config file runs for 12 s with -t 5', async () => {
    const conf = slowConfig();
    const { corral, fault } = await startWithEndpoints(['-w', '2', '-t', '5', '-c', conf.file]);
    const old = await corral.waitForReadyWorkers(2);
    conf.slowDown(12);
    corral.signal('SIGHUP');
    await waitFor(() => fs.existsSync(conf.read), 30_000, 'the config file to finish its slow run');
    await expectRolledWithoutAborts(corral, old);
    fs.rmSync(path.join(conf.dir, 'slow'));
    await expectSurvivedFault(fault);
  });

  it('stops on TERM during the re-read, within the graceful bound, leaving no config file running', async () => {
    const conf = slowConfig();
    const { corral } = await startWithEndpoints(['-w', '1', '-c', conf.file]);
    await corral.waitForReadyWorkers(1);
    conf.slowDown(60);
    corral.signal('SIGHUP');
    await waitFor(() => fs.existsSync(conf.reading), 10_000, 'the config file to start its slow run');
    corral.signal('SIGTERM');
    expect(await corral.waitForExit((GRACEFUL + 10) * 1000)).toBe(0);
    await expectGroupGone(corral.pid);
    expect(corral.find((r) => r.msg === 'the configuration could not be re-read; restarting with the previous one')).toEqual([]);
  });

  it('keeps the running configuration when the re-read fails, naming the file and the cause', async () => {
    const conf = slowConfig();
    const { corral, fault } = await startWithEndpoints(['-w', '1', '-c', conf.file]);
    const old = await corral.waitForReadyWorkers(1);
    // Now the file prints 2 MiB while it runs.
    fs.appendFileSync(conf.file, 'import sys\nsys.stdout.write("x" * (2 * 1024 * 1024))\n');
    corral.signal('SIGHUP');
    const failed = await corral.waitForLog((r) => r.msg === 'the configuration could not be re-read; restarting with the previous one');
    expect((failed.err as { message: string }).message).toBe(
      `--config ${JSON.stringify(conf.file)}: printed more than 1 MiB while it ran; a config file should set values, not print`,
    );
    await expectRolledWithoutAborts(corral, old);
    await expectSurvivedFault(fault);
  });
});

describe('config files that run away at start', () => {
  it('a config file printing over 1 MiB: exit 2, one line naming the file and the cause', async () => {
    const conf = slowConfig();
    fs.appendFileSync(conf.file, 'print("x" * (2 * 1024 * 1024))\n');
    const corral = startCorral(['-c', conf.file, '--app-dir', TEST_APPS, 'app:app']);
    expect(await corral.waitForExit()).toBe(2);
    expect(corral.stderr.trim().split('\n')).toEqual([
      `corral: error: --config ${JSON.stringify(conf.file)}: printed more than 1 MiB while it ran; a config file should set values, not print`,
    ]);
    expect(await groupMembers(corral.pid)).toEqual([]);
  });
});

describe('a big start', () => {
  it('acts on TERM between spawns: stops within the graceful bound without starting every worker', async () => {
    const workers = 40;
    const { corral, fault } = await startWithEndpoints(['-w', String(workers)]);
    await corral.waitForLog((r) => r.msg === 'worker booting');
    corral.signal('SIGTERM');
    expect(await corral.waitForExit((GRACEFUL + 10) * 1000)).toBe(0);
    const signalled = corral.records.findIndex((r) => r.msg === 'signal received' && r.signal === 'SIGTERM');
    expect(signalled).toBeGreaterThan(0);
    // The master stopped starting workers once it had the TERM.
    expect(corral.records.slice(signalled).filter((r) => r.msg === 'worker booting')).toEqual([]);
    expect(corral.find((r) => r.msg === 'worker booting').length).toBeLessThan(workers);
    await expectGroupGone(fault.corral.pid);
  });

  it('refuses a worker count the machine cannot run: exit 2, one line naming the limit and the fix', async () => {
    const corral = startCorral(['-w', '100000', '--app-dir', TEST_APPS, 'app:app']);
    expect(await corral.waitForExit()).toBe(2);
    const lines = corral.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^corral: error: --workers 100000: more than this machine can run: .* at most \d+ workers; lower --workers or (raise|give) /);
    expect(corral.find((r) => r.msg === 'worker booting')).toEqual([]);
    expect(await groupMembers(corral.pid)).toEqual([]);
  });
});
