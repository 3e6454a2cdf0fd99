import { describe, expect, it } from 'vitest';
import type { ConfigFileContents } from '../../../src/config/config-file.js';
import { CorralError, UsageError } from '../../../src/exit-codes.js';
import { parseCommandLine, preliminarySettings, type CorralConfig } from '../../../src/config/resolve.js';
import type { WorkerClassResult } from '../../../src/config/worker-class.js';
import { CHECKED_CLASS, configFileContents, resolveChecked, resolveConfig } from '../../helpers/config.js';
import { usageError } from '../../helpers/errors.js';

/** `argv` resolved with `env` and a config file holding `file`, on a machine with a 3-CPU limit. */
function run(argv: string[], env: NodeJS.ProcessEnv = {}, file?: Partial<ConfigFileContents>): CorralConfig {
  return resolveConfig(argv, env, { configFile: file ? configFileContents(file) : undefined, cpuLimit: () => ({ cpus: 3, found: 'fake limit' }) });
}

describe('values', () => {
  it('keeps the existing defaults', () => {
    const config = run(['app:app']);
    expect(config).toMatchObject({ workers: 1, timeout: 30, gracefulTimeout: 30, bootTimeout: 60, maxSurge: 1, umask: 0o117, logLevel: 'info', accessLog: true, maxMemory: 0 });
    expect(config.binds).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 8000, family: 4 }]);
    expect(config.uvicorn).toMatchObject({ timeout_keep_alive: 5, backlog: 2048, forwarded_allow_ips: '127.0.0.1,::1', proxy_headers: true });
  });

  it('reads --shutdown-delay from every source, 0 by default', () => {
    expect(run(['app:app']).shutdownDelay).toBe(0);
    expect(run(['--shutdown-delay', '7.5', 'app:app']).shutdownDelay).toBe(7.5);
    expect(run(['app:app'], { CORRAL_SHUTDOWN_DELAY: '10' }).shutdownDelay).toBe(10);
    expect(run(['app:app'], { GUNICORN_CMD_ARGS: '--shutdown-delay=3' }).shutdownDelay).toBe(3);
    expect(run(['app:app'], {}, { settings: { shutdown_delay: 15 } }).shutdownDelay).toBe(15);
    expect(usageError(() => run(['--shutdown-delay', '-1', 'app:app']))).toBe('--shutdown-delay "-1": expected a number of 0 or more');
  });

  it('names the option, the value and what is allowed', () => {
    expect(usageError(() => run(['-w', 'lots', 'app:app']))).toBe('--workers "lots": expected a whole number of 1 or more, or auto');
    expect(usageError(() => run(['--timeout', '-1', 'app:app']))).toBe('--timeout "-1": expected a number of 0 or more');
    expect(usageError(() => run(['--loop', 'trio', 'app:app']))).toBe('--loop "trio": expected one of auto, asyncio, uvloop, zuvloop, or module:attribute');
    expect(usageError(() => run(['app:app'], { CORRAL_WORKERS: 'x' }))).toBe('$CORRAL_WORKERS "x": expected a whole number of 1 or more, or auto');
    expect(usageError(() => run(['app:app'], {}, { settings: { workers: 'many' } }))).toBe('workers in gunicorn.conf.py "many": expected a whole number of 1 or more, or auto');
    expect(usageError(() => run(['-e', 'NOEQUALS', 'app:app']))).toBe('--env "NOEQUALS": expected KEY=VALUE');
  });

  it('accepts gunicorn log levels in any case', () => {
    expect(run(['--log-level', 'WARN', 'app:app']).logLevel).toBe('warning');
  });
});

describe('worker classes', () => {
  it('accepts both UvicornWorker spellings; the H11 variants mean --http h11', () => {
    expect(run(['-k', 'uvicorn.workers.UvicornWorker', 'app:app']).uvicorn.http).toBe('auto');
    expect(run(['-k', 'uvicorn_worker.UvicornH11Worker', 'app:app']).uvicorn.http).toBe('h11');
    expect(run(['-k', 'uvicorn.workers.UvicornH11Worker', '--http', 'httptools', 'app:app']).uvicorn.http).toBe('httptools');
  });

  it('refuses gunicorn\'s own classes by name, with the ones it takes', () => {
    for (const name of ['gevent', 'sync', 'gunicorn.workers.gthread.ThreadWorker', 'egg:gunicorn#sync']) {
      expect(usageError(() => run(['-k', name, 'app:app']))).toContain(`--worker-class "${name}" (command line): not supported; use uvicorn.workers.UvicornWorker`);
    }
  });

  it('leaves any other class to be imported and checked', () => {
    expect(run(['-k', 'app.workers.MyUvicornWorker', 'app:app']).workerClass).toEqual({ name: 'app.workers.MyUvicornWorker', pending: true });
  });
});

