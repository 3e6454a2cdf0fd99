import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, killAllCorrals, readRecords, runCorralCommand, startApp, startCorral, TEST_APPS, waitFor } from '../helpers/corral.js';
import { expectReadyInStatus, readyPids, statusJson } from '../helpers/control.js';
import { parsePrometheusText, samplesOf, type Family } from '../helpers/prometheus.js';

const temporaryDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-observe-'));
  temporaryDirs.push(dir);
  return dir;
}

afterEach(() => {
  killAllCorrals();
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

async function scrape(port: number): Promise<Map<string, Family>> {
  const reply = await get({ port }, '/metrics');
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toContain('text/plain');
  return parsePrometheusText(reply.body);
}

/** The inodes of the TCP sockets in LISTEN state that process `pid` holds. */
function listeningTcpSockets(pid: number): string[] {
  const held = new Set(
    fs
      .readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        } catch {
          return undefined;
        }
      })
      .filter((inode): inode is string => inode !== undefined),
  );
  const listening: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields[3] is the state (0A = LISTEN), fields[9] the inode.
      if (fields[3] === '0A' && held.has(fields[9]!)) listening.push(fields[9]!);
    }
  }
  return listening;
}

describe('metrics', () => {
  it('serves every metric family in Prometheus text, all prefixed corral_, with live worker figures', async () => {
    const metricsPort = await freePort();
    const { corral, port } = await startApp(['-w', '2', '--memory-check-interval', '1', '--metrics-bind', `127.0.0.1:${metricsPort}`]);
    const pids = await corral.waitForReadyWorkers(2);
    for (let request = 0; request < 6; request += 1) expect((await get({ port })).status).toBe(200);

    // Requests come from heartbeats and CPU/RSS from the resource sampler: wait for both to arrive. A
    // forked worker starts with no CPU time of its own and counts it in 10 ms ticks: the requests sent
    // meanwhile give every worker some.
    const families = await waitFor(
      async () => {
        await Promise.all(Array.from({ length: 20 }, () => get({ port })));
        const scraped = await scrape(metricsPort);
        const requests = samplesOf(scraped, 'corral_worker_requests_total').reduce((sum, sample) => sum + sample.value, 0);
        const sampled = samplesOf(scraped, 'corral_worker_unique_memory_bytes').length === 2;
        const cpu = samplesOf(scraped, 'corral_worker_cpu_seconds_total');
        const busy = cpu.length === 2 && cpu.every((sample) => sample.value > 0);
        return requests >= 6 && sampled && busy ? scraped : undefined;
      },
      20_000,
      'heartbeat request counts, resource samples and CPU time of every worker in /metrics',
    );

    for (const family of families.values()) {
      expect(family.name.startsWith('corral_'), family.name).toBe(true);
      expect(family.help, `${family.name} has HELP`).not.toBe('');
      expect(family.type, `${family.name} has a TYPE`).not.toBe('untyped');
    }
    expect(samplesOf(families, 'corral_workers', { state: 'ready' })[0]?.value).toBe(2);
    expect(samplesOf(families, 'corral_workers', { state: 'booting' })[0]?.value).toBe(0);
    expect(samplesOf(families, 'corral_workers_wanted')[0]?.value).toBe(2);
    const memory = ['corral_worker_resident_memory_bytes', 'corral_worker_unique_memory_bytes', 'corral_worker_proportional_memory_bytes'];
    for (const name of ['corral_worker_requests_total', 'corral_worker_cpu_seconds_total', ...memory, 'corral_worker_connections', 'corral_worker_start_time_seconds']) {
      const labelled = samplesOf(families, name).map((sample) => Number(sample.labels.pid)).sort();
      expect(labelled, name).toEqual([...pids].sort());
    }
    for (const name of memory) for (const sample of samplesOf(families, name)) expect(sample.value, name).toBeGreaterThan(1024 * 1024);
    // USS ≤ PSS ≤ RSS for each worker: unique pages are in all three, shared ones in part or in full.
    for (const pid of pids) {
      const [rss, uss, pss] = memory.map((name) => samplesOf(families, name).find((sample) => Number(sample.labels.pid) === pid)!.value);
      expect(uss).toBeLessThanOrEqual(pss!);
      expect(pss).toBeLessThanOrEqual(rss!);
    }
    for (const sample of samplesOf(families, 'corral_worker_cpu_seconds_total')) expect(sample.value).toBeGreaterThan(0);
    expect(families.get('corral_worker_boot_seconds')?.type).toBe('histogram');
    expect(samplesOf(families, 'corral_worker_boot_seconds_count')[0]?.value).toBe(2);
    expect(families.get('corral_worker_restarts_total')?.type).toBe('counter');
    expect(families.get('corral_reloads_total')?.type).toBe('counter');
    expect(families.get('corral_reload_duration_seconds')?.type).toBe('histogram');
    // The master's own process metrics.
    expect(samplesOf(families, 'corral_process_cpu_seconds_total')[0]?.value).toBeGreaterThan(0);
    expect(samplesOf(families, 'corral_process_resident_memory_bytes')[0]?.value).toBeGreaterThan(0);
    expect(families.has('corral_nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it("has every worker's CPU and memory rows in the first scrape after it is ready, and in corral status", async () => {
    const metricsPort = await freePort();
    const socketPath = path.join(tempDir(), 'c.sock');
    // Samples every 10 minutes: a row seen now can only come from the sample taken at ready.
    const { corral } = await startApp(['-w', '2', '--memory-check-interval', '600', '--metrics-bind', `127.0.0.1:${metricsPort}`, '--control-socket', socketPath]);
    const pids = (await corral.waitForReadyWorkers(2)).sort();
    const families = await scrape(metricsPort);
    for (const name of ['corral_worker_resident_memory_bytes', 'corral_worker_unique_memory_bytes', 'corral_worker_proportional_memory_bytes', 'corral_worker_cpu_seconds_total']) {
      expect(samplesOf(families, name).map((sample) => Number(sample.labels.pid)).sort(), name).toEqual(pids);
    }
    for (const sample of samplesOf(families, 'corral_worker_resident_memory_bytes')) expect(sample.value).toBeGreaterThan(1024 * 1024);
    const status = await statusJson(socketPath);
    expect(status.workers.map((worker) => worker.pid).sort()).toEqual(pids);
    for (const worker of status.workers) {
      expect(worker.rssBytes).toBeGreaterThan(1024 * 1024);
      expect(worker.ussBytes).toBeGreaterThan(1024 * 1024);
      expect(worker.pssBytes).toBeGreaterThan(1024 * 1024);
      expect(worker.cpuPercent).not.toBeNull();
    }
  });

  it('counts a crashed worker as a restart and a HUP as a reload with its duration', async () => {
    const metricsPort = await freePort();
    const { corral } = await startApp(['-w', '1', '--metrics-bind', `127.0.0.1:${metricsPort}`]);
    const [first] = await corral.waitForReadyWorkers(1);
    process.kill(first!, 'SIGKILL');
    await corral.waitForReplacement(first!, 1);
    corral.signal('SIGHUP');
    await corral.waitForLog((r) => r.msg === 'rolling restart complete');
    const families = await scrape(metricsPort);
    expect(samplesOf(families, 'corral_worker_restarts_total', { reason: 'signal' })[0]?.value).toBe(1);
    expect(samplesOf(families, 'corral_reloads_total', { reason: 'SIGHUP', result: 'ok' })[0]?.value).toBe(1);
    expect(samplesOf(families, 'corral_reload_duration_seconds_count', { reason: 'SIGHUP' })[0]?.value).toBe(1);
    // The first worker, its respawn, and the HUP's new worker.
    expect(samplesOf(families, 'corral_worker_boot_seconds_count')[0]?.value).toBe(3);
  });

  it('is off by default: the master listens on no port but the app bind', async () => {
    const { corral } = await startApp(['-w', '1']);
    await corral.waitForReadyWorkers(1);
    expect(listeningTcpSockets(corral.pid)).toHaveLength(1);
    expect(corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('metrics'))).toEqual([]);
  });

  it('refuses a bad --metrics-bind with one line and exit 2', async () => {
    const result = await runCorralCommand(['--metrics-bind', 'localhost', 'app:app']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('--metrics-bind "localhost"');
    expect(result.stderr).toContain('HOST:PORT');
  });
});

describe('health endpoints', () => {
  it('/readyz is 503 before the first worker is ready, 200 once it is, 503 again during a graceful stop', async () => {
    const dir = tempDir();
    const startFile = path.join(dir, 'start');
    const metricsPort = await freePort();
    const { corral, port } = await startApp(['-w', '1', '--metrics-bind', `127.0.0.1:${metricsPort}`, '--graceful-timeout', '20'], {
      app: 'wait_for_file:app',
      env: { CORRAL_TEST_START_FILE: startFile },
    });
    await waitFor(async () => (await get({ port: metricsPort }, '/healthz').catch(() => undefined))?.status === 200, 15_000, '/healthz to answer');
    await corral.waitForLog((r) => r.msg === 'Waiting for application startup.');
    // The worker is in its lifespan start-up now, and stays there until the file exists.
    expect((await get({ port: metricsPort }, '/readyz')).status).toBe(503);
    expect(corral.find((r) => r.msg === 'worker ready')).toEqual([]);

    fs.writeFileSync(startFile, '');
    await expect.poll(async () => (await get({ port: metricsPort }, '/readyz')).status, { timeout: 15_000, message: '/readyz once the worker is ready' }).toBe(200);
    expect((await get({ port: metricsPort }, '/healthz')).status).toBe(200);

    let slowDone = false;
    const slow = get({ port }, '/sleep?s=6').finally(() => (slowDone = true));
    await corral.waitForLog((r) => r.msg === '/sleep started');
    corral.signal('SIGTERM');
    await corral.waitForLog((r) => r.msg === 'stopping gracefully');
    expect((await get({ port: metricsPort }, '/readyz')).status).toBe(503);
    expect((await get({ port: metricsPort }, '/healthz')).status).toBe(200);
    // The 503 came while the request was still in flight.
    expect(slowDone).toBe(false);
    expect((await slow).status).toBe(200);
    expect(await corral.waitForExit()).toBe(0);
  });
});

describe('control socket', () => {
  it('corral status lists every live worker as a table and as JSON; the socket is 0600 next to the pid file', async () => {
    const dir = tempDir();
    const pidFile = path.join(dir, 'corral.pid');
    const { corral, port } = await startApp(['-w', '2', '--memory-check-interval', '1', '--pid', pidFile]);
    const pids = await corral.waitForReadyWorkers(2);
    const socketPath = path.join(dir, 'corral.control.sock');
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    await get({ port });

    const table = await runCorralCommand(['status', '--pid', pidFile]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toContain(`master pid ${corral.pid}`);
    expect(lines[1]!.split(/\s{2,}/)).toEqual(['SLOT', 'PID', 'STATE', 'AGE', 'REQUESTS', 'CPU %', 'USS', 'PSS', 'RESTARTS']);
    const rows = lines.slice(2).map((line) => line.trim().split(/\s+/));
    expect(rows.map((row) => Number(row[1])).sort()).toEqual([...pids].sort());
    expect(rows.map((row) => row[2])).toEqual(['ready', 'ready']);

    // CPU and memory come from the resource sampler; wait for its first round.
    const status = await waitFor(
      async () => {
        const current = await statusJson(socketPath);
        return current.workers.every((worker) => worker.ussBytes !== null) ? current : undefined;
      },
      20_000,
      'resource samples in corral status',
    );
    expect(status.pid).toBe(corral.pid);
    expect(status.workersWanted).toBe(2);
    expect(readyPids(status)).toEqual([...pids].sort());
    expect(status.workers.map((worker) => worker.slot)).toEqual([1, 2]);
    for (const worker of status.workers) {
      expect(worker.rssBytes).toBeGreaterThan(1024 * 1024);
      expect(worker.ussBytes).toBeGreaterThan(1024 * 1024);
      expect(worker.ussBytes).toBeLessThanOrEqual(worker.pssBytes!);
      expect(worker.pssBytes).toBeLessThanOrEqual(worker.rssBytes!);
      expect(worker.cpuPercent).toBeTypeOf('number');
      expect(worker.restarts).toBe(0);
    }

    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  it('corral scale 3 leaves 3 workers, corral reload replaces them, corral stop waits for the exit', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'control.sock');
    const target = ['--control-socket', socketPath];
    const { corral } = await startApp(['-w', '1', '--control-socket', socketPath]);
    await corral.waitForReadyWorkers(1);

    const scaled = await runCorralCommand(['scale', '3', ...target]);
    expect(scaled.code).toBe(0);
    const three = await expectReadyInStatus(socketPath, 3, 30_000);
    expect(three.workersWanted).toBe(3);
    expect(corral.readyWorkerPids().sort()).toEqual(readyPids(three));

    const reloaded = await runCorralCommand(['reload', ...target]);
    expect(reloaded.code).toBe(0);
    await corral.waitForLog((r) => r.msg === 'rolling restart complete', 40_000);
    const after = await expectReadyInStatus(socketPath, 3, 20_000);
    expect(readyPids(after).filter((pid) => readyPids(three).includes(pid))).toEqual([]);

    const stopped = await runCorralCommand(['stop', ...target]);
    expect(stopped.code).toBe(0);
    // `corral stop` returned only after the master had finished.
    expect(corral.find((r) => r.msg === 'corral stopped')).toHaveLength(1);
    expect(await corral.waitForExit()).toBe(0);
  });

  it('answers unknown and malformed requests with an error and changes nothing', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'control.sock');
    const { corral } = await startApp(['-w', '1', '--control-socket', socketPath]);
    const before = await corral.waitForReadyWorkers(1);

    const requests = ['not json', '[1,2]', '{"command":"explode"}', '{"command":"scale","workers":0}', '{"command":"scale","workers":"3"}', '{"command":"scale","workers":3,"force":true}', '{"command":"stop","mode":"now"}', '{}'];
    const socket = net.connect(socketPath);
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (chunk: string) => (received += chunk));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(requests.map((request) => `${request}\n`).join(''));
    const replies = await waitFor(
      () => {
        const lines = received.split('\n').filter((line) => line !== '');
        return lines.length >= requests.length ? lines.map((line) => JSON.parse(line) as { ok: boolean; error?: string }) : undefined;
      },
      10_000,
      'a reply to every request',
    );
    socket.destroy();
    expect(replies.map((reply) => reply.ok)).toEqual(requests.map(() => false));
    for (const reply of replies) expect(reply.error).toBeTypeOf('string');
    expect(replies[2]!.error).toContain('explode');

    const status = await statusJson(socketPath);
    expect(status.workersWanted).toBe(1);
    expect(readyPids(status)).toEqual(before);
    expect(corral.find((r) => r.msg === 'scaling up' || r.msg === 'stopping gracefully' || r.msg === 'stopping')).toEqual([]);
  });

  it('refuses a control socket another corral listens on, and replaces one left by a killed corral', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'control.sock');
    const first = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '--control-socket', socketPath, '--app-dir', TEST_APPS, 'app:app']);
    await first.waitForReadyWorkers(1);
    const second = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '--control-socket', socketPath, '--app-dir', TEST_APPS, 'app:app']);
    expect(await second.waitForExit()).toBe(1);
    expect(second.output).toContain(`--control-socket ${socketPath}: another corral is listening there`);
    expect(second.find((r) => r.msg === 'worker booting')).toEqual([]);

    first.killGroup();
    await first.waitForExit();
    expect(fs.existsSync(socketPath)).toBe(true);
    const third = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '--control-socket', socketPath, '--app-dir', TEST_APPS, 'app:app']);
    const [pid] = await third.waitForReadyWorkers(1);
    expect(readyPids(await statusJson(socketPath))).toEqual([pid]);
  });

  it('client errors: no corral named is exit 2, a bad count is exit 2, no corral running is exit 1', async () => {
    const none = await runCorralCommand(['status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--control-socket PATH or --pid FILE');
    const badCount = await runCorralCommand(['scale', 'many', '--pid', '/tmp/x.pid']);
    expect(badCount.code).toBe(2);
    expect(badCount.stderr).toContain('corral scale "many"');
    const dir = tempDir();
    const absent = await runCorralCommand(['status', '--pid', path.join(dir, 'corral.pid')]);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain(`cannot reach corral at ${path.join(dir, 'corral.control.sock')}`);
  });
});

