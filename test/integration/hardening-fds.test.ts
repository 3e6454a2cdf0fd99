import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, isAlive, killAllCorrals, pollUntil, ROOT, startCorral, TEST_APPS, waitFor, type Corral, type LogRecord } from '../helpers/corral.js';
import { expectSurvivedFault } from '../helpers/fault.js';

const GRACEFUL = 5;
/** The connections --metrics-bind holds at most (docs/observability.md). */
const METRICS_MAX_CONNECTIONS = 64;
const temporaryDirs: string[] = [];
const cleanups: (() => void)[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-fds-'));
  temporaryDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  killAllCorrals();
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Opens `count` TCP connections that never send a byte; resolves once each is connected or closed. */
async function holdIdleConnections(port: number, count: number): Promise<net.Socket[]> {
  const sockets = Array.from({ length: count }, () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    return socket;
  });
  cleanups.push(() => sockets.forEach((socket) => socket.destroy()));
  await waitFor(() => sockets.every((socket) => !socket.connecting), 20_000, 'every idle connection to connect or fail');
  return sockets;
}

/** Connections waiting in the accept queue of the IPv4 socket listening on `port` (/proc/net/tcp). */
function acceptQueue(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // fields[1] is the local address, fields[3] the state (0A = LISTEN), fields[4] tx_queue:rx_queue.
    if (fields[1] === local && fields[3] === '0A') return parseInt(fields[4]!.split(':')[1]!, 16);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** The soft and hard RLIMIT_NOFILE of a running process. */
function fdLimits(pid: number): { soft: number; hard: number } {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map(Number);
  return { soft: soft!, hard: hard! };
}

/** The lowest descriptor number the process does not use: with the soft limit there, it can open none. */
function lowestFreeFd(pid: number): number {
  const used = new Set(fs.readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (used.has(fd)) fd += 1;
  return fd;
}

function setSoftFdLimit(pid: number, soft: number, hard: number): void {
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`]);
}

/** The app answers with the pid of the worker that served it. */
async function servingPid(port: number): Promise<number> {
  const reply = await get({ port }, '/');
  expect(reply.status).toBe(200);
  return Number(reply.body);
}

const spawnFailed = (record: LogRecord) => record.msg === 'worker spawn failed; retrying after the backoff';

describe('file descriptor exhaustion', () => {
  it('under a 256-fd limit, 300 idle connections to --metrics-bind are capped and timed out: a killed worker is replaced', async () => {
    const dir = tempDir();
    const port = await freePort();
    const metricsPort = await freePort();
    const controlSocket = path.join(dir, 'control.sock');
    const corral = startCorral(
      ['-w', '2', '-b', `127.0.0.1:${port}`, '--metrics-bind', `127.0.0.1:${metricsPort}`, '--control-socket', controlSocket,
        '--graceful-timeout', String(GRACEFUL), '--app-dir', TEST_APPS, 'app:app'],
      { wrapper: ['prlimit', '--nofile=256:256'] },
    );
    const [first] = await corral.waitForReadyWorkers(2);

    const idle = await holdIdleConnections(metricsPort, 300);
    // The master has taken every connection it will (held, or closed at once).
    await waitFor(() => acceptQueue(metricsPort) === 0, 10_000, 'the master to accept the idle connections');
    // A worker dies while the clients hold on: its replacement needs descriptors of the master.
    process.kill(first!, 'SIGKILL');
    const serving = await pollUntil(() => corral.readyWorkerPids().filter((pid) => pid !== first), (pids) => pids.length >= 2, 20_000);
    expect(serving, `ready workers besides the killed ${first}; log so far:\n${corral.output.slice(-3000)}`).toHaveLength(2);
    expect(corral.find(spawnFailed)).toEqual([]);
    expect(await servingPid(port)).toBeGreaterThan(0);

    // Those over the cap were turned away at once, and the log says so.
    const open = () => idle.filter((socket) => !socket.destroyed && !socket.readableEnded).length;
    await expect.poll(open, { timeout: 10_000, message: 'idle connections the master holds' }).toBeLessThanOrEqual(METRICS_MAX_CONNECTIONS);
    await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('metrics endpoint: connections refused'), 10_000, 'the cap warning');

    // The idle clients never send a request: corral closes their connections itself.
    await expect.poll(open, { timeout: 30_000, message: 'idle connections left open by corral' }).toBe(0);
    expect((await get({ port: metricsPort }, '/healthz')).status).toBe(200);
    await expectSurvivedFault({ corral, controlSocket, metricsPort, gracefulTimeout: GRACEFUL });
  });

  it('a respawn that fails for want of descriptors is logged and retried with backoff; the slot is refilled once they are back', async () => {
    const dir = tempDir();
    const port = await freePort();
    const metricsPort = await freePort();
    const controlSocket = path.join(dir, 'control.sock');
    // Spawned workers: a spawn needs descriptors of the master's own (pipes, the exec error pipe), while
    // a fork needs only the connections the killed worker freed (fork-server.test.ts replaces one so).
    const corral = startCorral([
      '-w', '2', '-b', `127.0.0.1:${port}`, '--metrics-bind', `127.0.0.1:${metricsPort}`, '--control-socket', controlSocket,
      '--graceful-timeout', String(GRACEFUL), '--start-method', 'spawn', '--app-dir', TEST_APPS, 'app:app',
    ]);
    const [victim, survivor] = await corral.waitForReadyWorkers(2);
    const limits = fdLimits(corral.pid);
    // Not one descriptor more than the master holds now: the killed worker's pipes free too few for a spawn.
    setSoftFdLimit(corral.pid, lowestFreeFd(corral.pid), limits.hard);
    let restored = false;
    const restore = () => {
      if (!restored && isAlive(corral.pid)) setSoftFdLimit(corral.pid, limits.soft, limits.hard);
      restored = true;
    };
    cleanups.push(restore);

    process.kill(victim!, 'SIGKILL');
    const failure = await corral.waitForLog(spawnFailed, 15_000, 'the spawn failure');
    expect(String(failure.error)).toContain('EMFILE');
    expect(failure.reason).toBe('spawn-failed');
    expect(failure.delay).toBeTypeOf('number');
    // The master lives, and the other worker serves meanwhile.
    expect(isAlive(corral.pid)).toBe(true);
    expect(await servingPid(port)).toBe(survivor);
    // A USR2 upgrade cannot start its new master either: it fails, and this master serves on.
    setSoftFdLimit(corral.pid, lowestFreeFd(corral.pid), limits.hard);
    corral.signal('SIGUSR2');
    const upgrade = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('upgrade failed'), 15_000, 'the failed upgrade');
    expect(String(upgrade.error)).toContain('EMFILE');
    expect(isAlive(corral.pid)).toBe(true);

    restore();
    const [refill] = await waitFor(
      () => {
        const fresh = corral.readyWorkerPids().filter((pid) => pid !== victim && pid !== survivor);
        return fresh.length > 0 ? fresh : undefined;
      },
      45_000,
      `the slot to be refilled; log so far:\n${corral.output.slice(-3000)}`,
    );
    await waitFor(async () => (await servingPid(port)) === refill, 20_000, `the new worker ${refill} to serve`);
    await expectSurvivedFault({ corral, controlSocket, metricsPort, gracefulTimeout: GRACEFUL });
  });

  it('an uncaught exception in the master removes the pid file and the control socket before it exits 1', async () => {
    const dir = tempDir();
    const pidFile = path.join(dir, 'corral.pid');
    const socketPath = path.join(dir, 'corral.control.sock');
    // The master's own modules, as master.ts wires them; the exception is thrown from a timer, as a
    // bug in an event handler would be.
    const script = `
      import pino from 'pino';
      import { installCrashHandler, onCrash } from './dist/platform/crash.js';
      import { writePidFile } from './dist/platform/pidfile.js';
      import { ControlServer } from './dist/control/server.js';
      const log = pino();
      installCrashHandler(log);
      onCrash(writePidFile(${JSON.stringify(pidFile)}));
      await ControlServer.listen(${JSON.stringify(socketPath)}, { status: () => ({}), reload() {}, scale() {}, stop() {} }, log);
      process.stdout.write('{"msg":"up"}\\n');
      setTimeout(() => { throw new Error('a bug in the master'); }, 50);
      setInterval(() => undefined, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => child.kill('SIGKILL'));
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    expect(stdout).toContain('"msg":"up"');
    expect(code).toBe(1);
    const fatal = stdout.split('\n').filter((line) => line.includes('"level":60'));
    expect(fatal.join('\n')).toContain('corral crashed');
    expect(fatal.join('\n')).toContain('a bug in the master');
    expect(fs.existsSync(pidFile)).toBe(false);
    expect(fs.existsSync(socketPath)).toBe(false);
  });
});

