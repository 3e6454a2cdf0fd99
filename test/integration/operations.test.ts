import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, groupMembers, killAllCorrals, startApp, startCorral, TEST_APPS, waitFor, type Corral, type LogRecord } from '../helpers/corral.js';
import { startLoad } from '../helpers/load.js';
import { expectExited } from '../helpers/process-group.js';

afterEach(() => killAllCorrals());

const HUNG = 'worker hung: no heartbeat within the timeout; aborting it for a stack dump';

/** A copy of the test app in a temporary directory, so a test may break it on disk. */
function appCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-app-'));
  fs.copyFileSync(path.join(TEST_APPS, 'app.py'), path.join(dir, 'app.py'));
  return dir;
}

async function hupUnderLoad(corral: Corral, port: number, keepAlive: boolean, connections: number) {
  const old = await corral.waitForReadyWorkers(2);
  const load = startLoad({ port, connections, keepAlive, maxMs: 60_000 });
  await waitFor(() => load.result.ok >= 50, 20_000, 'the load to get going');
  corral.signal('SIGHUP');
  await corral.waitForLog((r) => r.msg === 'rolling restart complete', 30_000);
  await expectExited(old, 30_000, 'old workers alive after the rolling restart');
  const okAtRestart = load.result.ok;
  await waitFor(() => load.result.ok >= okAtRestart + 50, 20_000, 'requests to the new generation');
  const result = await load.stop();
  const fresh = corral.readyWorkerPids();
  return { old, fresh, result };
}

describe('rolling restart (SIGHUP)', () => {
  it('replaces every worker with zero failed requests under fresh connections', async () => {
    const { corral, port } = await startApp(['-w', '2', '--no-access-log']);
    const { old, fresh, result } = await hupUnderLoad(corral, port, false, 8);
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(fresh).toHaveLength(2);
    expect(fresh.some((pid) => old.includes(pid))).toBe(false);
  });

  it('replaces every worker with zero socket errors under 16 keep-alive connections', async () => {
    const { corral, port } = await startApp(['-w', '2', '--no-access-log']);
    const { old, fresh, result } = await hupUnderLoad(corral, port, true, 16);
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(fresh.some((pid) => old.includes(pid))).toBe(false);
  });

  it('keeps the old workers serving when the new code does not import, and logs the error', async () => {
    const dir = appCopy();
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', dir, 'app:app']);
    const old = await corral.waitForReadyWorkers(2);
    fs.appendFileSync(path.join(dir, 'app.py'), '\ndef broken(:\n');
    corral.signal('SIGHUP');
    const aborted = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('rolling restart aborted'), 20_000);
    expect(String(aborted.traceback)).toContain('SyntaxError');
    expect(corral.exitCode).toBeUndefined();
    await waitFor(() => corral.readyWorkerPids().length === 2, 10_000, 'the old workers only');
    expect(corral.readyWorkerPids().sort()).toEqual([...old].sort());
    expect(old.includes(Number((await get({ port })).body))).toBe(true);
    // Mended on disk, the next HUP goes through.
    fs.copyFileSync(path.join(TEST_APPS, 'app.py'), path.join(dir, 'app.py'));
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'rolling restart complete', 20_000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('queues one HUP that arrives during a restart and merges the rest', async () => {
    const { corral } = await startApp(['-w', '2']);
    await corral.waitForReadyWorkers(2);
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'rolling restart: starting a new generation');
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'signal received' && corral.find((x) => x.signal === 'SIGHUP').length === 2);
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'a rolling restart is already queued');
    await waitFor(() => corral.find((r) => r.msg === 'rolling restart complete').length === 2, 30_000, 'two restarts');
    expect(corral.find((r) => r.msg === 'rolling restart: starting a new generation')).toHaveLength(2);
  });

  it('is complete once the old worker has finished its slow request and exited, not when it is told to drain', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const [old] = await corral.waitForReadyWorkers(1);
    const slow = get({ port }, '/sleep?s=6', 30_000);
    await corral.waitForLog((r) => r.msg === '/sleep started');
    corral.signal('SIGHUP');
    const complete = await corral.waitForLog((r) => r.msg === 'rolling restart complete', 30_000);
    // The old worker finished the request it had when the drain began.
    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(Number(reply.body)).toBe(old);
    const exited = await corral.waitForLog((r) => r.msg === 'worker exited' && r.pid === old, 10_000, 'the old worker to exit');
    expect(exited).toMatchObject({ reason: 'restart', code: 0 });
    const at = (record: LogRecord | undefined) => (record ? corral.records.indexOf(record) : -1);
    expect(at(exited)).toBeLessThan(at(complete));
    // The drain began once the new worker served, and is logged as such.
    const serving = corral.find((r) => r.msg === 'rolling restart: the new generation serves; the old workers drain')[0];
    expect(at(serving)).toBeGreaterThanOrEqual(0);
    expect(at(serving)).toBeLessThan(at(exited));
  });
});

