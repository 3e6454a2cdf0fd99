import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Corral, freePort, get, groupMembers, isAlive, killAllCorrals, runCorralCommand, startCorral, TEST_APPS, waitFor } from '../helpers/corral.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  killAllCorrals();
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-fork-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The parent of a live process, from /proc. */
function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The fork servers that reported ready, in order. */
function forkServers(corral: Corral): number[] {
  return corral.find((r) => r.msg === 'fork server ready').map((r) => r.pid as number);
}

/** An app in `dir` (module `module`) answering `{expression} {pid}`, the expression being Python after `preamble`. */
function pidApp(dir: string, module: string, preamble: string[], expression: string): void {
  fs.writeFileSync(
    path.join(dir, `${module}.py`),
    [
      'import os',
      ...preamble,
      'async def app(scope, receive, send):',
      '    if scope["type"] != "http":',
      '        return',
      `    body = f"{${expression}} {os.getpid()}".encode()`,
      '    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})',
      '    await send({"type": "http.response.body", "body": body})',
      '',
    ].join('\n'),
  );
}

/** An app answering its version and pid: `version` is put in a file of a directory of its own. */
function versionedApp(dir: string, version: string): void {
  pidApp(dir, 'versioned', [`VERSION = ${JSON.stringify(version)}`], 'VERSION');
}

/** An app answering $APP_COLOUR and its pid. */
function colourApp(dir: string): void {
  pidApp(dir, 'colour', [], "os.environ.get('APP_COLOUR')");
}

/** Asks until every pid of `pids` has answered; returns each pid's body. */
async function answersFrom(port: number, pids: readonly number[], urlPath = '/'): Promise<Map<number, string>> {
  const seen = new Map<number, string>();
  await waitFor(
    async () => {
      const reply = await get({ port }, urlPath);
      expect(reply.status).toBe(200);
      const pid = reply.body.split(' ').map(Number).find((word) => pids.includes(word));
      if (pid !== undefined) seen.set(pid, reply.body);
      return pids.every((pid) => seen.has(pid));
    },
    15_000,
    `answers from ${pids.join(', ')}`,
  );
  return seen;
}

/** corral with two workers of the v1 app in a temp dir of its own; --preload unless other options are given. */
async function startVersioned(options: readonly string[] = ['--preload']): Promise<{ dir: string; port: number; corral: Corral; old: number[] }> {
  const dir = tempDir();
  versionedApp(dir, 'v1');
  const port = await freePort();
  const corral = startCorral([...options, '-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', dir, 'versioned:app']);
  return { dir, port, corral, old: await corral.waitForReadyWorkers(2) };
}

/** Writes VERSION of the app, sends HUP and returns the two workers of the new generation, each serving VERSION. */
async function rollTo(corral: Corral, dir: string, port: number, old: readonly number[], version: string): Promise<number[]> {
  versionedApp(dir, version);
  corral.signal('SIGHUP');
  await corral.waitForLog((r) => r.msg === 'rolling restart complete', 30_000);
  const fresh = await waitFor(
    () => {
      const live = corral.readyWorkerPids().filter((pid) => !old.includes(pid));
      return live.length === 2 ? live : undefined;
    },
    15_000,
    `two workers of the ${version} generation`,
  );
  expect([...(await answersFrom(port, fresh)).values()].every((body) => body.startsWith(`${version} `))).toBe(true);
  return fresh;
}

