import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, groupMembers, isAlive, killAllCorrals, startCorral, TEST_APPS, waitFor, type Corral, type LogRecord } from '../helpers/corral.js';
import { expectSurvivedFault, type FaultTarget } from '../helpers/fault.js';
import { startLoad } from '../helpers/load.js';
import { parsePrometheusText, samplesOf } from '../helpers/prometheus.js';

const IS_ROOT = process.getuid?.() === 0;
const GRACEFUL_TIMEOUT = 5;

const temporaryDirs: string[] = [];
const mounts: string[] = [];
const heldFds: number[] = [];
const started: Corral[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-logs-'));
  temporaryDirs.push(dir);
  return dir;
}

/** A 256 KiB tmpfs: a disk that fills after about a thousand access records. */
function smallDisk(): string {
  const dir = tempDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Fills the disk that holds `dir` to the last byte. */
function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler');
  try {
    fs.writeFileSync(filler, Buffer.alloc(1024 * 1024));
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
  }
  return filler;
}

afterEach(async () => {
  killAllCorrals();
  // The master holds files on the tmpfs until it is gone.
  const pids = started.splice(0).map((corral) => corral.pid);
  await waitFor(async () => (await Promise.all(pids.map(groupMembers))).every((members) => members.length === 0), 10_000, 'the killed groups to be gone');
  for (const fd of heldFds.splice(0)) fs.closeSync(fd);
  for (const dir of mounts.splice(0)) execFileSync('umount', [dir]);
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A corral with what expectSurvivedFault needs: a metrics port, a control socket, a graceful bound. */
async function startFaultCorral(args: readonly string[], stdout?: number): Promise<FaultTarget & { port: number }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const controlSocket = path.join(tempDir(), 'control.sock');
  const corral = startCorral(
    [
      '-w', '2',
      '-b', `127.0.0.1:${port}`,
      '--metrics-bind', `127.0.0.1:${metricsPort}`,
      '--control-socket', controlSocket,
      '--graceful-timeout', String(GRACEFUL_TIMEOUT),
      ...args,
      '--app-dir', TEST_APPS,
      'app:app',
    ],
    stdout === undefined ? {} : { stdout },
  );
  started.push(corral);
  // With stdout elsewhere the helper reads no records: readiness comes from /readyz.
  await waitFor(async () => (await get({ port: metricsPort }, '/readyz').catch(() => undefined))?.status === 200, 30_000, `/readyz; stderr:\n${corral.stderr}`);
  return { corral, port, metricsPort, controlSocket, gracefulTimeout: GRACEFUL_TIMEOUT };
}

async function droppedRecords(metricsPort: number, sink: string): Promise<number> {
  const families = parsePrometheusText((await get({ port: metricsPort }, '/metrics')).body);
  return samplesOf(families, 'corral_log_records_dropped_total', { sink })[0]?.value ?? 0;
}

/** The records of a log file that parse (a line being written may be cut). */
function recordsIn(file: string): LogRecord[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogRecord];
      } catch {
        return [];
      }
    });
}

function warningsAbout(corral: Corral, sink: string): string[] {
  return corral.stderr.split('\n').filter((line) => line.startsWith('corral: warning: ') && line.includes(`{sink="${sink}"}`));
}

/** Sends `count` requests, `connections` at a time, and expects every one answered 200. */
async function expectAllAnswered(port: number, count: number, connections = 8): Promise<void> {
  const load = startLoad({ port, connections, keepAlive: true, maxMs: 120_000 });
  await waitFor(() => load.result.ok + load.result.failed >= count, 125_000, `${count} requests`);
  const result = await load.stop();
  expect(result.failed, `failures: ${result.errors.slice(0, 5).join(', ')}`).toBe(0);
  expect(result.ok).toBeGreaterThanOrEqual(count);
}

/** Sends requests until `check` holds: the log is written again once a record comes. */
async function requestUntil(port: number, check: () => boolean, what: string): Promise<void> {
  await waitFor(
    async () => {
      expect((await get({ port })).status).toBe(200);
      return check();
    },
    20_000,
    what,
  );
}

