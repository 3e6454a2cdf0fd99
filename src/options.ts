import yargs from 'yargs';
import { defaultBind, parseBind, type BindSpec } from './bind.js';
import { parseMetricsBind, resolveControlSocket, type TcpAddress } from './observability-options.js';
import { UsageError } from './exit-codes.js';
import { defaultPython } from './python.js';
import { parseSize } from './resources.js';

export const LOG_LEVELS = ['critical', 'error', 'warning', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** uvicorn.Config keyword arguments passed through to every worker unchanged. */
export type UvicornSettings = Record<string, string | number | boolean | null>;

export interface CorralConfig {
  app: string;
  factory: boolean;
  workers: number;
  binds: BindSpec[];
  appDir: string;
  python: string;
  /** Seconds a draining worker gets before SIGKILL. */
  gracefulTimeout: number;
  /** Seconds without a heartbeat before a worker counts as hung; 0 disables. */
  timeout: number;
  /** Seconds a worker may take from spawn to ready. */
  bootTimeout: number;
  maxRequests: number;
  maxRequestsJitter: number;
  /** Bytes of RSS of a worker's process tree; 0 disables. */
  maxMemory: number;
  memoryCheckInterval: number;
  maxWorkerLifetime: number;
  maxWorkerLifetimeJitter: number;
  /** How many new workers a rolling restart starts at once. */
  maxSurge: number;
  pidFile: string | undefined;
  /** Mode of unix socket files is 0o777 & ~umask. */
  umask: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  accessLog: boolean;
  /** Where access records go: undefined = the main log, '-' = stdout, else a file. */
  accessLogFile: string | undefined;
  /** Where every other record goes: undefined = stdout, '-' = stderr, else a file. */
  errorLogFile: string | undefined;
  /** Address of the /metrics, /healthz and /readyz endpoints; undefined = off. */
  metricsBind: TcpAddress | undefined;
  /** The control socket's path (given, or derived from the pid file); undefined = none. */
  controlSocket: string | undefined;
  uvicorn: UvicornSettings;
  /** `-u/--user`, `-g/--group`: who the workers run as (resolved to ids in src/privileges.ts). */
  user: string | undefined;
  group: string | undefined;
  /** Development mode: watch the code and swap in new workers when it changes. */
  reload: boolean;
  /** Directories to watch; empty means the app directory. */
  reloadDirs: string[];
  reloadIncludes: string[];
  reloadExcludes: string[];
  /** Seconds without a change before a burst of changes reloads. */
  reloadDelay: number;
  /** Files that reload whatever the patterns say (templates, .env). */
  reloadExtraFiles: string[];
}

export type CommandLine = { kind: 'run'; config: CorralConfig } | { kind: 'help'; text: string } | { kind: 'version' };

const UVICORN_CHOICES = {
  loop: ['auto', 'asyncio', 'uvloop'],
  http: ['auto', 'h11', 'httptools'],
  ws: ['auto', 'none', 'websockets', 'websockets-sansio', 'wsproto'],
  lifespan: ['auto', 'on', 'off'],
} as const;

/** Development mode (src/reload/). Repeatable, but not `array: true`: that would swallow the APP after them. */
const RELOAD_OPTIONS = {
  reload: { type: 'boolean', default: false, describe: 'Development mode: restart the workers when the code changes' },
  'reload-dir': { type: 'string', describe: 'Directory to watch, repeatable [default: the app directory]' },
  'reload-include': { type: 'string', describe: 'Glob of files to watch, repeatable [default: *.py]' },
  'reload-exclude': { type: 'string', describe: 'Glob or directory not to watch, repeatable [default: .* *.py[cod] .sw.* ~*]' },
  'reload-delay': { type: 'number', default: 0.1, describe: 'Seconds of quiet after a change before reloading' },
  'reload-extra-file': { type: 'string', describe: 'Other file that reloads when it changes (template, .env), repeatable' },
} as const;
const REPEATABLE_RELOAD_OPTIONS = ['reload-dir', 'reload-include', 'reload-exclude', 'reload-extra-file'] as const;

/** Deployment options: workers' user and group (src/privileges.ts). */
const PRIVILEGE_OPTIONS = {
  user: { alias: 'u', type: 'string', describe: 'Run the workers as this user (name or uid; corral must start as root)' },
  group: { alias: 'g', type: 'string', describe: "Run the workers as this group [default: the user's primary group]" },
} as const;

function parser(argv: readonly string[]) {
  return yargs([...argv])
    .scriptName('corral')
    .usage('Usage: corral [options] APP\n\nRuns the ASGI app APP (module:attribute) in supervised uvicorn workers.\n  -h, --help     Show this help\n  -V, --version  Show the version')
    .options({
      workers: { alias: 'w', type: 'string', describe: 'Number of worker processes [default: $WEB_CONCURRENCY or 1]' },
      bind: {
        alias: 'b',
        type: 'string',
        // Not `array: true`: that would swallow the APP that follows `-b ADDRESS`.
        describe: 'Address to listen on, repeatable: HOST:PORT, [IPV6]:PORT, unix:PATH, fd://N [default: 127.0.0.1:8000, or 0.0.0.0:$PORT]',
      },
      factory: { type: 'boolean', default: false, describe: 'APP is a factory: call it to get the app' },
      'app-dir': { type: 'string', default: '.', describe: 'Directory added to the module search path' },
      python: { type: 'string', describe: 'Python interpreter for the workers [default: $VIRTUAL_ENV/bin/python, else python3]' },
      'graceful-timeout': { type: 'number', default: 30, describe: 'Seconds a stopping worker gets to finish its requests' },
      timeout: { alias: 't', type: 'number', default: 30, describe: 'Seconds without a heartbeat before a worker is killed as hung (0: never)' },
      'boot-timeout': { type: 'number', default: 60, describe: 'Seconds a worker may take to start' },
      'max-requests': { type: 'number', default: 0, describe: 'Recycle a worker after this many requests (0: never)' },
      'max-requests-jitter': { type: 'number', default: 0, describe: 'Random extra requests, up to this many, per worker' },
      'max-memory': { type: 'string', default: '0', describe: 'Recycle a worker whose process tree uses more resident memory, e.g. 512M (0: never)' },
      'memory-check-interval': { type: 'number', default: 5, describe: 'Seconds between CPU and memory samples of the workers' },
      'max-worker-lifetime': { type: 'number', default: 0, describe: 'Recycle a worker after this many seconds (0: never)' },
      'max-worker-lifetime-jitter': { type: 'number', default: 0, describe: 'Random extra seconds of lifetime, up to this, per worker' },
      'max-surge': { type: 'number', describe: 'New workers started at once during a rolling restart [default: a quarter of the workers, at least 1]' },
      pid: { alias: 'p', type: 'string', describe: 'Write the master pid to this file' },
      umask: { alias: 'm', type: 'string', default: '0o117', describe: 'Umask for unix socket files (octal)' },
      'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, describe: 'Log level' },
      'log-format': { type: 'string', default: 'auto', choices: LOG_FORMATS, describe: 'Log format: json, pretty, or auto (pretty on a terminal)' },
      'access-log': { type: 'boolean', default: true, describe: 'Log every request (--no-access-log to turn off)' },
      'access-logfile': { type: 'string', nargs: 1, describe: 'Write access records to this file (- for stdout) [default: the main log]' },
      'error-logfile': { type: 'string', nargs: 1, describe: 'Write every other record to this file (- for stderr) [default: stdout]' },
      'metrics-bind': { type: 'string', describe: 'Serve /metrics, /healthz and /readyz on HOST:PORT [default: off]' },
      'control-socket': { type: 'string', describe: 'Unix socket for corral status/reload/scale/stop [default: next to the --pid file]' },
      'keep-alive': { type: 'number', default: 5, describe: 'Seconds to keep an idle connection open (uvicorn --timeout-keep-alive)' },
      'proxy-headers': { type: 'boolean', default: true, describe: 'Trust X-Forwarded-For/Proto from --forwarded-allow-ips' },
      'forwarded-allow-ips': { type: 'string', describe: 'Addresses trusted for proxy headers [default: $FORWARDED_ALLOW_IPS or 127.0.0.1]' },
      'root-path': { type: 'string', default: '', describe: 'ASGI root_path for an app behind a path prefix' },
      backlog: { type: 'number', default: 2048, describe: 'Maximum number of pending connections' },
      'limit-concurrency': { type: 'number', describe: 'Answer 503 beyond this many concurrent connections or tasks, per worker' },
      loop: { type: 'string', default: 'auto', choices: UVICORN_CHOICES.loop, describe: 'Event loop implementation' },
      http: { type: 'string', default: 'auto', choices: UVICORN_CHOICES.http, describe: 'HTTP protocol implementation' },
      ws: { type: 'string', default: 'auto', choices: UVICORN_CHOICES.ws, describe: 'WebSocket protocol implementation' },
      lifespan: { type: 'string', default: 'auto', choices: UVICORN_CHOICES.lifespan, describe: 'Lifespan mode' },
      'ssl-keyfile': { type: 'string', describe: 'TLS key file' },
      'ssl-certfile': { type: 'string', describe: 'TLS certificate file' },
    })
    .options(PRIVILEGE_OPTIONS)
    .options(RELOAD_OPTIONS)
    .strictOptions()
    .help(false)
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parserConfiguration({ 'camel-case-expansion': false })
    .fail((message, error) => {
      throw new UsageError(error?.message ?? message);
    });
}

function nonNegative(option: string, value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`--${option} ${String(value)}: expected a number of 0 or more`);
  }
  return value;
}

