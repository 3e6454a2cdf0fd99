import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Corral, freePort, get, groupMembers, killAllCorrals, ROOT, startCorral, type Reply } from '../helpers/corral.js';

// gunicorn's worker classes and factory calls, as deployments pass them: a UvicornWorker subclass
// from a package, from a module next to the app and defined in the config file, each serving with
// its CONFIG_KWARGS; the classes corral cannot run refused once, before anything starts.

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'dropin');
const tmpDirs: string[] = [];

afterEach(() => killAllCorrals());
afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-worker-class-'));
  tmpDirs.push(dir);
  return dir;
}

/** Variables the developer's shell may set that corral reads. */
const CLEAR = { WEB_CONCURRENCY: '', PORT: '', GUNICORN_CMD_ARGS: '', CORRAL_CMD_ARGS: '', FORWARDED_ALLOW_IPS: '' };

/** Starts corral on a free port with these arguments, in `cwd`; resolves once a worker is ready. */
async function serve(args: string[], cwd = ROOT): Promise<{ corral: Corral; port: number }> {
  const port = await freePort();
  const corral = startCorral(['-b', `127.0.0.1:${port}`, ...args], { cwd, env: CLEAR });
  await corral.waitForReadyWorkers(1);
  return { corral, port };
}

/** Runs corral to its exit (a refusal, --print-config) and checks it left nothing running. */
async function exitOf(args: string[], cwd = ROOT): Promise<{ corral: Corral; code: number | null }> {
  const port = await freePort();
  const corral = startCorral(['-b', `127.0.0.1:${port}`, ...args], { cwd, env: CLEAR });
  const code = await corral.waitForExit();
  expect(await groupMembers(corral.pid)).toEqual([]);
  return { corral, code };
}

/** A GET with extra request headers, on a fresh connection. */
function getWith(port: number, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get({ port, host: '127.0.0.1', path: '/', agent: false, timeout: 10_000, headers: { connection: 'close', ...headers } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('GET timed out')));
    request.on('error', reject);
  });
}

/** What the worker class's CONFIG_KWARGS make visible on a response: its header, and no Server header. */
function expectClassHeaders(reply: Reply, value: string): void {
  expect(reply.status).toBe(200);
  expect(reply.headers['x-worker-class']).toBe(value);
  expect(reply.headers.server).toBeUndefined();
}

describe('a UvicornWorker subclass serves with its CONFIG_KWARGS', () => {
  it('from a package on the path (-k package.module.Class, the shape of saleor.asgi.gunicorn_worker.UvicornWorker)', async () => {
    const { corral, port } = await serve(['--pythonpath', FIXTURES, '-k', 'corral_dropin_workers.asgi.gunicorn_worker.UvicornWorker', '--app-dir', FIXTURES, 'worker_app:app']);
    expectClassHeaders(await get({ port }), 'package');
    const note = corral.find((record) => record.setting === 'worker_class' && String(record.msg).includes('its CONFIG_KWARGS apply'));
    expect(note.map((record) => record.msg)).toEqual([
      'worker class corral_dropin_workers.asgi.gunicorn_worker.UvicornWorker (a uvicorn.workers.UvicornWorker subclass): its CONFIG_KWARGS apply: loop, http, server_header, headers',
    ]);
  });

  it('from a module next to the app (--chdir), imported in each worker as gunicorn imports it before forking', async () => {
    const dir = tempDir();
    for (const file of ['worker_app.py', 'custom_uvicorn_worker.py']) fs.copyFileSync(path.join(FIXTURES, file), path.join(dir, file));
    const { corral, port } = await serve(['--chdir', dir, '-w', '2', '-k', 'custom_uvicorn_worker.CustomUvicornWorker', 'worker_app:app']);
    const pids = await corral.waitForReadyWorkers(2);
    const reply = await get({ port });
    expectClassHeaders(reply, 'next-to-the-app');
    // The module's own start-up code ran in the worker that answered (it records its pid).
    const body = JSON.parse(reply.body) as { pid: number; worker_class_imported: string | null };
    expect(pids).toContain(body.pid);
    expect(body.worker_class_imported).toBe(String(body.pid));
  });

  it('defined inside the config file (worker_class = TheClass)', async () => {
    const { port } = await serve(['-c', path.join(FIXTURES, 'worker_class.conf.py'), '--app-dir', FIXTURES, 'worker_app:app']);
    expectClassHeaders(await get({ port }), 'config-file');
  });

  it('named in the config file, from a module in the config file\'s directory', async () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(FIXTURES, 'worker_class_name.conf.py'), path.join(dir, 'gunicorn.conf.py'));
    fs.copyFileSync(path.join(FIXTURES, 'custom_uvicorn_worker.py'), path.join(dir, 'custom_uvicorn_worker.py'));
    const { port } = await serve(['--app-dir', FIXTURES, 'worker_app:app'], dir);
    expectClassHeaders(await get({ port }), 'next-to-the-app');
  });

  it('wins over the same settings from the command line, as CONFIG_KWARGS win under gunicorn; the rest stays', async () => {
    const given = ['--forwarded-allow-ips', '10.9.9.9', '--keep-alive', '2', '--header', 'X-From-Cli:yes', '--server-header', '--root-path', '/from-cli'];
    const args = [...given, '--app-dir', FIXTURES, '-k', 'custom_uvicorn_worker.PrecedenceWorker', 'worker_app:app'];
    const { corral, port } = await serve(args);
    const reply = await getWith(port, { 'x-forwarded-for': '203.0.113.7' });
    expectClassHeaders(reply, 'precedence');
    expect(reply.headers['x-from-cli']).toBeUndefined();
    // forwarded_allow_ips "*" from the class: the proxy's address is trusted; 10.9.9.9 alone would not trust 127.0.0.1.
    const body = JSON.parse(reply.body) as { client: string; root_path: string };
    expect(body.client).toBe('203.0.113.7');
    expect(body.root_path).toBe('/from-cli');
    const warnings = corral.find((record) => record.level === 40).map((record) => String(record.msg));
    expect(warnings).toContain(
      'CONFIG_KWARGS["timeout_keep_alive"] of worker class custom_uvicorn_worker.PrecedenceWorker = 7 overrides keepalive = 2 (command line): a worker class\'s CONFIG_KWARGS win, as under gunicorn',
    );

    const printed = await exitOf([...args, '--print-config', '--json']);
    expect(printed.code).toBe(0);
    const settings = JSON.parse(printed.corral.stdoutLines.join('\n')) as Record<string, { value: unknown; source: string }>;
    const source = 'worker class custom_uvicorn_worker.PrecedenceWorker';
    expect(settings.keepalive).toEqual({ value: 7, source });
    expect(settings.forwarded_allow_ips).toEqual({ value: '*', source });
    expect(settings.proxy_headers).toEqual({ value: true, source });
    expect(settings.server_header).toEqual({ value: false, source });
    expect(settings.headers).toEqual({ value: ['X-Worker-Class:precedence'], source });
    expect(settings.root_path).toEqual({ value: '/from-cli', source: 'command line' });
    expect(settings.config_kwargs!.source).toBe(source);
  });
});