describe('a UvicornWorker subclass, once checked', () => {
  it('with no CONFIG_KWARGS of its own: the base class\'s meaning (H11 → --http h11 unless given)', () => {
    const h11: WorkerClassResult = { base: 'uvicorn_worker.UvicornH11Worker', h11: true };
    expect(resolveChecked(['-k', CHECKED_CLASS], h11).uvicorn.http).toBe('h11');
    expect(resolveChecked(['-k', CHECKED_CLASS, '--http', 'httptools'], h11).uvicorn.http).toBe('httptools');
    expect(resolveChecked(['-k', CHECKED_CLASS], h11).settings.config_kwargs).toBeUndefined();
  });

  it('refuses a class that is not a UvicornWorker subclass, or overrides its methods: exit 2, one line', () => {
    expect(usageError(() => resolveChecked(['-k', CHECKED_CLASS], { refused: 'not-uvicorn', bases: ['gunicorn.workers.sync.SyncWorker', 'gunicorn.workers.base.Worker'] }))).toBe(
      `--worker-class "${CHECKED_CLASS}" (command line): ${CHECKED_CLASS} is not a UvicornWorker subclass (its bases: gunicorn.workers.sync.SyncWorker, gunicorn.workers.base.Worker); ` +
        'use uvicorn.workers.UvicornWorker or uvicorn_worker.UvicornWorker (or their H11 variants, or a subclass of them). corral runs ASGI apps on uvicorn only; keep gunicorn for WSGI apps.',
    );
    expect(usageError(() => resolveChecked(['-k', CHECKED_CLASS], { refused: 'overrides', base: 'uvicorn_worker.UvicornWorker', methods: ['init_process', 'run'] }))).toContain(
      `${CHECKED_CLASS} overrides init_process, run of uvicorn_worker.UvicornWorker, which corral never calls`,
    );
  });

  it('a class whose module does not import: exit 4 with the traceback', () => {
    let error: unknown;
    try {
      resolveChecked(['-k', CHECKED_CLASS], { import_error: "ModuleNotFoundError: No module named 'x'", traceback: 'Traceback …', missing_gunicorn: false });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CorralError);
    expect((error as CorralError).exitCode).toBe(4);
    expect((error as CorralError).detail).toBe('Traceback …');
    expect((error as Error).message).toBe(`cannot import the worker class "${CHECKED_CLASS}" (command line): ModuleNotFoundError: No module named 'x'`);
  });
});

describe('APP', () => {
  it('takes gunicorn\'s factory call; --factory with it is a usage error', () => {
    expect(run(["app:create_app('x', n=2)"]).app).toBe("app:create_app('x', n=2)");
    expect(usageError(() => run(['--factory', 'app:create_app()']))).toBe('APP "app:create_app()" calls the factory already; drop --factory (command line), which would call what it returns');
    expect(usageError(() => run(['app:create_app(x)']))).toMatch(/^APP "app:create_app\(x\)": x is not a literal/);
  });
});