function positive(option: string, value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${option} ${String(value)}: expected a number greater than 0`);
  }
  return value;
}

function memorySize(text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined) throw new UsageError(`--max-memory ${JSON.stringify(text)}: expected a size such as 512M, 2G or 0 for no limit`);
  return bytes;
}

function positiveInteger(option: string, text: string): number {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isInteger(value) || value < 1) {
    throw new UsageError(`--${option} ${JSON.stringify(text)}: expected a whole number of 1 or more`);
  }
  return value;
}

function nonEmpty(option: string, value: string | undefined): string | undefined {
  if (value !== undefined && value.trim() === '') throw new UsageError(`--${option} "": expected a path`);
  return value;
}

function parseUmask(text: string): number {
  const digits = text.replace(/^0o/i, '');
  if (!/^[0-7]{1,4}$/.test(digits)) throw new UsageError(`--umask ${JSON.stringify(text)}: expected an octal number such as 0o117`);
  return parseInt(digits, 8);
}

/** Every value of a repeatable option; an empty one is a usage error. */
function repeatedValues(option: string, value: unknown, expected: string): string[] {
  const values = ([] as unknown[]).concat(value ?? []).map(String);
  for (const text of values) {
    if (text.trim() === '') throw new UsageError(`--${option} ${JSON.stringify(text)}: expected ${expected}`);
  }
  return values;
}

/** Restart a quarter of the workers at a time: 32 workers take 4 boot times, not 32, and 3 in 4 keep serving. */
export function defaultMaxSurge(workers: number): number {
  return Math.max(1, Math.ceil(workers / 4));
}

/** A single-valued option given twice takes its last value, as in gunicorn and uvicorn. */
function lastValues<T extends Record<string, unknown>>(args: T, arrays: ReadonlySet<string>): T {
  const result: Record<string, unknown> = { ...args };
  for (const [key, value] of Object.entries(result)) {
    if (Array.isArray(value) && !arrays.has(key)) result[key] = value[value.length - 1];
  }
  return result as T;
}

/** Turns argv and the environment into a configuration, or help, or version. Pure: throws UsageError. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CommandLine {
  const yargsParser = parser(argv);
  if (argv.includes('--help') || argv.includes('-h')) {
    let text = '';
    yargsParser.showHelp((help: string) => (text = help));
    return { kind: 'help', text };
  }
  if (argv.includes('--version') || argv.includes('-V')) return { kind: 'version' };
  const args = lastValues(yargsParser.parseSync(), new Set<string>(['bind', '_', ...REPEATABLE_RELOAD_OPTIONS]));

  const positionals = args._.map(String);
  if (positionals.length === 0) throw new UsageError('no APP given: pass the app as module:attribute, e.g. corral app.main:app');
  if (positionals.length > 1) throw new UsageError(`one APP expected, got ${positionals.length}: ${positionals.join(' ')}`);
  const app = positionals[0]!;
  if (!/^[\w.]+:[\w.]+$/.test(app)) {
    throw new UsageError(`APP ${JSON.stringify(app)}: expected module:attribute, e.g. app.main:app`);
  }

  const workers = positiveInteger('workers', args.workers ?? env.WEB_CONCURRENCY ?? '1');
  const givenBinds = ([] as unknown[]).concat(args.bind ?? []).map(String);
  const binds = (givenBinds.length > 0 ? givenBinds : [defaultBind(env)]).map(parseBind);

  const uvicorn: UvicornSettings = {
    timeout_keep_alive: nonNegative('keep-alive', args['keep-alive']),
    proxy_headers: args['proxy-headers'],
    forwarded_allow_ips: args['forwarded-allow-ips'] ?? env.FORWARDED_ALLOW_IPS ?? null,
    root_path: args['root-path'],
    backlog: positiveInteger('backlog', String(args.backlog)),
    loop: args.loop,
    http: args.http,
    ws: args.ws,
    lifespan: args.lifespan,
  };
  if (args['limit-concurrency'] !== undefined) uvicorn.limit_concurrency = positiveInteger('limit-concurrency', String(args['limit-concurrency']));
  if (args['ssl-keyfile'] !== undefined) uvicorn.ssl_keyfile = args['ssl-keyfile'];
  if (args['ssl-certfile'] !== undefined) uvicorn.ssl_certfile = args['ssl-certfile'];

  const config: CorralConfig = {
    app,
    factory: args.factory,
    workers,
    binds,
    appDir: args['app-dir'],
    python: args.python ?? defaultPython(env),
    gracefulTimeout: nonNegative('graceful-timeout', args['graceful-timeout']),
    timeout: nonNegative('timeout', args.timeout),
    bootTimeout: nonNegative('boot-timeout', args['boot-timeout']),
    maxRequests: nonNegative('max-requests', args['max-requests']),
    maxRequestsJitter: nonNegative('max-requests-jitter', args['max-requests-jitter']),
    maxMemory: memorySize(args['max-memory']),
    memoryCheckInterval: positive('memory-check-interval', args['memory-check-interval']),
    maxWorkerLifetime: nonNegative('max-worker-lifetime', args['max-worker-lifetime']),
    maxWorkerLifetimeJitter: nonNegative('max-worker-lifetime-jitter', args['max-worker-lifetime-jitter']),
    maxSurge: args['max-surge'] === undefined ? defaultMaxSurge(workers) : positiveInteger('max-surge', String(args['max-surge'])),
    pidFile: args.pid,
    umask: parseUmask(args.umask),
    logLevel: args['log-level'] as LogLevel,
    logFormat: args['log-format'] as LogFormat,
    accessLog: args['access-log'],
    accessLogFile: nonEmpty('access-logfile', args['access-logfile']),
    errorLogFile: nonEmpty('error-logfile', args['error-logfile']),
    metricsBind: args['metrics-bind'] === undefined ? undefined : parseMetricsBind(args['metrics-bind']),
    controlSocket: resolveControlSocket(nonEmpty('control-socket', args['control-socket']), args.pid),
    uvicorn,
    user: args.user,
    group: args.group,
    reload: args.reload,
    reloadDirs: repeatedValues('reload-dir', args['reload-dir'], 'a directory to watch'),
    reloadIncludes: repeatedValues('reload-include', args['reload-include'], 'a glob such as *.html'),
    reloadExcludes: repeatedValues('reload-exclude', args['reload-exclude'], 'a glob such as *_test.py, or a directory'),
    reloadDelay: nonNegative('reload-delay', args['reload-delay']),
    reloadExtraFiles: repeatedValues('reload-extra-file', args['reload-extra-file'], 'a file to watch'),
  };
  return { kind: 'run', config };
}