describe('the fork server (the default start method)', () => {
  it('forks every worker from one fork server, which reports its preload', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '3', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(3);
    const [server] = forkServers(corral);
    expect(forkServers(corral)).toHaveLength(1);
    expect(corral.find((r) => r.msg === 'fork server ready')[0]).toMatchObject({ forkServer: 1, preloaded: expect.any(Number) });
    for (const pid of pids) expect(parentOf(pid)).toBe(server);
    expect(parentOf(server!)).toBe(corral.pid);
    await answersFrom(port, pids);
  });

  it('gives each worker its own random numbers', async () => {
    const port = await freePort();
    // --preload: the random module's state is the fork server's until the child reseeds it.
    const corral = startCorral(['-w', '2', '--preload', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const answers = await answersFrom(port, pids, '/random');
    const numbers = [...answers.values()].map((body) => body.split(' ')[1]);
    expect(numbers).toHaveLength(2);
    expect(numbers[0]).not.toBe(numbers[1]);
  });

  it.each([
    ['its imports preloaded', []],
    ['--preload', ['--preload']],
  ])('numpy (%s): OpenBLAS\'s threads do not stop forking, and each worker draws its own numbers', async (_name, options) => {
    const port = await freePort();
    const corral = startCorral([...options, '-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'numpy_app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    expect(corral.find((r) => r.level === 40 && typeof r.msg === 'string' && r.msg.includes('thread'))).toEqual([]);
    const [server] = forkServers(corral);
    for (const pid of pids) expect(parentOf(pid)).toBe(server);
    const bodies = [...(await answersFrom(port, pids)).values()];
    const draws = bodies.map((body) => body.split(' ')[1]);
    expect(new Set(draws).size).toBe(2);
    for (const body of bodies) expect(body.split(' ')[2]).toBe('64.0');
  });

  it('a fork server killed with SIGKILL: its workers keep serving, and the next respawn forks from a new one', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const [first] = forkServers(corral);
    process.kill(first!, 'SIGKILL');
    await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('the fork server exited') && r.signal === 'SIGKILL');
    await waitFor(() => !isAlive(first!), 5_000, 'the fork server to be gone');
    // Both workers are alive and serve: their channels are the master's, not the fork server's.
    await answersFrom(port, pids);
    process.kill(pids[0]!, 'SIGKILL');
    await corral.waitForLog((r) => r.msg === 'worker died; respawning' && r.pid === pids[0]);
    const [replacement] = await waitFor(
      () => {
        const fresh = corral.readyWorkerPids().filter((pid) => !pids.includes(pid));
        return fresh.length > 0 ? fresh : undefined;
      },
      20_000,
      'the replacement worker',
    );
    const servers = forkServers(corral);
    expect(servers).toHaveLength(2);
    expect(parentOf(replacement!)).toBe(servers[1]);
    await answersFrom(port, [replacement!, pids[1]!]);
    // The orphan still ends with the master's stop, as its siblings do.
    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
    await waitFor(() => !isAlive(pids[1]!), 5_000, 'the orphaned worker to exit');
  });

  it('a master killed with SIGKILL leaves no fork server and no worker after a second', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const servers = forkServers(corral);
    expect(servers).toHaveLength(1);
    process.kill(corral.pid, 'SIGKILL');
    await corral.waitForExit(5_000);
    const killedAt = Date.now();
    await waitFor(() => [...pids, ...servers].every((pid) => !isAlive(pid)), 1_000, 'the fork server and every worker to exit within 1 s of the master');
    expect(Date.now() - killedAt).toBeLessThanOrEqual(1_000);
    expect(await groupMembers(corral.pid)).toEqual([]);
  });

  it('--preload + HUP: a new fork server imports the new code, the old one exits with its workers', async () => {
    const { dir, port, corral, old } = await startVersioned();
    expect([...(await answersFrom(port, old)).values()].every((body) => body.startsWith('v1 '))).toBe(true);
    const [firstServer] = forkServers(corral);
    const fresh = await rollTo(corral, dir, port, old, 'v2');
    const servers = forkServers(corral);
    expect(servers).toHaveLength(2);
    for (const pid of fresh) expect(parentOf(pid)).toBe(servers[1]);
    // Retired, the first generation's fork server exits once its last worker has drained.
    await waitFor(() => !isAlive(firstServer!), 15_000, 'the old fork server to exit');
  });

  it('HUP without --preload: the running fork server checks its preload and forks the new generation, which serves the new code', async () => {
    const { dir, port, corral, old } = await startVersioned([]);
    const [server] = forkServers(corral);
    const fresh = await rollTo(corral, dir, port, old, 'v2');
    // The app's own modules were never imported in the fork server: the same one forks the new code.
    expect(corral.find((r) => r.msg === 'fork server refreshed for the new generation')).toEqual([expect.objectContaining({ forkServer: 2, pid: server })]);
    expect(forkServers(corral)).toEqual([server]);
    for (const pid of fresh) expect(parentOf(pid)).toBe(server);
    // It serves on: the old generation's end does not retire it.
    await rollTo(corral, dir, port, fresh, 'v3');
    expect(isAlive(server!)).toBe(true);
    expect(forkServers(corral)).toEqual([server]);
  });

  it('HUP after the --env-file changed: a fresh fork server, whose workers see the new value', async () => {
    const dir = tempDir();
    const envFile = path.join(dir, 'app.env');
    fs.writeFileSync(envFile, 'APP_COLOUR=blue\n');
    colourApp(dir);
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', dir, '--env-file', envFile, 'colour:app']);
    const old = await corral.waitForReadyWorkers(2);
    expect([...(await answersFrom(port, old)).values()].every((body) => body.startsWith('blue '))).toBe(true);
    const [first] = forkServers(corral);
    // The fork server loaded the file into its environment, which its forked workers inherit.
    fs.writeFileSync(envFile, 'APP_COLOUR=green\n');
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'rolling restart complete', 30_000);
    const changed = corral.find((r) => typeof r.msg === 'string' && r.msg.includes('changed on disk'));
    expect(changed).toEqual([expect.objectContaining({ forkServer: 2, files: [envFile] })]);
    const servers = forkServers(corral);
    expect(servers).toHaveLength(2);
    const fresh = corral.readyWorkerPids().filter((pid) => !old.includes(pid));
    expect(fresh).toHaveLength(2);
    for (const pid of fresh) expect(parentOf(pid)).toBe(servers[1]);
    expect([...(await answersFrom(port, fresh)).values()].every((body) => body.startsWith('green '))).toBe(true);
    await waitFor(() => !isAlive(first!), 15_000, 'the first fork server to exit with its generation');
  });

  it('HUP after the config file changed the environment: a fresh fork server, whose workers see the new value', async () => {
    const dir = tempDir();
    const conf = path.join(dir, 'corral.conf.py');
    fs.writeFileSync(conf, 'raw_env = ["APP_COLOUR=blue"]\n');
    colourApp(dir);
    const port = await freePort();
    const corral = startCorral(['-c', conf, '-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', dir, 'colour:app']);
    const old = await corral.waitForReadyWorkers(2);
    expect([...(await answersFrom(port, old)).values()].every((body) => body.startsWith('blue '))).toBe(true);
    // The environment is the fork server's, inherited by each fork: a changed one needs a new fork server.
    fs.writeFileSync(conf, 'raw_env = ["APP_COLOUR=green"]\n');
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'rolling restart complete', 30_000);
    expect(corral.find((r) => r.msg === 'fork server refreshed for the new generation')).toEqual([]);
    const servers = forkServers(corral);
    expect(servers).toHaveLength(2);
    const fresh = corral.readyWorkerPids().filter((pid) => !old.includes(pid));
    for (const pid of fresh) expect(parentOf(pid)).toBe(servers[1]);
    expect([...(await answersFrom(port, fresh)).values()].every((body) => body.startsWith('green '))).toBe(true);
  });

  it('a forked worker ends without the interpreter\'s teardown, but runs the atexit handlers the app registered', async () => {
    const dir = tempDir();
    const marks = path.join(dir, 'marks');
    fs.mkdirSync(marks);
    fs.writeFileSync(
      path.join(dir, 'leaving.py'),
      [
        'import atexit, os',
        `MARKS = ${JSON.stringify(marks)}`,
        'atexit.register(lambda: open(os.path.join(MARKS, str(os.getpid())), "w").close())',
        'async def app(scope, receive, send):',
        '    if scope["type"] == "lifespan":',
        '        while True:',
        '            message = await receive()',
        '            await send({"type": message["type"] + ".complete"})',
        '            if message["type"] == "lifespan.shutdown":',
        '                return',
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', dir, 'leaving:app']);
    const pids = await corral.waitForReadyWorkers(2);
    corral.signal('SIGTERM');
    expect(await corral.waitForExit(30_000)).toBe(0);
    expect(fs.readdirSync(marks).map(Number).sort()).toEqual([...pids].sort());
  });

  it('corral status --json shows the fork server (pid, generation) and the workers', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'control.sock');
    const port = await freePort();
    const corral = startCorral(['-w', '2', '--control-socket', socket, '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const result = await runCorralCommand(['status', '--json', '--control-socket', socket]);
    expect(result.code).toBe(0);
    const status = JSON.parse(result.stdout) as { workers: { pid: number }[]; forkServers: { pid: number; generation: number; state: string; workers: number }[] };
    expect(status.workers.map((worker) => worker.pid).sort()).toEqual([...pids].sort());
    expect(status.forkServers).toEqual([
      expect.objectContaining({ pid: forkServers(corral)[0], generation: 1, state: 'ready', workers: 2, pssBytes: expect.any(Number), ussBytes: expect.any(Number) }),
    ]);
    const table = await runCorralCommand(['status', '--control-socket', socket]);
    expect(table.stdout.split('\n')[0]).toMatch(new RegExp(`; fork server ${forkServers(corral)[0]} \\(generation 1, PSS [\\d.]+ MiB\\)$`));
  });

  it('/metrics has each fork server\'s memory, and the workers\' rows as before', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const corral = startCorral(['-w', '2', '--metrics-bind', `127.0.0.1:${metricsPort}`, '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const [server] = forkServers(corral);
    const text = (await get({ port: metricsPort }, '/metrics')).body;
    for (const kind of ['pss', 'uss', 'rss']) {
      expect(text).toMatch(new RegExp(`^corral_fork_server_memory_bytes\\{generation="1",pid="${server}",kind="${kind}"\\} [1-9]\\d*$`, 'm'));
    }
    for (const pid of pids) expect(text).toMatch(new RegExp(`^corral_worker_unique_memory_bytes\\{worker="\\d+",pid="${pid}"\\} [1-9]\\d*$`, 'm'));
  });

  it('under the fd limit that stops a spawn, a killed worker is still replaced: a fork needs only the connections it freed', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const [victim, survivor] = await corral.waitForReadyWorkers(2);
    const used = new Set(fs.readdirSync(`/proc/${corral.pid}/fd`).map(Number));
    let lowestFree = 0;
    while (used.has(lowestFree)) lowestFree += 1;
    execFileSync('prlimit', ['--pid', String(corral.pid), `--nofile=${lowestFree}:`]);
    process.kill(victim!, 'SIGKILL');
    const [replacement] = await waitFor(
      () => {
        const fresh = corral.readyWorkerPids().filter((pid) => pid !== victim && pid !== survivor);
        return fresh.length > 0 ? fresh : undefined;
      },
      20_000,
      'the replacement worker',
    );
    expect(corral.find((r) => r.msg === 'worker spawn failed; retrying after the backoff')).toEqual([]);
    await answersFrom(port, [replacement!, survivor!]);
  });
});

