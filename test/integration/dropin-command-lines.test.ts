import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CORRAL, killGroup, ROOT, VENV_PYTHON } from '../helpers/corral.js';

// Command lines of the shapes found in public Dockerfiles, Procfiles, compose files and systemd
// units, run by bash as they are written, with `gunicorn` and `uvicorn` replaced by corral: each
// prints its resolved settings as JSON, which the test checks.

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'dropin');
const groups = new Set<number>();
/** An empty working directory, and one holding a gunicorn.conf.py (read by default, as gunicorn does). */
let workdir: string;
let confdir: string;

afterEach(() => {
  for (const pgid of groups) killGroup(pgid);
  groups.clear();
});

beforeAll(() => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-dropin-'));
  fs.copyFileSync(path.join(FIXTURES, 'uvicorn.env'), path.join(workdir, '.env'));
  fs.mkdirSync(path.join(workdir, 'src'));
  // Worker classes next to the app and in config files, as projects keep them.
  for (const file of ['custom_uvicorn_worker.py', 'worker_class.conf.py', 'worker_class_name.conf.py']) fs.copyFileSync(path.join(FIXTURES, file), path.join(workdir, file));
  confdir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-dropin-conf-'));
  fs.copyFileSync(path.join(FIXTURES, 'gunicorn.conf.py'), path.join(confdir, 'gunicorn.conf.py'));
});

afterAll(() => {
  fs.rmSync(workdir, { recursive: true, force: true });
  fs.rmSync(confdir, { recursive: true, force: true });
});

/** The environment without anything of the developer's that corral reads. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(CORRAL_|UVICORN_|GUNICORN_)/.test(name) || ['WEB_CONCURRENCY', 'PORT', 'FORWARDED_ALLOW_IPS', 'VIRTUAL_ENV'].includes(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra, CORRAL_TEST_BIN: CORRAL, CORRAL_TEST_PYTHON: VENV_PYTHON };
}

interface Printed {
  code: number | null;
  settings: Record<string, { value: unknown; source: string }>;
  stderr: string;
}

/** Runs `line` in bash with gunicorn and uvicorn meaning `corral --print-config --json`. */
function printConfig(line: string, env: Record<string, string> = {}, cwd = workdir): Promise<Printed> {
  const script = [
    'corral() { "$(command -v node)" "$CORRAL_TEST_BIN" --python "$CORRAL_TEST_PYTHON" --print-config --json "$@"; }',
    'gunicorn() { corral "$@"; }',
    'uvicorn() { corral "$@"; }',
    line,
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env: cleanEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    groups.add(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      groups.delete(child.pid!);
      let settings = {};
      if (code === 0) {
        try {
          settings = JSON.parse(stdout);
        } catch {
          reject(new Error(`not JSON from ${line}:\n${stdout}\n${stderr}`));
          return;
        }
      }
      resolve({ code, settings, stderr });
    });
  });
}

interface Case {
  line: string;
  env?: Record<string, string>;
  /** Runs in the directory with a gunicorn.conf.py. */
  inConfDir?: boolean;
  expect: Record<string, unknown>;
  /** Text the warnings/notes on stderr must contain. */
  stderr?: string[];
}

