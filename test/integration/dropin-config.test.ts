import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, get, killAllCorrals, ROOT, runCorralCommand, startApp, startCorral, TEST_APPS, VENV_PYTHON, waitFor, type CommandResult, type LogRecord } from '../helpers/corral.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'dropin');
const tmpDirs: string[] = [];

afterEach(() => killAllCorrals());

afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

/** Variables the developer's shell may set that corral reads. */
const CLEAR = { WEB_CONCURRENCY: '', PORT: '', GUNICORN_CMD_ARGS: '', CORRAL_CMD_ARGS: '', FORWARDED_ALLOW_IPS: '' };

/** Runs corral to completion (print-config, check-config) with the test virtualenv's Python and none of the shell's settings. */
function runCorral(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return runCorralCommand(['--python', VENV_PYTHON, ...args], 30_000, { env: { ...CLEAR, ...env } });
}

const message = (record: LogRecord) => (typeof record.msg === 'string' ? record.msg : '');

describe('a gunicorn.conf.py with workers, bind, timeouts, logging and hooks', () => {
  let confdir: string;
  beforeAll(() => {
    confdir = tempDir('corral-conf-');
    fs.copyFileSync(path.join(FIXTURES, 'gunicorn.conf.py'), path.join(confdir, 'gunicorn.conf.py'));
    fs.copyFileSync(path.join(FIXTURES, 'uvicorn.env'), path.join(confdir, 'app.env'));
  });

  it('serves as configured and runs post_worker_init and worker_exit in every worker', async () => {
    const port = await freePort();
    const corral = startCorral(['-c', 'gunicorn.conf.py', '--env-file', 'app.env', '--app-dir', TEST_APPS, 'app:app'], {
      cwd: confdir,
      env: { ...CLEAR, HOST: '127.0.0.1', PORT: String(port) },
    });
    const first = await corral.waitForReadyWorkers(2);
    const start = corral.find((record) => message(record).startsWith('corral '))[0];
    expect(start).toMatchObject({ workers: 2, binds: [`127.0.0.1:${port}`] });
    expect((await get({ port })).status).toBe(200);

    // A respawned worker runs the hooks too.
    process.kill(first[0]!, 'SIGKILL');
    const pids = await corral.waitForReplacement(first[0]!, 2);
    for (const pid of [...first, ...pids]) {
      const init = await corral.waitForLog((record) => record.pid === pid && message(record).startsWith('hook post_worker_init'), 10_000, `post_worker_init in ${pid}`);
      expect(message(init)).toMatch(new RegExp(`^hook post_worker_init pid=${pid} age=\\d+ workers=2 timeout=25 env=yes env_file=loaded$`));
      expect(init).toMatchObject({ name: 'corral.hooks', level: 30 });
    }

    // Master-side hooks and misspelt names are named in warnings.
    const warnings = corral.find((record) => record.level === 40).map(message);
    expect(warnings.some((text) => text.includes('server hooks when_ready') && text.includes('corral does not run them'))).toBe(true);
    expect(warnings.some((text) => text.includes('"preload" is not a setting') && text.includes('did you mean "preload_app"'))).toBe(true);
    expect(warnings.some((text) => text.includes('"keep_alive" is not a setting') && text.includes('did you mean "keepalive"'))).toBe(true);
    // worker_tmp_dir = "/dev/shm" is accepted and the log says what corral does instead.
    expect(corral.find((record) => record.setting === 'worker_tmp_dir' && record.level === 30)).toHaveLength(1);

    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
    for (const pid of pids) {
      const exit = corral.find((record) => record.pid === pid && message(record).startsWith('hook worker_exit'));
      expect(exit.map(message)).toEqual([`hook worker_exit pid=${pid} master=${corral.pid}`]);
    }
  });
});

describe('SIGHUP', () => {
  it('re-reads the config file: the new workers run the new hooks', async () => {
    const dir = tempDir('corral-hup-');
    const conf = path.join(dir, 'gunicorn.conf.py');
    const writeConf = (version: string) =>
      fs.writeFileSync(conf, `workers = 1\n\ndef post_worker_init(worker):\n    worker.log.info("config ${version} in %s", worker.pid)\n`);
    writeConf('one');
    const { corral } = await startApp(['-c', conf], { env: CLEAR });
    const [old] = await corral.waitForReadyWorkers(1);
    await corral.waitForLog((record) => message(record) === `config one in ${old}`);
    writeConf('two');
    corral.signal('SIGHUP');
    const fresh = await waitFor(() => corral.readyWorkerPids().find((pid) => pid !== old), 20_000, 'a worker of the new generation');
    await corral.waitForLog((record) => record.pid === fresh && message(record).startsWith('config '), 15_000, 'the new worker\'s post_worker_init');
    // Each worker ran its generation's hook once, and only that one.
    const ran = corral.find((record) => message(record).startsWith('config '));
    expect(ran.map((record) => [message(record), record.pid, record.name])).toEqual([
      [`config one in ${old}`, old, 'corral.hooks'],
      [`config two in ${fresh}`, fresh, 'corral.hooks'],
    ]);
  });
});

describe('gunicorn\'s --chdir, --pythonpath and -e', () => {
  it('imports the app from the new directory, with the extra path and variables', async () => {
    const port = await freePort();
    const corral = startCorral(['--chdir', FIXTURES, '--pythonpath', 'lib', '-e', 'GREETING=hello', '-b', `127.0.0.1:${port}`, 'lib_app:app'], { env: CLEAR });
    await corral.waitForReadyWorkers(1);
    expect((await get({ port })).body).toBe('from-pythonpath hello');
  });
});