describe('long-lived responses', () => {
  it('an open event stream does not hold a rolling restart past --graceful-timeout', async () => {
    const graceful = 2;
    const { corral, port } = await startApp(['-w', '1', '--graceful-timeout', String(graceful)]);
    const [old] = await corral.waitForReadyWorkers(1);
    let streamEnded = false;
    const request = http.get({ port, host: '127.0.0.1', path: '/stream', agent: false }, (response) => {
      response.resume();
      response.on('close', () => (streamEnded = true));
    });
    request.on('error', () => (streamEnded = true));
    await corral.waitForLog((r) => r.msg === '/stream started');
    corral.signal('SIGHUP');
    // With one worker the old one is told to drain as soon as its replacement is ready.
    const drainFrom = await corral.waitForLog((r) => r.msg === 'worker ready' && r.pid !== old, 20_000, 'the replacement');
    const exited = await corral.waitForLog((r) => r.msg === 'worker exited' && r.pid === old, 20_000, 'the old worker to exit despite the open stream');
    expect(exited).toMatchObject({ reason: 'restart' });
    // On the master's clock, from the drain's start to the exit: the stream had its --graceful-timeout,
    // and not more than that plus the master's 0.5 s kill backstop; the 2 s on top are for a loaded
    // machine's timers and process exit, not for corral.
    const drained = Number(exited.time) - Number(drainFrom.time);
    expect(drained).toBeGreaterThanOrEqual(graceful * 1000);
    expect(drained).toBeLessThanOrEqual(graceful * 1000 + 500 + 2_000);
    // The stream ended with its worker: the client saw the connection close.
    await expect.poll(() => streamEnded, { timeout: 10_000, message: 'the stream closed once its worker exited' }).toBe(true);
    expect((await get({ port })).status).toBe(200);
  });
});

describe('worker health', () => {
  it('replaces a worker whose event loop is blocked, logging the blocking line', async () => {
    const timeout = 2;
    const { corral, port } = await startApp(['-w', '1', '-t', String(timeout)]);
    const [pid] = await corral.waitForReadyWorkers(1);
    void get({ port }, '/block?s=60', 70_000).catch(() => undefined);
    const blocked = await corral.waitForLog((r) => r.msg === '/block started');
    const hung = await corral.waitForLog((r) => r.msg === HUNG && r.pid === pid, 20_000, 'the master to judge the worker hung');
    // Judged on its silence: not before --timeout without a heartbeat, and within the bound of
    // --timeout + 2 s from the hang, on the clock of the records (the boot of the replacement, the
    // machine's speed, is not in it: it is awaited below, without a bound).
    expect(hung.silent as number).toBeGreaterThanOrEqual(timeout);
    expect(Number(hung.time) - Number(blocked.time)).toBeLessThanOrEqual((timeout + 2) * 1000);
    // Aborted for its stack dump, and replaced at once.
    const died = await corral.waitForLog((r) => r.msg === 'worker died; respawning' && r.pid === pid, 20_000, 'the hung worker to die');
    expect(died).toMatchObject({ signal: 'SIGABRT', reason: 'timeout', delay: 0 });
    await corral.waitForReplacement(pid!, 1, 30_000);
    expect(corral.find((r) => r.msg === HUNG)).toHaveLength(1);
    // faulthandler's dump names the line that blocks: time.sleep in app.py.
    const dump = corral.find((r) => r.pid === pid && r.stream === 'stderr').map((r) => String(r.msg)).join('\n');
    expect(dump).toMatch(/File ".*app\.py", line \d+ in app/);
    const line = fs.readFileSync(path.join(TEST_APPS, 'app.py'), 'utf8').split('\n').findIndex((text) => text.includes('time.sleep(')) + 1;
    expect(dump).toContain(`app.py", line ${line} in app`);
  });

  it('kills a worker that ignores TERM after --graceful-timeout', async () => {
    const { corral } = await startApp(['-w', '1', '--graceful-timeout', '1'], { app: 'ignore_term:app' });
    const [pid] = await corral.waitForReadyWorkers(1);
    corral.signal('SIGTERM');
    expect(await corral.waitForExit(10_000)).toBe(0);
    const exit = corral.find((r) => r.msg === 'worker exited' && r.pid === pid)[0];
    expect(exit).toMatchObject({ signal: 'SIGKILL', reason: 'shutdown' });
    expect(await groupMembers(corral.pid)).toEqual([]);
  });
});

