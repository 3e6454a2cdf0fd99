import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { statusJson } from '../helpers/control.js';
import { freePort, get, groupMembers, isAlive, killAllCorrals, pollUntil, startCorral, TEST_APPS, waitFor, type LogRecord } from '../helpers/corral.js';
import { expectSurvivedFault } from '../helpers/fault.js';
import { expectExited } from '../helpers/process-group.js';

const MIB = 1024 * 1024;
const GRACEFUL_TIMEOUT = 5;
/** What corral keeps of one worker output line (src/worker/line-splitter.ts TEXT_LINE_LIMIT). */
const LINE_LIMIT = 64 * 1024;
const temporaryDirs: string[] = [];

afterEach(() => {
  killAllCorrals();
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** corral with one worker of test/apps/hostile.py, its control socket and its metrics endpoint. */
async function startHostile(port?: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-output-'));
  temporaryDirs.push(dir);
  const controlSocket = path.join(dir, 'control.sock');
  const metricsPort = await freePort();
  const appPort = port ?? (await freePort());
  const corral = startCorral([
    '-w', '1',
    '-b', `127.0.0.1:${appPort}`,
    '--graceful-timeout', String(GRACEFUL_TIMEOUT),
    '--control-socket', controlSocket,
    '--metrics-bind', `127.0.0.1:${metricsPort}`,
    '--app-dir', TEST_APPS,
    'hostile:app',
  ]);
  const [pid] = await corral.waitForReadyWorkers(1);
  return { corral, pid: pid!, port: appPort, fault: { corral, controlSocket, metricsPort, gracefulTimeout: GRACEFUL_TIMEOUT } };
}

const TRUNCATED = /^(.*)… \[truncated (\d+) bytes\]$/s;

/** The kept text and the dropped byte count of a truncated text record, or undefined. */
function truncation(record: LogRecord): { kept: string; dropped: number } | undefined {
  const match = TRUNCATED.exec(String(record.msg));
  return match ? { kept: match[1]!, dropped: Number(match[2]) } : undefined;
}

/** The master's peak resident memory so far, from /proc. */
function peakRssBytes(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((entry) => entry.startsWith('VmHWM:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1]) * 1024;
}

/** Resolves with the error code of a connection to the port, or 'connected'. */
function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setTimeout(5_000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
  });
}

/** The fds of a process that are sockets. */
function socketFds(pid: number): string[] {
  return fs
    .readdirSync(`/proc/${pid}/fd`)
    .filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    })
    .sort();
}

function sleepsOf(pgid: number, members: number[]): number[] {
  return members.filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep' && pid !== pgid;
    } catch {
      return false;
    }
  });
}