describe('precedence: defaults < config file < GUNICORN_CMD_ARGS < CORRAL_CMD_ARGS < CORRAL_<OPTION> < command line', () => {
  const file = { settings: { workers: 2, timeout: 11, keepalive: 7, loglevel: 'debug', graceful_timeout: 12, backlog: 100 } };
  it('layers every source', () => {
    const env = {
      WEB_CONCURRENCY: '9',
      GUNICORN_CMD_ARGS: '--workers 3 --timeout 13 --keep-alive 8 --graceful-timeout 14',
      CORRAL_CMD_ARGS: '--workers 4 --timeout 15 --keep-alive 9',
      CORRAL_WORKERS: '5',
      CORRAL_TIMEOUT: '16',
    };
    const config = run(['-w', '6', 'app:app'], env, file);
    expect(config.settings.workers).toEqual({ value: 6, source: 'command line' });
    expect(config.settings.timeout).toEqual({ value: 16, source: '$CORRAL_TIMEOUT' });
    expect(config.settings.keepalive).toEqual({ value: 9, source: '$CORRAL_CMD_ARGS' });
    expect(config.settings.graceful_timeout).toEqual({ value: 14, source: '$GUNICORN_CMD_ARGS' });
    expect(config.settings.loglevel).toEqual({ value: 'debug', source: 'config file gunicorn.conf.py' });
    expect(config.settings.backlog).toEqual({ value: 100, source: 'config file gunicorn.conf.py' });
    expect(config.settings.max_requests).toEqual({ value: 0, source: 'default' });
  });

  it('reads WEB_CONCURRENCY, PORT and FORWARDED_ALLOW_IPS as defaults, below the config file', () => {
    const env = { WEB_CONCURRENCY: '7', PORT: '5000', FORWARDED_ALLOW_IPS: '10.0.0.1' };
    const config = run(['app:app'], env);
    expect(config.settings.workers).toEqual({ value: 7, source: '$WEB_CONCURRENCY' });
    expect(config.settings.bind).toEqual({ value: ['0.0.0.0:5000'], source: '$PORT' });
    expect(config.uvicorn.forwarded_allow_ips).toBe('10.0.0.1');
    expect(run(['app:app'], env, { settings: { workers: 2 } }).workers).toBe(2);
  });

  it('replaces a list from a lower source and adds up repeats within one', () => {
    const config = run(['-b', '127.0.0.1:1', '-b', 'unix:/tmp/x.sock', 'app:app'], {}, { settings: { bind: '0.0.0.0:80' } });
    expect(config.settings.bind!.value).toEqual(['127.0.0.1:1', 'unix:/tmp/x.sock']);
  });

  it('reads UVICORN_<NAME> below CORRAL_<OPTION>, and UVICORN_APP', () => {
    const config = run([], { UVICORN_APP: 'main:app', UVICORN_HOST: '0.0.0.0', UVICORN_PORT: '9000', UVICORN_WORKERS: '3', CORRAL_WORKERS: '4', UVICORN_ACCESS_LOG: 'false', UVICORN_RELOAD_DIRS: 'src lib' });
    expect(config.app).toBe('main:app');
    expect(config.settings.bind!.value).toEqual(['0.0.0.0:9000']);
    expect(config.workers).toBe(4);
    expect(config.accessLog).toBe(false);
    expect(config.reloadDirs).toEqual(['src', 'lib']);
  });

  it('finds the config file through -c, $CORRAL_CONFIG or GUNICORN_CMD_ARGS', () => {
    expect(preliminarySettings(['-c', 'a.py', 'app:app'], { CORRAL_CONFIG: 'b.py' }).config).toBe('a.py');
    expect(preliminarySettings(['app:app'], { CORRAL_CONFIG: 'b.py', GUNICORN_CMD_ARGS: '-c c.py' }).config).toBe('b.py');
    expect(preliminarySettings(['app:app'], { GUNICORN_CMD_ARGS: '-c c.py --chdir /srv' })).toMatchObject({ config: 'c.py', chdir: '/srv' });
    expect(preliminarySettings(['app:app'], {}).config).toBeUndefined();
  });

  it('warns about a CORRAL_ variable that looks like a misspelt option', () => {
    expect(run(['app:app'], { CORRAL_WORKER: '3' }).notices.map((notice) => notice.msg)).toContain('$CORRAL_WORKER is not a corral variable and is ignored; did you mean $CORRAL_WORKERS?');
  });
});

describe('uvicorn binds', () => {
  it('turns --host/--port, --uds and --fd into one bind, as uvicorn picks it', () => {
    expect(run(['--host', '::', '--port', '8080', 'app:app']).settings.bind!.value).toEqual(['[::]:8080']);
    expect(run(['--port', '9000', 'app:app']).settings.bind!.value).toEqual(['127.0.0.1:9000']);
    expect(run(['--uds', '/tmp/u.sock', '--host', '0.0.0.0', 'app:app']).settings.bind!.value).toEqual(['unix:/tmp/u.sock']);
    expect(run(['--fd', '3', 'app:app']).binds).toEqual([{ kind: 'fd', fd: 3 }]);
    expect(run(['-b', '127.0.0.1:1', '--port', '2', 'app:app']).settings.bind!.value).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
  });
});