describe('defect 1: a log write error does not kill the master', () => {
  it.skipIf(!IS_ROOT)('--access-logfile on a full disk (a 256 KiB tmpfs; mounting needs root): every request answered, records dropped and counted with one warning, logging again once there is room', async () => {
    const accessLog = path.join(smallDisk(), 'access.log');
    const target = await startFaultCorral(['--access-logfile', accessLog]);
    const { corral, port, metricsPort } = target;

    await expectAllAnswered(port, 4000);
    expect(isAlive(corral.pid)).toBe(true);
    await waitFor(() => warningsAbout(corral, 'access-logfile').length > 0, 10_000, `the warning; stderr:\n${corral.stderr}`);
    expect(warningsAbout(corral, 'access-logfile')).toEqual([
      `corral: warning: the access log file ${accessLog} cannot be written (ENOSPC: no space left on device); log records are dropped until it can be written again (counted in corral_log_records_dropped_total{sink="access-logfile"})`,
    ]);
    expect(await droppedRecords(metricsPort, 'access-logfile')).toBeGreaterThan(0);

    // Room again (logrotate's copytruncate does the same): the next records are written, after one
    // that says how many were lost.
    fs.truncateSync(accessLog, 0);
    const written = (name: string) => recordsIn(accessLog).some((record) => record.name === name);
    await requestUntil(port, () => written('corral.access') && written('corral.log'), 'access records in the file again, and the record of the gap');
    const gap = recordsIn(accessLog).find((record) => record.name === 'corral.log');
    expect(gap?.sink).toBe('access-logfile');
    expect(gap?.dropped).toBe(await droppedRecords(metricsPort, 'access-logfile'));
    expect(gap?.msg).toBe(`${gap?.dropped} log records were dropped: the access log file ${accessLog} could not be written (ENOSPC: no space left on device)`);
    expect(corral.stderr).toMatch(/corral: note: the access log file .* is written again; \d+ log records were dropped/);

    await expectSurvivedFault(target);
  });

  it.skipIf(!IS_ROOT)('stdout redirected to a file on a full disk (a tmpfs; mounting needs root): the master serves on, counts what it drops, and writes again once there is room', async () => {
    const disk = smallDisk();
    const stdoutFile = path.join(disk, 'stdout.log');
    const stdout = fs.openSync(stdoutFile, 'a');
    heldFds.push(stdout);
    const filler = fillDisk(disk);
    const target = await startFaultCorral([], stdout);
    const { corral, port, metricsPort } = target;

    await expectAllAnswered(port, 500);
    expect(isAlive(corral.pid)).toBe(true);
    expect(warningsAbout(corral, 'stdout')).toEqual([
      'corral: warning: stdout cannot be written (ENOSPC: no space left on device); log records are dropped until it can be written again (counted in corral_log_records_dropped_total{sink="stdout"})',
    ]);
    expect(await droppedRecords(metricsPort, 'stdout')).toBeGreaterThan(0);

    fs.truncateSync(filler, 0);
    const written = (name: string) => recordsIn(stdoutFile).some((record) => record.name === name);
    await requestUntil(port, () => written('corral.access') && written('corral.log'), 'access records on stdout again, and the record of the gap');
    expect(recordsIn(stdoutFile).find((record) => record.name === 'corral.log')?.msg).toMatch(/^\d+ log records were dropped: stdout could not be written \(ENOSPC/);

    await expectSurvivedFault(target);
  });
});

describe('defect 4: a stdout nobody reads does not stop the master', () => {
  /** A real pipe for the master's stdout whose read end the test holds and does not read. */
  function unreadPipe(): { writer: number; reader: number } {
    const fifo = path.join(tempDir(), 'stdout.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writer = fs.openSync(fifo, fs.constants.O_WRONLY);
    heldFds.push(reader, writer);
    return { writer, reader };
  }

  /** Access records of about 8 KiB each (the path is in two fields): the 64 KiB pipe, then corral's queue, fill fast. */
  async function fillStdout(port: number, requests: number): Promise<void> {
    const bigPath = `/?fill=${'x'.repeat(4000)}`;
    for (let sent = 0; sent < requests; sent += 4) {
      const request = () => get({ port }, bigPath).catch((error: Error) => Promise.reject(new Error(error.message.replace(bigPath, '/?fill=…'))));
      const replies = await Promise.all(Array.from({ length: 4 }, request));
      for (const reply of replies) expect(reply.status).toBe(200);
    }
  }

  it('with the pipe full, requests are answered, the control socket, /readyz and TERM work; records are dropped, counted, warned about once', async () => {
    const { writer } = unreadPipe();
    const target = await startFaultCorral([], writer);
    const { corral, port, metricsPort } = target;

    await fillStdout(port, 400);
    await waitFor(() => warningsAbout(corral, 'stdout').length > 0, 10_000, `the warning; stderr:\n${corral.stderr}`);
    expect(warningsAbout(corral, 'stdout')).toEqual([
      'corral: warning: stdout is not being read: 1048576 bytes of log records wait; newer records are dropped until it drains (counted in corral_log_records_dropped_total{sink="stdout"})',
    ]);
    expect(await droppedRecords(metricsPort, 'stdout')).toBeGreaterThan(0);

    // TERM while the pipe is still full: the exit does not wait for a reader.
    await expectSurvivedFault(target);
  });

  it('once the reader reads again, the records flow again, after one that says how many were lost', async () => {
    const { writer, reader } = unreadPipe();
    const target = await startFaultCorral([], writer);
    const { corral, port } = target;
    await fillStdout(port, 400);
    await waitFor(() => warningsAbout(corral, 'stdout').length > 0, 10_000, `the warning; stderr:\n${corral.stderr}`);

    let received = '';
    const reading = new net.Socket({ fd: reader, readable: true, writable: false });
    heldFds.splice(heldFds.indexOf(reader), 1);
    reading.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    try {
      await requestUntil(port, () => received.includes('"name":"corral.log"'), 'the record of the dropped records on stdout');
      expect(received).toMatch(/"msg":"\d+ log records were dropped: stdout was not read fast enough"/);
      expect(corral.stderr).toMatch(/corral: note: stdout is written again; \d+ log records were dropped/);
      await expectSurvivedFault(target);
    } finally {
      reading.destroy();
    }
  });
});