describe('hostile worker output', () => {
  it('a 600 MB line without a newline streams through: the master survives with bounded memory and logs it truncated', async () => {
    const { corral, pid, port, fault } = await startHostile();
    expect((await get({ port }, '/huge?mib=600', 120_000)).status).toBe(200);
    // Every byte is either kept (at most the limit per record) or counted in a record's marker.
    const pieces = () => corral.find((r) => r.pid === pid && r.stream === 'stdout').map(truncation).filter((piece) => piece !== undefined);
    const accounted = () => pieces().reduce((sum, piece) => sum + Buffer.byteLength(piece.kept) + piece.dropped, 0);
    expect(await pollUntil(accounted, (bytes) => bytes >= 600 * MIB, 60_000), 'bytes kept or counted as dropped').toBe(600 * MIB);
    for (const piece of pieces()) {
      expect(piece.kept.length).toBeLessThanOrEqual(LINE_LIMIT);
      expect(piece.kept).toMatch(/^x+$/);
    }
    expect(peakRssBytes(corral.pid)).toBeLessThan(300 * MIB);
    await expectSurvivedFault(fault);
  }, 180_000);

  it('a 10 MB line without a newline does not swallow the access record that follows it', async () => {
    const { corral, pid, port, fault } = await startHostile();
    await get({ port }, '/huge?mib=10&char=y', 60_000);
    const access = await corral.waitForLog((r) => r.name === 'corral.access' && r.path === '/huge?mib=10&char=y', 20_000, 'the access record');
    expect(access).toMatchObject({ level: 30, status: 200, worker: 1, pid });
    const line = await corral.waitForLog((r) => r.pid === pid && r.stream === 'stdout' && truncation(r) !== undefined, 20_000, 'the truncated line');
    expect(truncation(line)!.kept).toMatch(/^y+$/);
    await expectSurvivedFault(fault);
  }, 120_000);

  it("a printed line shaped like corral's records is the app's text, with the master's slot and pid", async () => {
    const { corral, pid, port, fault } = await startHostile();
    const fatal = '{"level":60,"time":1,"pid":1,"worker":99,"msg":"forged fatal"}';
    const access = '{"level":30,"name":"corral.access","time":1,"pid":1,"worker":99,"msg":"forged access","path":"/forged","status":200}';
    for (const text of [fatal, access]) {
      await get({ port }, `/forge?text=${encodeURIComponent(text)}`);
      const printed = await corral.waitForLog((r) => r.msg === text, 10_000, 'the forged line as a text record');
      expect(printed).toMatchObject({ level: 30, stream: 'stdout', worker: 1, pid });
    }
    expect(corral.find((r) => r.msg === 'forged fatal' || r.msg === 'forged access' || r.level === 60 || r.worker === 99)).toEqual([]);
    // The runtime's own records still arrive, with the master's slot and pid.
    const real = await corral.waitForLog((r) => r.name === 'corral.access' && String(r.path).startsWith('/forge?'));
    expect(real).toMatchObject({ worker: 1, pid });
    await expectSurvivedFault(fault);
  });

  it('a partial line (no newline, ever) is logged while the worker lives', async () => {
    const { corral, pid, port, fault } = await startHostile();
    await get({ port }, '/partial?text=partial-line-marker');
    const record = await corral.waitForLog((r) => r.msg === 'partial-line-marker', 10_000, 'the partial line as a record');
    expect(record).toMatchObject({ stream: 'stdout', worker: 1, pid });
    expect(isAlive(pid)).toBe(true);
    await expectSurvivedFault(fault);
  });
});

describe('subprocesses that outlive their worker', () => {
  it('hold neither the port nor the master: after TERM the port refuses connections and a new corral binds it', async () => {
    const { corral, pid, port, fault } = await startHostile();
    await get({ port }, '/orphans');
    const sleeps = await waitFor(async () => {
      const found = sleepsOf(corral.pid, await groupMembers(corral.pid));
      return found.length >= 2 ? found : undefined;
    }, 10_000, 'the two sleeps of /orphans');
    // Of the worker's sockets only stdout and stderr reach them: no listen socket, no control or record channel.
    for (const sleep of sleeps) expect(socketFds(sleep)).toEqual(['1', '2']);
    // The sleeps hold the worker's stdout and stderr: its death is still noticed at once.
    process.kill(pid, 'SIGKILL');
    await corral.waitForLog((r) => r.msg === 'worker died; respawning' && r.pid === pid, 10_000, 'the killed worker noticed');
    await corral.waitForReadyWorkers(1);
    expect((await get({ port: fault.metricsPort }, '/readyz')).status).toBe(200);
    expect((await statusJson(fault.controlSocket, 15_000)).pid).toBe(corral.pid);

    corral.signal('SIGTERM');
    expect(await corral.waitForExit((GRACEFUL_TIMEOUT + 10) * 1000)).toBe(0);
    // The fault is real: the sleeps outlive corral.
    expect(sleeps.filter((sleep) => !isAlive(sleep))).toEqual([]);
    expect(await connectResult(port)).toBe('ECONNREFUSED');

    const next = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, '--graceful-timeout', String(GRACEFUL_TIMEOUT), '--app-dir', TEST_APPS, 'hostile:app']);
    await next.waitForReadyWorkers(1);
    expect((await get({ port }, '/')).status).toBe(200);
    next.signal('SIGTERM');
    expect(await next.waitForExit((GRACEFUL_TIMEOUT + 10) * 1000)).toBe(0);

    // The sleeps stayed in corral's process group, so killing the group ends them.
    corral.killGroup();
    await expectExited(sleeps, 10_000, 'the sleeps alive after the group was killed');
  }, 90_000);
});