describe('settings corral accepts but does differently, or cannot honour', () => {
  it('says what it does instead of --worker-tmp-dir, and warns about --daemon and statsd', () => {
    const notices = run(['--worker-tmp-dir', '/dev/shm', '-D', '--statsd-host', 'localhost:8125', '--limit-request-line', '8190', 'app:app']).notices;
    const levels = Object.fromEntries(notices.map((notice) => [notice.setting, notice.level]));
    expect(levels).toMatchObject({ worker_tmp_dir: 'info', daemon: 'warn', statsd_host: 'warn', limit_request_line: 'warn' });
    expect(notices.find((notice) => notice.setting === 'daemon')!.msg).toContain('--daemon (command line) is not supported');
  });

  it('forks by default; --preload is honoured, and said to have no effect where nothing is forked', () => {
    expect(run(['app:app'])).toMatchObject({ startMethod: 'fork', preloadApp: false });
    expect(run(['--start-method', 'spawn', 'app:app'], { CORRAL_PRELOAD: 'true' })).toMatchObject({ startMethod: 'spawn', preloadApp: true });
    expect(run(['app:app'], { CORRAL_START_METHOD: 'spawn' }).startMethod).toBe('spawn');
    expect(run(['--preload', 'app:app']).notices).toEqual([]);
    expect(run(['--preload', '--start-method', 'spawn', 'app:app']).notices).toEqual([
      expect.objectContaining({ setting: 'preload_app', msg: expect.stringContaining('no effect with --start-method spawn') }),
    ]);
    expect(run(['--preload', '--reload', 'app:app']).notices.map((notice) => notice.msg)).toContainEqual(expect.stringContaining('no effect with --reload'));
  });

  it('says nothing about settings left at their defaults', () => {
    expect(run(['app:app']).notices).toEqual([]);
  });

  it('writes gunicorn\'s log files, and the control socket next to the pid file', () => {
    const config = run(['--access-logfile', '/var/log/access.log', '--log-file', '-', '-p', '/run/app.pid', '--metrics-bind', '127.0.0.1:9100', 'app:app']);
    expect(config).toMatchObject({ accessLogFile: '/var/log/access.log', errorLogFile: '-', controlSocket: '/run/app.control.sock', metricsBind: { host: '127.0.0.1', port: 9100 } });
    expect(config.notices).toEqual([]);
    expect(run(['-p', '/run/app.pid', '--no-control-socket', 'app:app']).controlSocket).toBeUndefined();
    expect(run(['app:app'])).toMatchObject({ accessLogFile: undefined, errorLogFile: undefined, controlSocket: undefined, metricsBind: undefined });
  });
});

describe('config files', () => {
  it('names the setting meant by a misspelt name, and ignores helper variables', () => {
    const config = run(['app:app'], {}, { settings: { preload: true, keep_alive: 5, work_class: 'x', cores: 4, host: '0.0.0.0', workers_per_core: 1, graceful_timeout_str: '120', use_loglevel: 'info' } });
    const meant = config.notices.filter((notice) => notice.level === 'warn').map((notice) => notice.setting);
    expect(meant.sort()).toEqual(['keepalive', 'preload_app', 'worker_class']);
    expect(config.notices[0]!.msg).toContain('did you mean');
  });

  it('sorts hooks into worker-side ones it runs and master-side ones it names in a warning', () => {
    const config = run(['app:app'], {}, { functions: { post_worker_init: { arity: 1 }, worker_exit: { arity: 2 }, when_ready: { arity: 1 }, on_starting: { arity: 1 }, helper: { arity: 0 } } });
    expect(config.configFile).toEqual({ path: '/srv/gunicorn.conf.py', workerHooks: ['post_worker_init', 'worker_exit'], masterHooks: ['on_starting', 'when_ready'] });
    expect(config.notices.find((notice) => notice.level === 'warn')!.msg).toContain('server hooks on_starting, when_ready in gunicorn.conf.py run in gunicorn\'s master; corral does not run them');
    expect(config.settings.post_worker_init).toEqual({ value: 'gunicorn.conf.py:post_worker_init', source: 'config file gunicorn.conf.py' });
  });

  it('names a setting whose value cannot reach the workers', () => {
    const config = run(['app:app'], {}, { unreadable: { chdir: "PosixPath('/srv')", my_helper: '<object>' } });
    expect(config.notices.map((notice) => notice.msg)).toEqual([`gunicorn.conf.py: "chdir" = PosixPath('/srv') cannot be passed to the workers and is ignored`]);
  });

  it('takes the app from wsgi_app and uvicorn keyword names', () => {
    const config = run([], {}, { settings: { wsgi_app: 'proj.asgi:application', timeout_keep_alive: 30, raw_env: ['A=1', 'B=x=y'] } });
    expect(config.app).toBe('proj.asgi:application');
    expect(config.uvicorn.timeout_keep_alive).toBe(30);
    expect(config.rawEnv).toEqual({ A: '1', B: 'x=y' });
  });
});