describe('a uvicorn command line', () => {
  it('reaches the workers: --header, --no-server-header, UVICORN_ variables', async () => {
    const port = await freePort();
    const corral = startCorral(['--header', 'X-Frame-Options:DENY', '--no-server-header', '--app-dir', TEST_APPS, 'app:app'], {
      env: { ...CLEAR, UVICORN_HOST: '127.0.0.1', UVICORN_PORT: String(port) },
    });
    await corral.waitForReadyWorkers(1);
    const reply = await get({ port });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-frame-options']).toBe('DENY');
    expect(reply.headers.server).toBeUndefined();
  });
});

describe('signal hooks', () => {
  const conf = path.join(FIXTURES, 'signal_hooks.conf.py');

  it('runs worker_int and worker_exit when the master stops quickly (INT)', async () => {
    const port = await freePort();
    const corral = startCorral(['-c', conf, '--timeout', '0', '--app-dir', TEST_APPS, 'app:app'], { env: { ...CLEAR, TEST_PORT: String(port) } });
    const [pid] = await corral.waitForReadyWorkers(1);
    corral.signal('SIGINT');
    expect(await corral.waitForExit()).toBe(0);
    const hooks = corral.find((record) => record.name === 'corral.hooks').map(message);
    expect(hooks).toEqual([`hook worker_int pid=${pid}`, `hook worker_exit pid=${pid}`]);
  });

  it('runs worker_abort in a worker aborted as hung', async () => {
    const port = await freePort();
    const corral = startCorral(['-c', conf, '--app-dir', TEST_APPS, 'app:app'], { env: { ...CLEAR, TEST_PORT: String(port) } });
    const [pid] = await corral.waitForReadyWorkers(1);
    // The request blocks the worker's event loop longer than the 1 s timeout of the config file.
    get({ port }, '/block?s=8', 15_000).catch(() => undefined);
    const abort = await corral.waitForLog((record) => message(record) === `hook worker_abort pid=${pid}`, 15_000, 'the worker_abort hook');
    expect(abort).toMatchObject({ name: 'corral.hooks', worker: 1 });
    // The stack dump, which names the line the worker is stuck on, still comes first.
    const stuckLine = corral.records.findIndex((record) => record.pid === pid && record.stream === 'stderr' && /app\.py", line \d+ in app/.test(message(record)));
    expect(stuckLine).toBeGreaterThanOrEqual(0);
    expect(stuckLine).toBeLessThan(corral.records.indexOf(abort));
    await corral.waitForReplacement(pid!, 1);
  });
});

describe('--workers auto', () => {
  it('counts from a v2 cgroup cpu.max and a v1 quota, not the host cores', async () => {
    const v2 = tempDir('corral-cgroup-v2-');
    fs.writeFileSync(path.join(v2, 'cpu.max'), '150000 100000\n');
    const printed = await runCorral(['--print-config', '--json', '-w', 'auto', '--cgroup-root', v2, 'app:app']);
    expect(printed.code, printed.stderr).toBe(0);
    const workers = JSON.parse(printed.stdout).workers;
    expect(workers.value).toBe(1);
    expect(workers.source).toContain('cgroup v2 cpu.max "150000 100000"');
    expect(printed.stderr).toContain('1.5 CPUs → 1 worker');

    const v1 = tempDir('corral-cgroup-v1-');
    fs.mkdirSync(path.join(v1, 'cpu,cpuacct'));
    fs.writeFileSync(path.join(v1, 'cpu,cpuacct', 'cpu.cfs_quota_us'), '200000\n');
    fs.writeFileSync(path.join(v1, 'cpu,cpuacct', 'cpu.cfs_period_us'), '100000\n');
    const fromEnv = await runCorral(['--print-config', '--json', 'app:app'], { WEB_CONCURRENCY: 'auto', CORRAL_CGROUP_ROOT: v1 });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const expected = Math.min(2, os.availableParallelism());
    expect(JSON.parse(fromEnv.stdout).workers.value).toBe(expected);
    expect(fromEnv.stderr).toContain('cgroup v1 cpu.cfs_quota_us 200000 / cpu.cfs_period_us 100000');
  });

  it('logs what it found when serving', async () => {
    const root = tempDir('corral-cgroup-run-');
    fs.writeFileSync(path.join(root, 'cpu.max'), '100000 100000\n');
    const { corral } = await startApp(['-w', 'auto', '--cgroup-root', root], { env: CLEAR });
    await corral.waitForReadyWorkers(1);
    const found = await corral.waitForLog((record) => record.setting === 'workers');
    expect(message(found)).toContain(`cgroup v2 cpu.max "100000 100000" (${path.join(root, 'cpu.max')}): 1 CPUs → 1 worker`);
    expect(corral.find((record) => message(record).startsWith('corral '))[0]).toMatchObject({ workers: 1 });
  });
});

describe('--check-config', () => {
  it('exits 0 when the app imports and 1 when it does not', async () => {
    const ok = await runCorral(['--check-config', '--app-dir', TEST_APPS, 'app:app']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('configuration OK');
    const broken = await runCorral(['--check-config', '--app-dir', TEST_APPS, 'broken_import:app']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("cannot import the app 'broken_import:app'");
  });

  it('exits 2 for a bad setting before importing anything', async () => {
    const bad = await runCorral(['--check-config', '--timeout', 'soon', 'app:app']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('corral: error: --timeout "soon": expected a number of 0 or more');
  });
});