describe('worker classes corral cannot run: one line and exit 2, before anything starts', () => {
  const refusals: [string, string[], string][] = [
    ['gunicorn\'s sync worker', ['-k', 'sync'], '--worker-class "sync" (command line): not supported; use uvicorn.workers.UvicornWorker'],
    ['gunicorn\'s gthread worker', ['-k', 'gthread'], '--worker-class "gthread" (command line): not supported; use uvicorn.workers.UvicornWorker'],
    [
      'a subclass of gunicorn\'s SyncWorker',
      ['-k', 'custom_uvicorn_worker.WsgiWorker'],
      '--worker-class "custom_uvicorn_worker.WsgiWorker" (command line): custom_uvicorn_worker.WsgiWorker is not a UvicornWorker subclass (its bases: gunicorn.workers.sync.SyncWorker, gunicorn.workers.base.Worker)',
    ],
    [
      'a UvicornWorker subclass that overrides run',
      ['-k', 'custom_uvicorn_worker.RunWorker'],
      '--worker-class "custom_uvicorn_worker.RunWorker" (command line): custom_uvicorn_worker.RunWorker overrides run of uvicorn.workers.UvicornWorker, which corral never calls',
    ],
  ];
  for (const [what, args, line] of refusals) {
    it(what, async () => {
      const { corral, code } = await exitOf(['--app-dir', FIXTURES, ...args, 'worker_app:app']);
      expect(code).toBe(2);
      const lines = corral.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`corral: error: ${line}`);
      expect(corral.records).toEqual([]);
    });
  }
});

describe('a worker class that does not import: the traceback and exit 4, as for the app', () => {
  it('its module raises', async () => {
    const { corral, code } = await exitOf(['--app-dir', FIXTURES, '-k', 'broken_worker.BrokenWorker', 'worker_app:app']);
    expect(code).toBe(4);
    expect(corral.stderr).toContain('Traceback (most recent call last):');
    expect(corral.stderr).toContain(`File "${path.join(FIXTURES, 'broken_worker.py')}", line 5, in <module>`);
    expect(corral.stderr.trim().split('\n').at(-1)).toBe(
      'corral: error: cannot import the worker class "broken_worker.BrokenWorker" (command line): RuntimeError: broken_worker fails on import',
    );
    expect(corral.records).toEqual([]);
  });

  it('its module needs gunicorn, which the interpreter lacks (uvicorn.workers imports it)', async () => {
    // A gunicorn package first on --pythonpath that fails as a missing one does stands in for an interpreter without it.
    const args = ['--pythonpath', path.join(FIXTURES, 'no_gunicorn'), '--app-dir', FIXTURES, '-k', 'custom_uvicorn_worker.CustomUvicornWorker', 'worker_app:app'];
    const { corral, code } = await exitOf(args);
    expect(code).toBe(4);
    const last = corral.stderr.trim().split('\n').at(-1)!;
    expect(last).toContain('corral: error: cannot import the worker class "custom_uvicorn_worker.CustomUvicornWorker" (command line): its module imports gunicorn');
    expect(last).toContain('install gunicorn there');
  });
});

describe("gunicorn's factory-call syntax", () => {
  it('module:create_app() serves what the call returned', async () => {
    const { port } = await serve(['--app-dir', FIXTURES, 'worker_app:create_app()']);
    expect((await get({ port })).body).toBe('default 1');
  });

  it("module:create_app('x', n=2) passes the literal arguments", async () => {
    const { port } = await serve(['--app-dir', FIXTURES, "worker_app:create_app('x', n=2)"]);
    expect((await get({ port })).body).toBe('x 2');
  });

  it('a call whose arguments are not literals is a usage error naming the APP: exit 2', async () => {
    const { corral, code } = await exitOf(['--app-dir', FIXTURES, 'worker_app:create_app(os.environ)']);
    expect(code).toBe(2);
    const lines = corral.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^corral: error: APP "worker_app:create_app\(os\.environ\)": os is not a literal at column 23; expected module:attribute or module:function\(\.\.\.\) with literal arguments/);
  });
});