describe('reload options', () => {
  it('are off by default, with uvicorn’s delay of 0.1 s', () => {
    const c = run(['app:app']);
    expect(c).toMatchObject({ reload: false, reloadDirs: [], reloadIncludes: [], reloadExcludes: [], reloadDelay: 0.1, reloadExtraFiles: [] });
  });

  it('take repeatable dirs, patterns and extra files, without swallowing the APP', () => {
    const c = run([
      '--reload',
      '--reload-dir', 'src',
      '--reload-dir', 'lib',
      '--reload-include', '*.html',
      '--reload-exclude', '*_test.py',
      '--reload-extra-file', '.env',
      '--reload-delay', '0.5',
      'app.main:app',
    ]);
    expect(c).toMatchObject({
      app: 'app.main:app',
      reload: true,
      reloadDirs: ['src', 'lib'],
      reloadIncludes: ['*.html'],
      reloadExcludes: ['*_test.py'],
      reloadExtraFiles: ['.env'],
      reloadDelay: 0.5,
    });
  });

  it('reject a negative delay and empty values with the option named', () => {
    expect(() => run(['--reload-delay', '-1', 'app:app'])).toThrow(UsageError);
    expect(() => run(['--reload-delay', '-1', 'app:app'])).toThrow('--reload-delay "-1": expected a number of 0 or more');
    expect(() => run(['--reload-include', '', 'app:app'])).toThrow('--reload-include "": expected a value that is not empty');
  });
});

describe('--workers auto', () => {
  it('uses the CPU limit and says what it found', () => {
    const config = run(['-w', 'auto', 'app:app']);
    expect(config.workers).toBe(3);
    expect(config.notices[0]).toMatchObject({ level: 'info', setting: 'workers' });
    expect(config.notices[0]!.msg).toContain('fake limit → 3 workers');
    expect(run([], { WEB_CONCURRENCY: 'auto', UVICORN_APP: 'a:b' }).workers).toBe(3);
  });
});

describe('actions', () => {
  it('returns print-config with --json, check-config, help and version', () => {
    expect(parseCommandLine(['--print-config', '--json', 'app:app'], {}).kind).toBe('print-config');
    expect(parseCommandLine(['--check-config', 'app:app'], {}).kind).toBe('check-config');
    expect(parseCommandLine(['--help'], {}).kind).toBe('help');
    expect(parseCommandLine(['-v'], {}).kind).toBe('version');
  });
});