describe('fork safety', () => {
  it('an app that starts a thread at import with --preload: one warning names the thread, the workers are spawned and serve', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '2', '--preload', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'thread_at_import:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const warnings = corral.find((r) => r.level === 40 && typeof r.msg === 'string' && r.msg.includes('app-metrics-exporter'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ forkServer: 1, threads: ['app-metrics-exporter'] });
    expect(String(warnings[0]!.msg)).toContain('spawned instead');
    for (const pid of pids) expect(parentOf(pid)).toBe(corral.pid);
    await answersFrom(port, pids);
    // The unusable fork server is not kept.
    const [server] = forkServers(corral);
    await waitFor(() => !isAlive(server!), 5_000, 'the fork server with threads to exit');
  });

  it('an app that opens a socket at import with --preload: the fork server names it, post_fork opens each worker its own', async () => {
    const receiver = dgram.createSocket('udp4');
    cleanups.push(() => receiver.close());
    const datagrams: { pid: number; port: number }[] = [];
    receiver.on('message', (message, from) => datagrams.push({ pid: Number(message.toString()), port: from.port }));
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const udpPort = receiver.address().port;
    const port = await freePort();
    const corral = startCorral(
      ['-w', '2', '--preload', '-c', path.join(TEST_APPS, 'socket_at_import.conf.py'), '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'socket_at_import:app'],
      { env: { CORRAL_TEST_UDP_PORT: String(udpPort) } },
    );
    const pids = await corral.waitForReadyWorkers(2);
    const warning = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('the preloaded code keeps 1 socket(s) open'));
    expect(String(warning.msg)).toContain(`udp to ('127.0.0.1', ${udpPort})`);
    for (const pid of pids) expect(parentOf(pid)).toBe(forkServers(corral)[0]);
    await answersFrom(port, pids, '/send');
    await waitFor(() => pids.every((pid) => datagrams.some((datagram) => datagram.pid === pid)), 5_000, 'a datagram from each worker');
    // Each worker sends from a socket of its own, not the one the fork server opened.
    const ports = new Set(pids.map((pid) => datagrams.find((datagram) => datagram.pid === pid)!.port));
    expect(ports.size).toBe(2);
  });

  it('without post_fork, a worker\'s copy of a socket opened at import is closed: a clear error, never a shared connection', async () => {
    const receiver = dgram.createSocket('udp4');
    cleanups.push(() => receiver.close());
    const datagrams: string[] = [];
    receiver.on('message', (message) => datagrams.push(message.toString()));
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const port = await freePort();
    const corral = startCorral(['-w', '1', '--preload', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'socket_at_import:app'], {
      env: { CORRAL_TEST_UDP_PORT: String(receiver.address().port) },
    });
    await corral.waitForReadyWorkers(1);
    const reply = await get({ port }, '/send');
    expect(reply.status).toBe(500);
    expect(reply.body).toContain('Socket operation on non-socket');
    expect(datagrams).toEqual([]);
  });
});