const CASES: Case[] = [
  // Dockerfile CMDs
  { line: 'gunicorn -k uvicorn.workers.UvicornWorker -w 4 -b 0.0.0.0:8000 app.main:app', expect: { app: 'app.main:app', workers: 4, bind: ['0.0.0.0:8000'], worker_class: 'uvicorn.workers.UvicornWorker' } },
  { line: 'gunicorn app.main:app --workers 4 --worker-class uvicorn.workers.UvicornWorker --bind 0.0.0.0:$PORT', env: { PORT: '5000' }, expect: { workers: 4, bind: ['0.0.0.0:5000'] } },
  { line: 'gunicorn -w ${WORKERS:-4} -k uvicorn.workers.UvicornWorker main:app', expect: { workers: 4, bind: ['127.0.0.1:8000'] } },
  { line: 'gunicorn -w ${WORKERS:-4} -k uvicorn.workers.UvicornWorker main:app', env: { WORKERS: '2' }, expect: { workers: 2 } },
  { line: 'gunicorn main:app -k uvicorn_worker.UvicornWorker --bind 0.0.0.0:80 --bind [::]:80', expect: { bind: ['0.0.0.0:80', '[::]:80'], worker_class: 'uvicorn_worker.UvicornWorker' } },
  { line: 'gunicorn -k uvicorn.workers.UvicornH11Worker -b unix:/run/app/gunicorn.sock -m 007 app:app', expect: { http: 'h11', bind: ['unix:/run/app/gunicorn.sock'], umask: '0o007' } },
  {
    line: 'gunicorn app:app -k uvicorn.workers.UvicornWorker -t 120 --graceful-timeout 60 --keep-alive 5 --max-requests 1000 --max-requests-jitter 50 --log-level debug',
    expect: { timeout: 120, graceful_timeout: 60, keepalive: 5, max_requests: 1000, max_requests_jitter: 50, loglevel: 'debug' },
  },
  { line: "gunicorn -k uvicorn.workers.UvicornWorker --forwarded-allow-ips='*' -b :8000 app:app", expect: { forwarded_allow_ips: '*', bind: ['0.0.0.0:8000'] } },
  {
    line: 'gunicorn --certfile=/etc/ssl/cert.pem --keyfile=/etc/ssl/key.pem --ca-certs /etc/ssl/ca.pem -k uvicorn.workers.UvicornWorker app:app -b 0.0.0.0:443',
    expect: { certfile: '/etc/ssl/cert.pem', keyfile: '/etc/ssl/key.pem', ca_certs: '/etc/ssl/ca.pem', bind: ['0.0.0.0:443'] },
  },
  { line: 'gunicorn --chdir "$PWD/src" -k uvicorn.workers.UvicornWorker app.main:app', expect: { chdir: expect.stringMatching(/\/src$/) } },
  {
    line: 'gunicorn -e DJANGO_SETTINGS_MODULE=proj.settings -e DEBUG=0 --pythonpath src,lib -k uvicorn.workers.UvicornWorker proj.asgi:application',
    expect: { raw_env: ['DJANGO_SETTINGS_MODULE=proj.settings', 'DEBUG=0'], pythonpath: 'src,lib', app: 'proj.asgi:application' },
  },
  {
    line: 'gunicorn -w $(( 2 * 2 )) -k uvicorn.workers.UvicornWorker --preload --worker-tmp-dir /dev/shm app:app',
    expect: { workers: 4, preload_app: true, worker_tmp_dir: '/dev/shm' },
    stderr: ['--worker-tmp-dir (command line) has no effect under corral'],
  },
  {
    line: 'gunicorn app.main:app --workers 2 --worker-class uvicorn.workers.UvicornWorker --bind 0.0.0.0:8000 --log-file - --access-logfile - --capture-output --enable-stdio-inheritance',
    expect: { errorlog: '-', accesslog: '-', capture_output: true, enable_stdio_inheritance: true },
    stderr: ['--capture-output (command line) has no effect'],
  },
  {
    line: 'gunicorn -k uvicorn.workers.UvicornWorker -b 127.0.0.1:8001 -b 127.0.0.1:8002 -b unix:/tmp/app.sock -p /run/app.pid -n myapp app:app',
    expect: { bind: ['127.0.0.1:8001', '127.0.0.1:8002', 'unix:/tmp/app.sock'], pidfile: '/run/app.pid', proc_name: 'myapp' },
  },
  { line: 'gunicorn -D --statsd-host localhost:8125 -k uvicorn.workers.UvicornWorker app:app', expect: { daemon: true, statsd_host: 'localhost:8125' }, stderr: ['--daemon (command line) is not supported', '--statsd-host (command line) is not supported'] },
  {
    line: 'gunicorn -k uvicorn.workers.UvicornWorker --limit-request-line 8190 --limit-request-fields 200 --limit-request-field_size 16380 --proxy-allow-from "*" --reload --reload-extra-file config.yaml app:app',
    expect: { limit_request_line: 8190, limit_request_fields: 200, limit_request_field_size: 16380, reload: true, reload_extra_files: ['config.yaml'] },
    stderr: ['--limit-request-line (command line) is not supported', '--proxy-allow-from (command line) is not supported'],
  },
  // Procfiles (Heroku and friends set PORT and WEB_CONCURRENCY)
  { line: 'gunicorn -w 2 -k uvicorn.workers.UvicornWorker app:app', env: { PORT: '31337' }, expect: { bind: ['0.0.0.0:31337'], workers: 2 } },
  { line: 'gunicorn -k uvicorn.workers.UvicornWorker app:app', env: { WEB_CONCURRENCY: '3', PORT: '8080' }, expect: { workers: 3, bind: ['0.0.0.0:8080'] } },
  // systemd units
  {
    line: 'gunicorn --access-logfile - --workers 3 -k uvicorn.workers.UvicornWorker --bind unix:/run/gunicorn.sock myproject.asgi:application',
    expect: { workers: 3, bind: ['unix:/run/gunicorn.sock'], accesslog: '-' },
  },
  { line: 'gunicorn --workers 2 --user www-data --group www-data --umask 0007 -k uvicorn.workers.UvicornWorker -b unix:/run/app.sock app:app', expect: { user: 'www-data', group: 'www-data', umask: '0o007' } },
  // compose files and GUNICORN_CMD_ARGS
  { line: 'gunicorn -k uvicorn.workers.UvicornWorker app:app', env: { GUNICORN_CMD_ARGS: '--workers=3 --timeout 120 --bind 0.0.0.0:9000' }, expect: { workers: 3, timeout: 120, bind: ['0.0.0.0:9000'] } },
  { line: 'gunicorn -w 5 -k uvicorn.workers.UvicornWorker app:app', env: { GUNICORN_CMD_ARGS: '--workers 2', CORRAL_TIMEOUT: '90' }, expect: { workers: 5, timeout: 90 } },
  // config files
  {
    line: 'gunicorn -c gunicorn.conf.py app.main:app', inConfDir: true,
    expect: { workers: 2, bind: ['0.0.0.0:80'], timeout: 25, graceful_timeout: 7, keepalive: 4, loglevel: 'info', accesslog: '-', max_requests: 1000, forwarded_allow_ips: '10.0.0.1,10.0.0.2', post_worker_init: 'gunicorn.conf.py:post_worker_init', when_ready: 'gunicorn.conf.py:when_ready' },
    stderr: ['gunicorn.conf.py was read', 'did you mean "preload_app"', 'did you mean "keepalive"', 'server hooks when_ready in gunicorn.conf.py run in gunicorn\'s master'],
  },
  { line: 'gunicorn --config ./gunicorn.conf.py -b 0.0.0.0:9000 app:app', inConfDir: true, env: { WEB_CONCURRENCY: '6', TIMEOUT: '60' }, expect: { workers: 6, bind: ['0.0.0.0:9000'], timeout: 60 } },
  { line: 'gunicorn app:app', env: { PORT: '7000' }, inConfDir: true, expect: { bind: ['0.0.0.0:7000'], config: './gunicorn.conf.py', worker_class: 'uvicorn.workers.UvicornWorker' } },
  // uvicorn lines
  { line: 'uvicorn app.main:app --host 0.0.0.0 --port 80', expect: { bind: ['0.0.0.0:80'], workers: 1 } },
  {
    line: "uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000} --workers 4 --proxy-headers --forwarded-allow-ips '*'",
    env: { PORT: '10000' },
    expect: { bind: ['0.0.0.0:10000'], workers: 4, proxy_headers: true, forwarded_allow_ips: '*' },
  },
  { line: 'uvicorn app:app --uds /tmp/uvicorn.sock --timeout-keep-alive 75 --no-access-log', expect: { bind: ['unix:/tmp/uvicorn.sock'], keepalive: 75, access_log: false } },
  {
    line: 'uvicorn app.main:create_app --factory --host :: --port 8080 --log-level warning --limit-concurrency 100 --backlog 4096',
    expect: { factory: true, bind: ['[::]:8080'], loglevel: 'warning', limit_concurrency: 100, backlog: 4096 },
  },
  {
    line: 'uvicorn main:app --host 0.0.0.0 --port 8000 --loop uvloop --http httptools --ws websockets --lifespan on --root-path /api --interface asgi3',
    expect: { loop: 'uvloop', http: 'httptools', ws: 'websockets', lifespan: 'on', root_path: '/api', interface: 'asgi3' },
  },
  {
    line: 'uvicorn main:app --timeout-graceful-shutdown 20 --limit-max-requests 10000 --no-server-header --header X-Frame-Options:DENY --app-dir src --env-file .env',
    expect: { graceful_timeout: 20, max_requests: 10000, server_header: false, headers: ['X-Frame-Options:DENY'], app_dir: 'src', env_file: '.env' },
  },
  { line: 'uvicorn app:app', env: { UVICORN_HOST: '0.0.0.0', UVICORN_PORT: '9000', UVICORN_WORKERS: '3' }, expect: { bind: ['0.0.0.0:9000'], workers: 3 } },
  { line: 'uvicorn app:app --host 0.0.0.0', env: { WEB_CONCURRENCY: '5', FORWARDED_ALLOW_IPS: '172.16.0.0/12' }, expect: { workers: 5, bind: ['0.0.0.0:8000'], forwarded_allow_ips: '172.16.0.0/12' } },
  { line: 'uvicorn --fd 0 app:app --reload --reload-dir src --reload-include "*.yaml"', expect: { bind: ['fd://0'], reload: true, reload_dirs: ['src'], reload_includes: ['*.yaml'] } },
  { line: 'uvicorn app:app --ssl-keyfile key.pem --ssl-certfile cert.pem --ws-per-message-deflate false --ws-max-size 1048576', expect: { keyfile: 'key.pem', certfile: 'cert.pem', ws_per_message_deflate: false, ws_max_size: 1048576 } },
  // Custom UvicornWorker subclasses: their CONFIG_KWARGS show as settings from the worker class
  {
    line: 'gunicorn -k custom_uvicorn_worker.CustomUvicornWorker -w 2 -b 0.0.0.0:8000 app.main:app',
    expect: { worker_class: 'custom_uvicorn_worker.CustomUvicornWorker', workers: 2, server_header: false, headers: ['X-Worker-Class:next-to-the-app'] },
    stderr: ['worker class custom_uvicorn_worker.CustomUvicornWorker (a uvicorn.workers.UvicornWorker subclass): its CONFIG_KWARGS apply: server_header, headers'],
  },
  {
    line: 'gunicorn --worker-class corral_dropin_workers.asgi.gunicorn_worker.UvicornWorker --pythonpath "$FIXTURES" -b 0.0.0.0:8000 app.asgi:application',
    env: { FIXTURES },
    expect: { loop: 'asyncio', http: 'h11', server_header: false, headers: ['X-Worker-Class:package'] },
  },
  {
    line: 'gunicorn app.main:app', env: { GUNICORN_CMD_ARGS: '--worker-class custom_uvicorn_worker.PrecedenceWorker --keep-alive 2' },
    expect: { worker_class: 'custom_uvicorn_worker.PrecedenceWorker', keepalive: 7, forwarded_allow_ips: '*' },
    stderr: ['overrides keepalive = 2 ($GUNICORN_CMD_ARGS)'],
  },
  { line: 'gunicorn -c worker_class.conf.py app.main:app', expect: { worker_class: '__config__.ConfigFileWorker', headers: ['X-Worker-Class:config-file'], server_header: false } },
  { line: 'gunicorn -c worker_class_name.conf.py app.main:app', expect: { worker_class: 'custom_uvicorn_worker.CustomUvicornWorker', headers: ['X-Worker-Class:next-to-the-app'] } },
  { line: 'gunicorn -c worker_class_name.conf.py -k uvicorn.workers.UvicornWorker app.main:app', expect: { worker_class: 'uvicorn.workers.UvicornWorker', server_header: true, headers: [] } },
  // gunicorn's factory calls
  { line: "gunicorn -k uvicorn.workers.UvicornWorker -w 2 'app.main:create_app()'", expect: { app: 'app.main:create_app()', factory: false, workers: 2 } },
  { line: `gunicorn "app.main:create_app('prod', debug=False)" -k uvicorn_worker.UvicornWorker -b 0.0.0.0:8000`, expect: { app: "app.main:create_app('prod', debug=False)", bind: ['0.0.0.0:8000'] } },
];