describe('recycling', () => {
  it('recycles workers at --max-requests under load with zero failed requests', async () => {
    const { corral, port } = await startApp(['-w', '2', '--max-requests', '100', '--max-requests-jitter', '20', '--no-access-log']);
    await corral.waitForReadyWorkers(2);
    const load = startLoad({ port, connections: 8, keepAlive: true, maxMs: 60_000 });
    await waitFor(
      () => corral.find((r) => r.msg === 'worker exited' && r.reason === 'max-requests').length >= 2,
      45_000,
      'two workers recycled at max-requests',
    );
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    const recycled = corral.find((r) => r.msg === 'recycling worker: starting its replacement');
    expect(recycled.length).toBeGreaterThanOrEqual(2);
    for (const record of recycled) {
      expect(record.reason).toBe('max-requests');
      expect(record.requests).toBeGreaterThanOrEqual(100);
    }
  });

  it('recycles a worker that leaks memory past --max-memory', async () => {
    const { corral, port } = await startApp(['-w', '1', '--max-memory', '150M', '--memory-check-interval', '0.5']);
    const [pid] = await corral.waitForReadyWorkers(1);
    expect((await get({ port }, '/leak?mb=200')).status).toBe(200);
    const over = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('worker over --max-memory'), 15_000);
    expect(over.pid).toBe(pid);
    expect(over.rss).toBeGreaterThan(150 * 1024 * 1024);
    await corral.waitForLog((r) => r.msg === 'worker exited' && r.pid === pid && r.reason === 'max-memory', 15_000);
    const [replacement] = await corral.waitForReadyWorkers(1);
    expect(replacement).not.toBe(pid);
  });
});

describe('lifetime', () => {
  it('recycles workers after --max-worker-lifetime, replacement first', async () => {
    const { corral } = await startApp(['-w', '1', '--max-worker-lifetime', '1', '--memory-check-interval', '0.5']);
    const [first] = await corral.waitForReadyWorkers(1);
    const recycled = await corral.waitForLog((r) => r.msg === 'recycling worker: starting its replacement' && r.pid === first, 15_000);
    expect(recycled.reason).toBe('max-lifetime');
    await corral.waitForLog((r) => r.msg === 'worker exited' && r.pid === first && r.reason === 'max-lifetime', 15_000);
    // The replacement was ready before the old worker drained.
    const readyAt = corral.records.findIndex((r) => r.msg === 'worker ready' && r.pid !== first);
    const stoppedAt = corral.records.findIndex((r) => r.msg === 'worker exited' && r.pid === first);
    expect(readyAt).toBeGreaterThan(-1);
    expect(readyAt).toBeLessThan(stoppedAt);
  });
});

describe('scaling (TTIN / TTOU)', () => {
  it('adds and removes workers, the oldest first, never below one', async () => {
    const { corral, port } = await startApp(['-w', '2']);
    await corral.waitForReadyWorkers(2);
    corral.signal('SIGTTIN');
    const three = await corral.waitForReadyWorkers(3);
    expect(three).toHaveLength(3);
    corral.signal('SIGTTOU');
    await waitFor(() => corral.readyWorkerPids().length === 2, 15_000, 'two workers after TTOU');
    // The oldest by spawn time drains: the first worker booted.
    const scaledDown = await corral.waitForLog((r) => r.msg === 'scaling down');
    const firstBooted = corral.find((r) => r.msg === 'worker booting')[0]!.pid;
    expect(scaledDown.pid).toBe(firstBooted);
    await expectExited([scaledDown.pid as number], 15_000, 'the oldest worker, scaled down, still alive');
    corral.signal('SIGTTOU');
    await waitFor(() => corral.readyWorkerPids().length === 1, 15_000, 'one worker');
    corral.signal('SIGTTOU');
    await corral.waitForLog((r) => r.msg === 'not scaling down: corral keeps at least one worker');
    expect(corral.readyWorkerPids()).toHaveLength(1);
    expect((await get({ port })).status).toBe(200);
  });
});

describe('--pid', () => {
  it('writes the pid file, refuses a second corral on it, and removes it at exit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-pid-'));
    const pidFile = path.join(dir, 'corral.pid');
    const { corral } = await startApp(['-w', '1', '--pid', pidFile]);
    await corral.waitForReadyWorkers(1);
    expect(fs.readFileSync(pidFile, 'utf8').trim()).toBe(String(corral.pid));
    const second = startCorral(['-w', '1', '--pid', pidFile, '-b', `127.0.0.1:${await freePort()}`, '--app-dir', TEST_APPS, 'app:app']);
    expect(await second.waitForExit()).toBe(1);
    expect(second.output).toContain(`names a running process (${corral.pid})`);
    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
    expect(fs.existsSync(pidFile)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