describe('failures keep their contracts with the fork server', () => {
  it('--preload and an app that does not import: exit 4 at first start, with the traceback, nothing left', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '2', '--preload', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'broken_import:app']);
    expect(await corral.waitForExit()).toBe(4);
    const fatal = corral.find((r) => r.level === 60)[0];
    expect(String(fatal?.traceback)).toContain("No module named 'corral_missing_dependency'");
    expect(String(fatal?.traceback)).toContain('broken_import.py');
    expect(await groupMembers(corral.pid)).toEqual([]);
  });

  it('--preload and a failing lifespan: exit 3', async () => {
    const port = await freePort();
    const corral = startCorral(['-w', '2', '--preload', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'lifespan_fail:app']);
    expect(await corral.waitForExit()).toBe(3);
    expect(corral.output).toContain('the database is unreachable');
    // The app imported in the fork server; its lifespan failed in each forked worker, as it would spawned.
    expect(forkServers(corral)).toHaveLength(1);
    expect(corral.find((r) => r.msg === 'worker booting')).toHaveLength(2);
    expect(await groupMembers(corral.pid)).toEqual([]);
  });

  it('--preload and a HUP to code that does not import: the old generation keeps serving; mended, the next HUP goes through', async () => {
    const { dir, port, corral, old } = await startVersioned();
    fs.appendFileSync(path.join(dir, 'versioned.py'), '\ndef broken(:\n');
    corral.signal('SIGHUP');
    const aborted = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('rolling restart aborted'), 20_000);
    expect(String(aborted.traceback)).toContain('SyntaxError');
    // The new generation's fork server found it, importing the app: no worker of the broken code was forked.
    expect(corral.find((r) => r.forkServer === 2 && r.level === 50 && String(r.msg).includes('SyntaxError'))).toHaveLength(1);
    expect(corral.exitCode).toBeUndefined();
    expect(corral.readyWorkerPids().sort()).toEqual([...old].sort());
    expect([...(await answersFrom(port, old)).values()].every((body) => body.startsWith('v1 '))).toBe(true);
    await rollTo(corral, dir, port, old, 'v2');
  });
});