describe('gunicorn and uvicorn command lines through corral --print-config --json', () => {
  it('has at least 25 of them', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  for (const [index, example] of CASES.entries()) {
    it(`${index + 1}: ${example.line}${example.env ? ` (${Object.entries(example.env).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`, async () => {
      const printed = await printConfig(example.line, example.env, example.inConfDir ? confdir : workdir);
      expect(printed.code, printed.stderr).toBe(0);
      const values = Object.fromEntries(Object.keys(example.expect).map((name) => [name, printed.settings[name]?.value]));
      expect(values).toEqual(example.expect);
      for (const text of example.stderr ?? []) expect(printed.stderr).toContain(text);
    });
  }

  it('prints a source for every setting', async () => {
    const printed = await printConfig('gunicorn -c gunicorn.conf.py -w 3 app:app', { GUNICORN_CMD_ARGS: '--timeout 99', CORRAL_KEEP_ALIVE: '11' }, confdir);
    expect(printed.settings.workers).toEqual({ value: 3, source: 'command line' });
    expect(printed.settings.timeout).toEqual({ value: 99, source: '$GUNICORN_CMD_ARGS' });
    expect(printed.settings.keepalive).toEqual({ value: 11, source: '$CORRAL_KEEP_ALIVE' });
    expect(printed.settings.graceful_timeout).toEqual({ value: 7, source: 'config file gunicorn.conf.py' });
    expect(printed.settings.boot_timeout).toEqual({ value: 60, source: 'default' });
    for (const [name, resolved] of Object.entries(printed.settings)) expect(resolved.source, name).toMatch(/\S/);
  });

  it('refuses other worker classes with exit 2 and one line naming them', async () => {
    for (const workerClass of ['sync', 'gevent', 'gthread']) {
      const printed = await printConfig(`gunicorn -k ${workerClass} -w 4 app:app`);
      expect(printed.code).toBe(2);
      expect(printed.stderr.trim().split('\n')).toHaveLength(1);
      expect(printed.stderr).toContain(`--worker-class "${workerClass}" (command line): not supported; use uvicorn.workers.UvicornWorker`);
    }
  });

  it('refuses a factory call with arguments that are not literals, naming the APP', async () => {
    const printed = await printConfig("gunicorn -k uvicorn.workers.UvicornWorker 'app.main:create_app(settings)'");
    expect(printed.code).toBe(2);
    expect(printed.stderr.trim().split('\n')).toHaveLength(1);
    expect(printed.stderr).toContain('corral: error: APP "app.main:create_app(settings)": settings is not a literal');
  });

  it('exits 2 with one line for a bad value or a missing config file', async () => {
    const bad = await printConfig('uvicorn app:app --port eighty');
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('corral: error: --port "eighty": expected a whole number of 0 or more');
    const missing = await printConfig('gunicorn -c /nonexistent/gunicorn.conf.py app:app');
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe('corral: error: --config "/nonexistent/gunicorn.conf.py": no such file');
    fs.writeFileSync(path.join(workdir, 'broken.conf.py'), 'workers = int(os.environ["NOPE"])\n');
    const broken = await printConfig('gunicorn -c broken.conf.py app:app');
    expect(broken.code).toBe(2);
    expect(broken.stderr.trim()).toBe(`corral: error: --config "broken.conf.py": the file failed to run: NameError: name 'os' is not defined`);
  });

  it('prints a readable table without --json', async () => {
    const child = spawn(process.execPath, [CORRAL, '--print-config', '-w', '3', 'app:app'], { cwd: os.tmpdir(), env: cleanEnv({}), detached: true });
    groups.add(child.pid!);
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/^workers\s+= 3 {2}\[command line\]$/m);
    expect(stdout).toMatch(/^bind\s+= \["127.0.0.1:8000"\] {2}\[default\]$/m);
  });
});