// The core options' tests, kept from before the settings table, with its messages.
function runOnly(argv: string[], env: NodeJS.ProcessEnv = {}): CorralConfig {
  const parsed = parseCommandLine(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

describe('parseCommandLine', () => {
  it('has gunicorn and uvicorn defaults', () => {
    const config = runOnly(['app.main:app']);
    expect(config).toMatchObject({
      app: 'app.main:app',
      workers: 1,
      binds: [{ kind: 'tcp', host: '127.0.0.1', port: 8000 }],
      gracefulTimeout: 30,
      timeout: 30,
      accessLog: true,
      factory: false,
      python: 'python3',
    });
    expect(config.uvicorn).toMatchObject({ timeout_keep_alive: 5, backlog: 2048, lifespan: 'auto', loop: 'auto', http: 'auto', proxy_headers: true });
  });

  it('reads WEB_CONCURRENCY, PORT, VIRTUAL_ENV and FORWARDED_ALLOW_IPS', () => {
    const config = runOnly(['app:app'], { WEB_CONCURRENCY: '3', PORT: '5000', VIRTUAL_ENV: '/srv/venv', FORWARDED_ALLOW_IPS: '*' });
    expect(config.workers).toBe(3);
    expect(config.binds).toEqual([{ kind: 'tcp', host: '0.0.0.0', port: 5000, family: 4 }]);
    expect(config.python).toBe('/srv/venv/bin/python');
    expect(config.uvicorn.forwarded_allow_ips).toBe('*');
  });

  it('lets the command line win over the environment', () => {
    const config = runOnly(['-w', '2', '-b', '127.0.0.1:9000', '--python', '/usr/bin/python3', 'app:app'], { WEB_CONCURRENCY: '8', PORT: '5000' });
    expect(config.workers).toBe(2);
    expect(config.binds).toHaveLength(1);
    expect(config.python).toBe('/usr/bin/python3');
  });

  it('takes repeated binds and uvicorn pass-through options', () => {
    const config = runOnly([
      '-b', '127.0.0.1:8000', '--bind', 'unix:/tmp/x.sock', '--keep-alive', '10', '--no-proxy-headers',
      '--root-path', '/api', '--limit-concurrency', '100', '--http', 'h11', '--loop', 'asyncio', '--ws', 'none',
      '--lifespan', 'off', '--ssl-keyfile', 'k.pem', '--ssl-certfile', 'c.pem', '--no-access-log', '--factory', 'app:create',
    ]);
    expect(config.binds.map((bind) => bind.kind)).toEqual(['tcp', 'unix']);
    expect(config.accessLog).toBe(false);
    expect(config.factory).toBe(true);
    expect(config.uvicorn).toMatchObject({
      timeout_keep_alive: 10, proxy_headers: false, root_path: '/api', limit_concurrency: 100, http: 'h11',
      loop: 'asyncio', ws: 'none', lifespan: 'off', ssl_keyfile: 'k.pem', ssl_certfile: 'c.pem',
    });
  });

  it('takes the last value of a single-valued option given twice', () => {
    expect(runOnly(['-w', '2', '-w', '5', 'app:app']).workers).toBe(5);
  });

  it('parses sizes and recycling limits; max-surge is every worker when they are forked, a quarter when spawned', () => {
    const config = runOnly(['--max-memory', '512M', '--max-requests', '1000', '--max-requests-jitter', '50', '--max-worker-lifetime', '3600', 'app:app']);
    expect(config.maxMemory).toBe(512 * 1024 * 1024);
    expect(config.maxRequests).toBe(1000);
    expect(config.maxRequestsJitter).toBe(50);
    expect(config.maxWorkerLifetime).toBe(3600);
    expect(runOnly(['-w', '9', 'app:app']).maxSurge).toBe(9);
    expect(runOnly(['-w', '9', '--start-method', 'spawn', 'app:app']).maxSurge).toBe(3);
    expect(runOnly(['-w', '9', '--max-surge', '1', 'app:app']).maxSurge).toBe(1);
  });

  it('answers --help and --version', () => {
    const help = parseCommandLine(['--help'], {});
    expect(help.kind).toBe('help');
    if (help.kind === 'help') expect(help.text).toContain('--workers');
    expect(parseCommandLine(['--version'], {}).kind).toBe('version');
  });

  it.each([
    [['--bogus', 'app:app'], 'unknown option --bogus'],
    [['app:app', 'other:app'], 'one APP expected'],
    [[], 'no APP given'],
    [['app'], 'expected module:attribute'],
    [['-w', '0', 'app:app'], '--workers "0": expected a whole number of 1 or more'],
    [['-w', 'many', 'app:app'], '--workers "many"'],
    [['--graceful-timeout', '-1', 'app:app'], '--graceful-timeout "-1": expected a number of 0 or more'],
    [['--loop', 'trio', 'app:app'], '--loop "trio": expected one of auto, asyncio, uvloop'],
    [['--max-memory', 'lots', 'app:app'], '--max-memory "lots": expected a size such as 512M, 2G or 0 for no limit'],
    [['--memory-check-interval', '0', 'app:app'], '--memory-check-interval "0": expected a number greater than 0'],
    [['--umask', '999', 'app:app'], '--umask "999"'],
    [['-b', 'nowhere:port', 'app:app'], '--bind "nowhere:port"'],
  ])('rejects %j with a usage error: %s', (argv, message) => {
    expect(() => parseCommandLine(argv, {})).toThrowError(UsageError);
    expect(() => parseCommandLine(argv, {})).toThrowError(message);
  });

  it('rejects a bad WEB_CONCURRENCY by name', () => {
    expect(() => parseCommandLine(['app:app'], { WEB_CONCURRENCY: 'x' })).toThrowError('$WEB_CONCURRENCY "x": expected a whole number of 1 or more, or auto');
  });
});