describe('--start-method spawn (the old way)', () => {
  const spawn = ['--start-method', 'spawn'];

  it('serves from N spawned workers, children of the master, with no fork server', async () => {
    const port = await freePort();
    const corral = startCorral([...spawn, '-w', '3', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(3);
    for (const pid of pids) expect(parentOf(pid)).toBe(corral.pid);
    await answersFrom(port, pids);
    expect(corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('fork server'))).toEqual([]);
    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
  });

  it('replaces a worker killed with SIGKILL', async () => {
    const port = await freePort();
    const corral = startCorral([...spawn, '-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    process.kill(pids[0]!, 'SIGKILL');
    const died = await corral.waitForLog((r) => r.msg === 'worker died; respawning' && r.pid === pids[0]);
    expect(died).toMatchObject({ signal: 'SIGKILL', delay: 0 });
    const [replacement] = await waitFor(
      () => {
        const fresh = corral.readyWorkerPids().filter((pid) => !pids.includes(pid));
        return fresh.length > 0 ? fresh : undefined;
      },
      15_000,
      'a replacement worker',
    );
    expect(parentOf(replacement!)).toBe(corral.pid);
  });

  it('exits 4 when the app cannot be imported, with the traceback', async () => {
    const port = await freePort();
    const corral = startCorral([...spawn, '-w', '2', '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'broken_import:app']);
    expect(await corral.waitForExit()).toBe(4);
    expect(String(corral.find((r) => r.level === 60)[0]?.traceback)).toContain("No module named 'corral_missing_dependency'");
    expect(await groupMembers(corral.pid)).toEqual([]);
  });

  it('HUP replaces every worker with spawned ones serving the new code', async () => {
    const { dir, port, corral, old } = await startVersioned(spawn);
    const fresh = await rollTo(corral, dir, port, old, 'v2');
    for (const pid of fresh) expect(parentOf(pid)).toBe(corral.pid);
  });
});