describe('log stream', () => {
  it('print() and a raised exception arrive as JSON records with the slot and pid; access records carry timing and size', async () => {
    const { corral, port } = await startApp(['-w', '2']);
    await corral.waitForReadyWorkers(2);
    await get({ port }, '/print?text=observe-print-marker');
    const printed = await corral.waitForLog((r) => r.msg === 'observe-print-marker');
    expect(printed).toMatchObject({ stream: 'stdout', level: 30 });
    expect([1, 2]).toContain(printed.worker);
    expect(corral.readyWorkerPids()).toContain(printed.pid);

    expect((await get({ port }, '/raise')).status).toBe(500);
    const raised = await corral.waitForLog((r) => r.msg === 'Exception in ASGI application');
    expect(raised.level).toBe(50);
    expect(raised.err).toMatchObject({ type: 'RuntimeError', message: 'raised on purpose' });
    const stack = String((raised.err as { stack: unknown }).stack);
    expect(stack).toContain('Traceback (most recent call last)');
    expect(stack).toContain('RuntimeError: raised on purpose');
    expect(stack).toContain('test/apps/app.py');
    expect([1, 2]).toContain(raised.worker);
    expect(corral.readyWorkerPids()).toContain(raised.pid);

    const access = await corral.waitForLog((r) => r.name === 'corral.access' && r.path === '/print?text=observe-print-marker');
    expect(access).toMatchObject({ level: 30, method: 'GET', status: 200, worker: printed.worker, pid: printed.pid });
    expect(access.duration).toBeTypeOf('number');
    expect(access.duration as number).toBeGreaterThanOrEqual(0);
    expect(access.size).toBe(String(printed.pid).length);
    expect(String(access.client)).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(access.time).toBeTypeOf('number');
    const failed = await corral.waitForLog((r) => r.name === 'corral.access' && r.path === '/raise');
    expect(failed.status).toBe(500);
  });

  it('--no-access-log writes no access records', async () => {
    const { corral, port } = await startApp(['-w', '1', '--no-access-log']);
    await corral.waitForReadyWorkers(1);
    await get({ port }, '/print?text=first-request');
    // The worker writes its records in order on one pipe: once the second request's error record has
    // arrived, the first request's access record would have arrived before it.
    await get({ port }, '/raise');
    await corral.waitForLog((r) => r.msg === 'Exception in ASGI application');
    expect(corral.find((r) => r.name === 'corral.access' || r.name === 'uvicorn.access')).toEqual([]);
  });

  it('--access-logfile - and --error-logfile - split the stream: access records on stdout, the rest on stderr', async () => {
    const { corral, port } = await startApp(['-w', '1', '--access-logfile', '-', '--error-logfile', '-']);
    await waitFor(() => corral.stderr.includes('"msg":"worker ready"'), 20_000, 'a ready worker on stderr');
    await get({ port }, '/print?text=split-streams');
    await corral.waitForLog((r) => r.name === 'corral.access' && r.path === '/print?text=split-streams');
    await expect.poll(() => corral.stderr, { timeout: 10_000, message: 'the print on stderr' }).toContain('"msg":"split-streams"');
    expect(corral.records.length).toBeGreaterThan(0);
    expect(corral.records.every((r) => r.name === 'corral.access')).toBe(true);
    expect(corral.stderr).not.toContain('corral.access');
  });

  it('writes access and error logs to files, and USR1 reopens them after a rename', async () => {
    const dir = tempDir();
    const accessLog = path.join(dir, 'access.log');
    const errorLog = path.join(dir, 'error.log');
    const { corral, port } = await startApp(['-w', '1', '--access-logfile', accessLog, '--error-logfile', errorLog]);
    await waitFor(() => readRecords(errorLog).some((r) => r.msg === 'worker ready'), 20_000, 'a ready worker in the error log');
    await get({ port }, '/print?text=before-rotation');
    await waitFor(() => readRecords(accessLog).some((r) => r.path === '/print?text=before-rotation'), 10_000, 'the access record in the access log');
    await waitFor(() => readRecords(errorLog).some((r) => r.msg === 'before-rotation'), 10_000, 'the print in the error log');
    expect(readRecords(errorLog).filter((r) => r.name === 'corral.access')).toEqual([]);
    expect(readRecords(accessLog).every((r) => r.name === 'corral.access')).toBe(true);
    expect(corral.stdoutLines.filter((line) => line !== '')).toEqual([]);

    // What logrotate does: rename, then signal.
    fs.renameSync(accessLog, `${accessLog}.1`);
    fs.renameSync(errorLog, `${errorLog}.1`);
    corral.signal('SIGUSR1');
    const messagesIn = (file: string) => readRecords(file).map((r) => r.msg);
    await expect.poll(() => messagesIn(errorLog), { timeout: 10_000, message: 'a new error log after USR1' }).toContain('log files reopened');
    await get({ port }, '/print?text=after-rotation');
    await expect.poll(() => readRecords(accessLog).map((r) => r.path), { timeout: 10_000, message: 'a new access log after USR1' }).toContain('/print?text=after-rotation');
    await expect.poll(() => messagesIn(errorLog), { timeout: 10_000, message: 'the print in the new error log' }).toContain('after-rotation');
    expect(readRecords(`${accessLog}.1`).some((r) => r.path === '/print?text=after-rotation')).toBe(false);
    expect(readRecords(`${accessLog}.1`).some((r) => r.path === '/print?text=before-rotation')).toBe(true);
  });
});