/** A unix socket server that is not corral: it accepts connections and never answers. */
async function squatter(socketPath: string): Promise<{ server: net.Server; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  cleanups.push(() => server.close());
  return { server, connections: () => connections };
}

const noControlSocket = (record: LogRecord) => typeof record.msg === 'string' && record.msg.startsWith('no control socket:');

describe('control socket path taken', () => {
  async function startWithPidFile(dir: string): Promise<{ corral: Corral; metricsPort: number; pidFile: string }> {
    const pidFile = path.join(dir, 'corral.pid');
    const metricsPort = await freePort();
    const corral = startCorral([
      '-w', '1', '-b', `127.0.0.1:${await freePort()}`, '--metrics-bind', `127.0.0.1:${metricsPort}`, '--pid', pidFile,
      '--graceful-timeout', String(GRACEFUL), '--app-dir', TEST_APPS, 'app:app',
    ]);
    return { corral, metricsPort, pidFile };
  }

  it('a live socket of another program beside the pid file: corral warns and serves without a control socket', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'corral.control.sock');
    const other = await squatter(socketPath);
    const { corral, metricsPort, pidFile } = await startWithPidFile(dir);
    await corral.waitForReadyWorkers(1);
    const warning = await corral.waitForLog(noControlSocket, 5_000, 'the warning');
    expect(warning.level).toBe(40);
    expect(warning.controlSocket).toBe(socketPath);
    expect(String(warning.msg)).toContain("another program is listening there (it does not answer corral's control protocol)");
    expect(fs.readFileSync(pidFile, 'utf8').trim()).toBe(String(corral.pid));
    // The other program's socket is untouched.
    expect(other.server.listening).toBe(true);
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
    await expectSurvivedFault({ corral, controlSocket: undefined, metricsPort, gracefulTimeout: GRACEFUL });
    expect(fs.existsSync(socketPath)).toBe(true);
  });

  it.skipIf(process.getuid?.() !== 0)('a socket of another user beside the pid file is neither connected to nor removed (needs root to chown)', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'corral.control.sock');
    const other = await squatter(socketPath);
    fs.chownSync(socketPath, 65534, 65534);
    const { corral, metricsPort } = await startWithPidFile(dir);
    await corral.waitForReadyWorkers(1);
    const warning = await corral.waitForLog(noControlSocket, 5_000, 'the warning');
    expect(String(warning.reason)).toContain('a socket of another user (uid 65534)');
    expect(other.connections()).toBe(0);
    await expectSurvivedFault({ corral, controlSocket: undefined, metricsPort, gracefulTimeout: GRACEFUL });
    expect(fs.statSync(socketPath).uid).toBe(65534);
    expect(other.connections()).toBe(0);
  });

  it('the same socket given with --control-socket: corral refuses to start, exit 1, with the reason', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'taken.sock');
    await squatter(socketPath);
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '--control-socket', socketPath, '--app-dir', TEST_APPS, 'app:app']);
    expect(await corral.waitForExit()).toBe(1);
    expect(corral.output).toContain(
      `--control-socket ${socketPath}: another program is listening there (it does not answer corral's control protocol); remove it, or pass another --control-socket`,
    );
    expect(corral.find((r) => r.msg === 'worker booting')).toEqual([]);
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
  });
});
