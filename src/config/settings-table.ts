/**
 * Every setting corral knows: its own, gunicorn's and uvicorn's, in one table. The table drives the
 * command-line parser, the config-file reader, the environment variables, --print-config and the
 * compatibility table in docs/configuration.md. To add a setting, add one entry here.
 */

export type SettingType =
  | 'int' // a whole number of 0 or more
  | 'posint' // a whole number of 1 or more
  | 'float' // a number of 0 or more
  | 'signed-int' // any whole number (uvicorn's ssl enums)
  | 'string'
  | 'bool'
  | 'list' // repeatable: each occurrence adds one value
  | 'octal'
  | 'size' // bytes, written as 512M, 2G, 1.5GiB or a number of bytes
  | 'positive' // a number greater than 0
  | 'workers' // posint or "auto"
  | 'choice'
  | 'dict' // config file only (logconfig_dict)
  | 'hook'; // config file only: a function

/** A resolved value as corral prints it. */
export type Value = string | number | boolean | null | string[] | Record<string, unknown>;

/**
 * honoured: has its gunicorn/uvicorn meaning. ignored: accepted, corral does something else (the log
 * says what). unsupported: cannot be honoured; a warning names it whenever it is set.
 */
export type Support = 'honoured' | 'ignored' | 'unsupported';

export type Origin = 'corral' | 'gunicorn' | 'uvicorn' | 'gunicorn+uvicorn';

export interface Setting {
  /** The key in --print-config --json and in a config file: gunicorn's name when it has one. */
  name: string;
  type: SettingType;
  default: Value;
  /** Every command-line spelling, e.g. ['-w', '--workers']; the first long one names CORRAL_<OPTION>. */
  flags: readonly string[];
  /** Flags that set a bool setting to false, e.g. --no-access-log. */
  offFlags?: readonly string[];
  choices?: readonly string[];
  /** Other names accepted in a config file (uvicorn's keyword, e.g. timeout_keep_alive). */
  fileAliases?: readonly string[];
  /** Only the aliases name it in a config file (the app is gunicorn's wsgi_app there, not `app`). */
  aliasesOnlyInFile?: boolean;
  /** uvicorn's click parameter name: uvicorn reads UVICORN_<NAME> for it. */
  uvicornParam?: string;
  /** The uvicorn.Config keyword the workers get it as. */
  uvicornKwarg?: string;
  origin: Origin;
  support: Support;
  /** What corral does instead (ignored), or why it cannot (unsupported). */
  note?: string;
  help: string;
  /** Not read from CORRAL_<OPTION> (actions such as --help). */
  noEnv?: boolean;
  /**
   * Not read from a config file: uvicorn's command-line-only bind parts, because gunicorn.conf.py
   * files commonly have helper variables named host and port that gunicorn ignores.
   */
  notInFile?: boolean;
}

const G = 'gunicorn' as const;
const U = 'uvicorn' as const;
const GU = 'gunicorn+uvicorn' as const;
const C = 'corral' as const;

export const LOG_LEVELS = ['critical', 'error', 'warning', 'info', 'debug', 'trace'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** Worker classes that mean "uvicorn workers"; the H11 ones also mean --http h11. */
export const UVICORN_WORKER_CLASSES: Readonly<Record<string, { http?: 'h11'; note?: string }>> = {
  'uvicorn.workers.UvicornWorker': {},
  'uvicorn.workers.UvicornH11Worker': { http: 'h11' },
  'uvicorn_worker.UvicornWorker': {},
  'uvicorn_worker.UvicornH11Worker': { http: 'h11' },
  // gunicorn's own ASGI worker runs the same kind of app; corral runs it on uvicorn.
  asgi: { note: "gunicorn's asgi worker class: corral runs the app on uvicorn" },
  'gunicorn.workers.gasgi.ASGIWorker': { note: "gunicorn's asgi worker class: corral runs the app on uvicorn" },
};

function unsupported(
  name: string,
  flags: readonly string[],
  type: SettingType,
  defaultValue: Value,
  note: string,
  origin: Origin = G,
): Setting {
  return { name, flags, type, default: defaultValue, origin, support: 'unsupported', note, help: note };
}

function ignored(name: string, flags: readonly string[], type: SettingType, defaultValue: Value, note: string, origin: Origin = G): Setting {
  return { name, flags, type, default: defaultValue, origin, support: 'ignored', note, help: note };
}

const HOOK_NOTE_MASTER = 'a master-side gunicorn hook: corral does not run it (named in a warning)';
const WORKER_HOOKS = ['post_fork', 'post_worker_init', 'worker_int', 'worker_abort', 'worker_exit'] as const;
const MASTER_HOOKS = [
  'on_starting',
  'on_reload',
  'when_ready',
  'pre_fork',
  'pre_exec',
  'pre_request',
  'post_request',
  'child_exit',
  'nworkers_changed',
  'on_exit',
  'ssl_context',
  'on_dirty_starting',
  'dirty_post_fork',
  'dirty_worker_init',
  'dirty_worker_exit',
] as const;
export const WORKER_HOOK_NAMES: ReadonlySet<string> = new Set(WORKER_HOOKS);
export const MASTER_HOOK_NAMES: ReadonlySet<string> = new Set(MASTER_HOOKS);

function hook(name: string, worker: boolean): Setting {
  return {
    name,
    flags: [],
    type: 'hook',
    default: null,
    origin: G,
    support: worker ? 'honoured' : 'unsupported',
    note: worker ? 'runs inside each worker with stand-in server and worker objects' : HOOK_NOTE_MASTER,
    help: worker ? 'gunicorn server hook, run in every worker' : HOOK_NOTE_MASTER,
  };
}

export const SETTINGS: readonly Setting[] = [
  // --- what to run ---
  { name: 'app', type: 'string', default: null, flags: [], fileAliases: ['wsgi_app'], aliasesOnlyInFile: true, origin: GU, support: 'honoured', help: 'The ASGI app, module:attribute, or gunicorn\'s call of a factory with literal arguments, module:create_app(\'prod\', debug=False) (the positional APP; wsgi_app in a config file)', noEnv: true },
  { name: 'config', type: 'string', default: null, flags: ['-c', '--config'], origin: G, support: 'honoured', help: 'Config file: a gunicorn.conf.py (or python:module, or a .json file) [default: ./gunicorn.conf.py when present]' },
  { name: 'factory', type: 'bool', default: false, flags: ['--factory'], uvicornParam: 'factory', origin: U, support: 'honoured', help: 'APP is a factory: call it with no arguments to get the app (uvicorn\'s; gunicorn\'s module:create_app() form needs no --factory)' },
  { name: 'app_dir', type: 'string', default: '.', flags: ['--app-dir'], uvicornParam: 'app_dir', origin: U, support: 'honoured', help: 'Directory added to the module search path' },
  { name: 'python', type: 'string', default: null, flags: ['--python'], origin: C, support: 'honoured', help: 'Python interpreter for the workers [default: $VIRTUAL_ENV/bin/python, else python3]' },
  { name: 'worker_class', type: 'string', default: 'uvicorn.workers.UvicornWorker', flags: ['-k', '--worker-class'], origin: G, support: 'honoured', help: 'gunicorn worker class: uvicorn.workers.UvicornWorker or uvicorn_worker.UvicornWorker (the H11 variants mean --http h11), or a subclass of them, whose CONFIG_KWARGS apply; gunicorn\'s own classes are refused' },
  { name: 'chdir', type: 'string', default: null, flags: ['--chdir'], origin: G, support: 'honoured', help: 'Change to this directory before loading the config file and the app' },
  { name: 'pythonpath', type: 'string', default: null, flags: ['--pythonpath'], origin: G, support: 'honoured', help: 'Comma-separated directories added to the workers\' module search path' },
  // No CORRAL_ENV: a name that generic is too likely to mean something else; CORRAL_CMD_ARGS="-e K=V" works.
  { name: 'raw_env', type: 'list', default: [], flags: ['-e', '--env'], origin: G, support: 'honoured', help: 'KEY=VALUE set in the workers\' environment, repeatable', noEnv: true },
  { name: 'env_file', type: 'string', default: null, flags: ['--env-file'], uvicornParam: 'env_file', uvicornKwarg: 'env_file', origin: U, support: 'honoured', help: 'A .env file loaded into each worker\'s environment before the app is imported' },
  { name: 'interface', type: 'choice', choices: ['auto', 'asgi3', 'asgi2', 'wsgi'], default: 'auto', flags: ['--interface'], uvicornParam: 'interface', uvicornKwarg: 'interface', origin: U, support: 'honoured', help: 'Application interface' },

  // --- sockets ---
  { name: 'bind', type: 'list', default: ['127.0.0.1:8000'], flags: ['-b', '--bind'], origin: G, support: 'honoured', help: 'Address to listen on, repeatable: HOST:PORT, [IPV6]:PORT, unix:PATH, fd://N [default: 127.0.0.1:8000, or 0.0.0.0:$PORT]' },
  { name: 'host', notInFile: true, type: 'string', default: null, flags: ['--host'], uvicornParam: 'host', origin: U, support: 'honoured', help: 'uvicorn\'s bind host (with --port: one more bind)' },
  { name: 'port', notInFile: true, type: 'int', default: null, flags: ['--port'], uvicornParam: 'port', origin: U, support: 'honoured', help: 'uvicorn\'s bind port (with --host: one more bind)' },
  { name: 'uds', notInFile: true, type: 'string', default: null, flags: ['--uds'], uvicornParam: 'uds', origin: U, support: 'honoured', help: 'Bind a unix socket (same as --bind unix:PATH)' },
  { name: 'fd', notInFile: true, type: 'int', default: null, flags: ['--fd'], uvicornParam: 'fd', origin: U, support: 'honoured', help: 'Use this inherited socket (same as --bind fd://N)' },
  { name: 'backlog', type: 'posint', default: 2048, flags: ['--backlog'], uvicornParam: 'backlog', uvicornKwarg: 'backlog', origin: GU, support: 'honoured', help: 'Maximum number of pending connections' },
  { name: 'umask', type: 'octal', default: '0o117', flags: ['-m', '--umask'], origin: G, support: 'honoured', help: 'Umask for unix socket files (octal)' },
  { name: 'reuse_port', type: 'bool', default: false, flags: ['--reuse-port'], origin: G, support: 'ignored', note: 'the master binds each address once and every worker shares it; SO_REUSEPORT is not needed', help: 'gunicorn: SO_REUSEPORT' },

  // --- workers ---
  { name: 'workers', type: 'workers', default: 1, flags: ['-w', '--workers'], uvicornParam: 'workers', origin: GU, support: 'honoured', help: 'Number of worker processes, or auto (from the cgroup CPU limit) [default: $WEB_CONCURRENCY or 1]' },
  { name: 'cgroup_root', type: 'string', default: '/sys/fs/cgroup', flags: ['--cgroup-root'], origin: C, support: 'honoured', help: 'Where --workers auto reads the cgroup CPU limit' },
  { name: 'threads', type: 'posint', default: 1, flags: ['--threads'], origin: G, support: 'ignored', note: 'uvicorn workers run one event loop; threads do not apply (use --workers)', help: 'gunicorn: threads per worker' },
  { name: 'worker_connections', type: 'posint', default: 1000, flags: ['--worker-connections'], origin: G, support: 'ignored', note: 'gunicorn\'s UvicornWorker ignores it too; --limit-concurrency caps connections per worker', help: 'gunicorn: connections per async worker' },
  { name: 'timeout', type: 'float', default: 30, flags: ['-t', '--timeout', '--timeout-worker-healthcheck'], uvicornParam: 'timeout_worker_healthcheck', origin: GU, support: 'honoured', help: 'Seconds without a heartbeat before a worker is killed as hung (0: never); uvicorn\'s --timeout-worker-healthcheck' },
  { name: 'graceful_timeout', type: 'float', default: 30, flags: ['--graceful-timeout', '--timeout-graceful-shutdown'], uvicornParam: 'timeout_graceful_shutdown', fileAliases: ['timeout_graceful_shutdown'], origin: GU, support: 'honoured', help: 'Seconds a stopping worker gets to finish its requests (uvicorn --timeout-graceful-shutdown)' },
  { name: 'shutdown_delay', type: 'float', default: 0, flags: ['--shutdown-delay'], origin: C, support: 'honoured', help: 'Seconds between TERM and the drain: /readyz answers 503 and systemd hears STOPPING=1 at once while every worker keeps serving, so load balancers stop sending traffic first' },
  { name: 'boot_timeout', type: 'float', default: 60, flags: ['--boot-timeout'], origin: C, support: 'honoured', help: 'Seconds a worker may take to start' },
  { name: 'keepalive', type: 'int', default: 5, flags: ['--keep-alive', '--timeout-keep-alive'], uvicornParam: 'timeout_keep_alive', uvicornKwarg: 'timeout_keep_alive', fileAliases: ['timeout_keep_alive'], origin: GU, support: 'honoured', help: 'Seconds to keep an idle connection open (uvicorn --timeout-keep-alive; uvicorn\'s default 5, not gunicorn\'s 2)' },
  { name: 'max_requests', type: 'int', default: 0, flags: ['--max-requests', '--limit-max-requests'], uvicornParam: 'limit_max_requests', fileAliases: ['limit_max_requests'], origin: GU, support: 'honoured', help: 'Recycle a worker after this many requests (0: never)' },
  { name: 'max_requests_jitter', type: 'int', default: 0, flags: ['--max-requests-jitter', '--limit-max-requests-jitter'], uvicornParam: 'limit_max_requests_jitter', fileAliases: ['limit_max_requests_jitter'], origin: GU, support: 'honoured', help: 'Random extra requests, up to this many, per worker' },
  { name: 'max_surge', type: 'posint', default: null, flags: ['--max-surge'], origin: C, support: 'honoured', help: 'New workers started at once during a rolling restart [default: all the workers when they are forked (and with --reload), a quarter (at least 1) with --start-method spawn]' },
  { name: 'max_memory', type: 'size', default: 0, flags: ['--max-memory'], origin: C, support: 'honoured', help: 'Recycle a worker whose process tree uses more unique memory (USS: shared pages not counted), e.g. 512M (0: never)' },
  { name: 'memory_check_interval', type: 'positive', default: 5, flags: ['--memory-check-interval'], origin: C, support: 'honoured', help: 'Seconds between CPU and memory samples of the workers' },
  { name: 'max_worker_lifetime', type: 'float', default: 0, flags: ['--max-worker-lifetime'], origin: C, support: 'honoured', help: 'Recycle a worker after this many seconds (0: never)' },
  { name: 'max_worker_lifetime_jitter', type: 'float', default: 0, flags: ['--max-worker-lifetime-jitter'], origin: C, support: 'honoured', help: 'Random extra seconds of lifetime, up to this, per worker' },
  { name: 'preload_app', type: 'bool', default: false, flags: ['--preload'], origin: G, support: 'honoured', help: "Import the whole app in each generation's fork server (not only its third-party imports), so its modules are shared; a HUP loads the new code" },
  { name: 'start_method', type: 'choice', choices: ['fork', 'spawn'], default: 'fork', flags: ['--start-method'], origin: C, support: 'honoured', help: 'How workers start: fork (from a fork server per code generation that has preloaded uvicorn and the app\'s imports) or spawn (a fresh interpreter each; for apps that cannot be forked). With --reload, one fork server serves every save (spawn: spawned warm standbys)' },
  { name: 'worker_tmp_dir', type: 'string', default: null, flags: ['--worker-tmp-dir'], origin: G, support: 'ignored', note: 'workers report heartbeats over a pipe to the master; there is no heartbeat file', help: 'gunicorn: directory of the heartbeat files' },
  { name: 'proc_name', type: 'string', default: null, flags: ['-n', '--name'], origin: G, support: 'honoured', help: 'Process title of the master (shown by ps)' },
  { name: 'default_proc_name', type: 'string', default: 'corral', flags: [], origin: G, support: 'ignored', note: 'the master\'s title is corral unless --name is given', help: 'gunicorn: internal default title' },
  { name: 'pidfile', type: 'string', default: null, flags: ['-p', '--pid'], origin: G, support: 'honoured', help: 'Write the master pid to this file' },
  { name: 'daemon', type: 'bool', default: false, flags: ['-D', '--daemon'], origin: G, support: 'unsupported', note: 'corral always runs in the foreground; let systemd, a container runtime or a supervisor keep it running', help: 'gunicorn: detach from the terminal' },
  { name: 'user', type: 'string', default: null, flags: ['-u', '--user'], origin: G, support: 'honoured', help: 'Run the workers as this user (name or uid)' },
  { name: 'group', type: 'string', default: null, flags: ['-g', '--group'], origin: G, support: 'honoured', help: 'Run the workers as this group (name or gid)' },
  unsupported('initgroups', ['--initgroups'], 'bool', false, 'workers get --user and --group only; Node drops supplementary groups when it changes user'),

  // --- logging ---
  { name: 'loglevel', type: 'choice', choices: LOG_LEVELS, default: 'info', flags: ['--log-level'], uvicornParam: 'log_level', fileAliases: ['log_level'], origin: GU, support: 'honoured', help: 'Log level' },
  { name: 'log_format', type: 'choice', choices: LOG_FORMATS, default: 'auto', flags: ['--log-format'], origin: C, support: 'honoured', help: 'Log format: json, pretty, or auto (pretty on a terminal)' },
  { name: 'access_log', type: 'bool', default: true, flags: ['--access-log'], offFlags: ['--no-access-log'], uvicornParam: 'access_log', origin: U, support: 'honoured', help: 'Log every request (--no-access-log to turn off)' },
  { name: 'accesslog', type: 'string', default: null, flags: ['--access-logfile'], origin: G, support: 'honoured', help: 'Write access records to this file (- for stdout) [default: the main log]' },
  // gunicorn's default is "-" (stderr); corral's main log is stdout unless this is given.
  { name: 'errorlog', type: 'string', default: null, flags: ['--error-logfile', '--log-file'], origin: G, support: 'honoured', help: 'Write every other record to this file (- for stderr) [default: stdout]' },
  { name: 'metrics_bind', type: 'string', default: null, flags: ['--metrics-bind'], origin: C, support: 'honoured', help: 'Serve /metrics, /healthz and /readyz on HOST:PORT [default: off]' },
  { name: 'access_log_format', type: 'string', default: null, flags: ['--access-logformat'], origin: G, support: 'ignored', note: 'access records are JSON with client, method, path, http_version and status fields instead of a format string', help: 'gunicorn: access log format' },
  { name: 'capture_output', type: 'bool', default: false, flags: ['--capture-output'], origin: G, support: 'ignored', note: 'the workers\' stdout and stderr always reach corral\'s log, one record a line', help: 'gunicorn: redirect stdout/stderr to the error log' },
  { name: 'enable_stdio_inheritance', type: 'bool', default: false, flags: ['-R', '--enable-stdio-inheritance'], origin: G, support: 'ignored', note: 'workers always run unbuffered and their output always reaches corral\'s log', help: 'gunicorn: keep stdio in daemon mode' },
  { name: 'logconfig', type: 'string', default: null, flags: ['--log-config'], uvicornParam: 'log_config', uvicornKwarg: 'log_config', fileAliases: ['log_config'], origin: GU, support: 'honoured', help: 'Logging config file (.ini, .json, .yaml) applied in each worker, as uvicorn does; its handlers replace corral\'s JSON records' },
  { name: 'logconfig_dict', type: 'dict', default: null, flags: [], uvicornKwarg: 'log_config', origin: G, support: 'honoured', help: 'Logging dictConfig applied in each worker (config file only)' },
  { name: 'logconfig_json', type: 'string', default: null, flags: ['--log-config-json'], uvicornKwarg: 'log_config', origin: G, support: 'honoured', help: 'Logging config as a JSON file, applied in each worker' },
  { name: 'use_colors', type: 'bool', default: null, flags: ['--use-colors'], offFlags: ['--no-use-colors'], uvicornParam: 'use_colors', origin: U, support: 'ignored', note: 'corral\'s log is JSON, or its pretty format on a terminal (--log-format)', help: 'uvicorn: colored logs' },
  ignored('disable_redirect_access_to_syslog', ['--disable-redirect-access-to-syslog'], 'bool', false, 'there is no syslog output'),
  unsupported('logger_class', ['--logger-class'], 'string', 'gunicorn.glogging.Logger', 'corral logs through pino; a gunicorn logger class cannot be loaded'),
  unsupported('syslog', ['--log-syslog'], 'bool', false, 'no syslog output: corral logs JSON lines to stdout (journald and container runtimes collect them)'),
  unsupported('syslog_addr', ['--log-syslog-to'], 'string', 'udp://localhost:514', 'no syslog output'),
  unsupported('syslog_prefix', ['--log-syslog-prefix'], 'string', null, 'no syslog output'),
  unsupported('syslog_facility', ['--log-syslog-facility'], 'string', 'user', 'no syslog output'),
  unsupported('statsd_host', ['--statsd-host'], 'string', null, 'statsd is not supported'),
  unsupported('statsd_prefix', ['--statsd-prefix'], 'string', '', 'statsd is not supported'),
  unsupported('dogstatsd_tags', ['--dogstatsd-tags'], 'string', '', 'statsd is not supported'),
  unsupported('enable_backlog_metric', ['--enable-backlog-metric'], 'bool', false, 'statsd is not supported'),

  // --- HTTP, proxies, TLS: uvicorn's settings, passed to every worker ---
  { name: 'forwarded_allow_ips', type: 'string', default: '127.0.0.1,::1', flags: ['--forwarded-allow-ips'], uvicornParam: 'forwarded_allow_ips', uvicornKwarg: 'forwarded_allow_ips', origin: GU, support: 'honoured', help: 'Addresses trusted for X-Forwarded-* headers [default: $FORWARDED_ALLOW_IPS or 127.0.0.1,::1]' },
  { name: 'proxy_headers', type: 'bool', default: true, flags: ['--proxy-headers'], offFlags: ['--no-proxy-headers'], uvicornParam: 'proxy_headers', uvicornKwarg: 'proxy_headers', origin: U, support: 'honoured', help: 'Trust X-Forwarded-For/Proto from --forwarded-allow-ips' },
  { name: 'root_path', type: 'string', default: '', flags: ['--root-path'], uvicornParam: 'root_path', uvicornKwarg: 'root_path', origin: GU, support: 'honoured', help: 'ASGI root_path for an app behind a path prefix' },
  { name: 'limit_concurrency', type: 'posint', default: null, flags: ['--limit-concurrency'], uvicornParam: 'limit_concurrency', uvicornKwarg: 'limit_concurrency', origin: U, support: 'honoured', help: 'Answer 503 beyond this many concurrent connections or tasks, per worker' },
  { name: 'loop', type: 'choice', choices: ['auto', 'asyncio', 'uvloop', 'zuvloop'], default: 'auto', flags: ['--loop'], uvicornParam: 'loop', uvicornKwarg: 'loop', origin: U, support: 'honoured', help: 'Event loop implementation (or module:factory)' },
  { name: 'http', type: 'choice', choices: ['auto', 'h11', 'httptools', 'zttp'], default: 'auto', flags: ['--http'], uvicornParam: 'http', uvicornKwarg: 'http', origin: U, support: 'honoured', help: 'HTTP protocol implementation (or module:class)' },
  { name: 'http2', type: 'bool', default: false, flags: ['--http2'], uvicornParam: 'http2', uvicornKwarg: 'http2', origin: U, support: 'honoured', help: 'HTTP/2 (needs --http zttp)' },
  { name: 'ws', type: 'choice', choices: ['auto', 'none', 'websockets', 'websockets-sansio', 'wsproto'], default: 'auto', flags: ['--ws'], uvicornParam: 'ws', uvicornKwarg: 'ws', origin: U, support: 'honoured', help: 'WebSocket protocol implementation (or module:class)' },
  { name: 'ws_max_size', type: 'posint', default: 16777216, flags: ['--ws-max-size'], uvicornParam: 'ws_max_size', uvicornKwarg: 'ws_max_size', fileAliases: ['websocket_max_message_size'], origin: U, support: 'honoured', help: 'WebSocket max message size in bytes' },
  { name: 'ws_max_queue', type: 'posint', default: 32, flags: ['--ws-max-queue'], uvicornParam: 'ws_max_queue', uvicornKwarg: 'ws_max_queue', origin: U, support: 'honoured', help: 'WebSocket message queue length' },
  { name: 'ws_ping_interval', type: 'float', default: 20, flags: ['--ws-ping-interval'], uvicornParam: 'ws_ping_interval', uvicornKwarg: 'ws_ping_interval', origin: U, support: 'honoured', help: 'WebSocket ping interval in seconds' },
  { name: 'ws_ping_timeout', type: 'float', default: 20, flags: ['--ws-ping-timeout'], uvicornParam: 'ws_ping_timeout', uvicornKwarg: 'ws_ping_timeout', origin: U, support: 'honoured', help: 'WebSocket ping timeout in seconds' },
  // uvicorn declares it `type=bool`, so it takes a value: --ws-per-message-deflate false
  { name: 'ws_per_message_deflate', type: 'bool', default: true, flags: [], fileAliases: [], uvicornParam: 'ws_per_message_deflate', uvicornKwarg: 'ws_per_message_deflate', origin: U, support: 'honoured', help: 'WebSocket per-message-deflate compression: --ws-per-message-deflate true|false' },
  { name: 'lifespan', type: 'choice', choices: ['auto', 'on', 'off'], default: 'auto', flags: ['--lifespan'], uvicornParam: 'lifespan', uvicornKwarg: 'lifespan', fileAliases: ['asgi_lifespan'], origin: U, support: 'honoured', help: 'Lifespan mode' },
  { name: 'server_header', type: 'bool', default: true, flags: ['--server-header'], offFlags: ['--no-server-header'], uvicornParam: 'server_header', uvicornKwarg: 'server_header', origin: U, support: 'honoured', help: 'Send the Server header' },
  { name: 'date_header', type: 'bool', default: true, flags: ['--date-header'], offFlags: ['--no-date-header'], uvicornParam: 'date_header', uvicornKwarg: 'date_header', origin: U, support: 'honoured', help: 'Send the Date header' },
  { name: 'headers', type: 'list', default: [], flags: ['--header'], uvicornParam: 'headers', uvicornKwarg: 'headers', origin: U, support: 'honoured', help: 'Default response header Name:Value, repeatable' },
  { name: 'h11_max_incomplete_event_size', type: 'posint', default: null, flags: ['--h11-max-incomplete-event-size'], uvicornParam: 'h11_max_incomplete_event_size', uvicornKwarg: 'h11_max_incomplete_event_size', origin: U, support: 'honoured', help: 'h11: most bytes buffered for an incomplete event' },
  { name: 'reset_contextvars', type: 'bool', default: false, flags: ['--reset-contextvars'], uvicornParam: 'reset_contextvars', uvicornKwarg: 'reset_contextvars', origin: U, support: 'honoured', help: 'Run each request in a fresh contextvars.Context' },
  { name: 'keyfile', type: 'string', default: null, flags: ['--keyfile', '--ssl-keyfile'], uvicornParam: 'ssl_keyfile', uvicornKwarg: 'ssl_keyfile', fileAliases: ['ssl_keyfile'], origin: GU, support: 'honoured', help: 'TLS key file' },
  { name: 'certfile', type: 'string', default: null, flags: ['--certfile', '--ssl-certfile'], uvicornParam: 'ssl_certfile', uvicornKwarg: 'ssl_certfile', fileAliases: ['ssl_certfile'], origin: GU, support: 'honoured', help: 'TLS certificate file' },
  { name: 'ssl_keyfile_password', type: 'string', default: null, flags: ['--ssl-keyfile-password'], uvicornParam: 'ssl_keyfile_password', uvicornKwarg: 'ssl_keyfile_password', origin: U, support: 'honoured', help: 'Password of the TLS key file' },
  { name: 'ssl_version', type: 'signed-int', default: 17, flags: ['--ssl-version'], uvicornParam: 'ssl_version', uvicornKwarg: 'ssl_version', origin: GU, support: 'honoured', help: 'TLS protocol (the ssl module\'s constant)' },
  { name: 'cert_reqs', type: 'signed-int', default: 0, flags: ['--cert-reqs', '--ssl-cert-reqs'], uvicornParam: 'ssl_cert_reqs', uvicornKwarg: 'ssl_cert_reqs', fileAliases: ['ssl_cert_reqs'], origin: GU, support: 'honoured', help: 'Whether a client certificate is required (the ssl module\'s constant)' },
  { name: 'ca_certs', type: 'string', default: null, flags: ['--ca-certs', '--ssl-ca-certs'], uvicornParam: 'ssl_ca_certs', uvicornKwarg: 'ssl_ca_certs', fileAliases: ['ssl_ca_certs'], origin: GU, support: 'honoured', help: 'CA certificates file' },
  { name: 'ciphers', type: 'string', default: null, flags: ['--ciphers', '--ssl-ciphers'], uvicornParam: 'ssl_ciphers', uvicornKwarg: 'ssl_ciphers', fileAliases: ['ssl_ciphers'], origin: GU, support: 'honoured', help: 'TLS ciphers' },
  ignored('suppress_ragged_eofs', ['--suppress-ragged-eofs'], 'bool', true, 'uvicorn\'s asyncio TLS handles ragged EOFs itself'),
  ignored('do_handshake_on_connect', ['--do-handshake-on-connect'], 'bool', false, 'uvicorn\'s asyncio TLS handshakes on connect'),
  {
    name: 'limit_request_line', type: 'int', default: 4094, flags: ['--limit-request-line'], origin: G, support: 'unsupported',
    note: 'uvicorn has no request-line limit; --h11-max-incomplete-event-size bounds the request head with --http h11', help: 'gunicorn: longest request line',
  },
  { name: 'limit_request_fields', type: 'int', default: 100, flags: ['--limit-request-fields'], origin: G, support: 'unsupported', note: 'uvicorn has no header-count limit', help: 'gunicorn: most header fields' },
  {
    name: 'limit_request_field_size', type: 'int', default: 8190, flags: ['--limit-request-field_size', '--limit-request-field-size'], origin: G, support: 'unsupported',
    note: 'uvicorn has no header-size limit; --h11-max-incomplete-event-size bounds the request head with --http h11', help: 'gunicorn: largest header field',
  },
  { name: 'secure_scheme_headers', type: 'dict', default: null, flags: [], origin: G, support: 'unsupported', note: 'uvicorn trusts X-Forwarded-Proto from --forwarded-allow-ips only', help: 'gunicorn: headers that mean https' },
  unsupported('proxy_protocol', ['--proxy-protocol'], 'string', 'off', 'uvicorn does not speak the PROXY protocol'),
  unsupported('proxy_allow_ips', ['--proxy-allow-from'], 'string', '127.0.0.1,::1', 'uvicorn does not speak the PROXY protocol; for X-Forwarded-* use --forwarded-allow-ips'),
  unsupported('protocol', ['--protocol'], 'string', 'http', 'corral serves HTTP only (no uwsgi protocol)'),
  unsupported('uwsgi_allow_ips', ['--uwsgi-allow-from'], 'string', '127.0.0.1,::1', 'corral serves HTTP only (no uwsgi protocol)'),
  ignored('sendfile', ['--no-sendfile'], 'bool', null, 'uvicorn does not use sendfile()'),
  unsupported('http_protocols', ['--http-protocols'], 'string', 'h1', 'gunicorn\'s HTTP/2 settings: use uvicorn\'s --http2 with --http zttp'),
  unsupported('http2_cleartext', ['--http2-cleartext'], 'string', 'off', 'gunicorn\'s HTTP/2 settings do not apply to uvicorn'),
  unsupported('http2_max_concurrent_streams', ['--http2-max-concurrent-streams'], 'int', 100, 'gunicorn\'s HTTP/2 settings do not apply to uvicorn'),
  unsupported('http2_initial_window_size', ['--http2-initial-window-size'], 'int', 65535, 'gunicorn\'s HTTP/2 settings do not apply to uvicorn'),
  unsupported('http2_max_frame_size', ['--http2-max-frame-size'], 'int', 16384, 'gunicorn\'s HTTP/2 settings do not apply to uvicorn'),
  unsupported('http2_max_header_list_size', ['--http2-max-header-list-size'], 'int', 65536, 'gunicorn\'s HTTP/2 settings do not apply to uvicorn'),
  unsupported('permit_obsolete_folding', ['--permit-obsolete-folding'], 'bool', false, 'a gunicorn HTTP parser setting; uvicorn\'s parsers (h11, httptools) decide'),
  unsupported('strip_header_spaces', ['--strip-header-spaces'], 'bool', false, 'a gunicorn HTTP parser setting; uvicorn\'s parsers decide'),
  unsupported('permit_unconventional_http_method', ['--permit-unconventional-http-method'], 'bool', false, 'a gunicorn HTTP parser setting; uvicorn\'s parsers decide'),
  unsupported('permit_unconventional_http_version', ['--permit-unconventional-http-version'], 'bool', false, 'a gunicorn HTTP parser setting; uvicorn\'s parsers decide'),
  unsupported('casefold_http_method', ['--casefold-http-method'], 'bool', false, 'a gunicorn HTTP parser setting; uvicorn\'s parsers decide'),
  unsupported('forwarder_headers', ['--forwarder-headers'], 'string', 'SCRIPT_NAME,PATH_INFO', 'a WSGI setting of gunicorn'),
  unsupported('header_map', ['--header-map'], 'string', 'drop', 'a WSGI setting of gunicorn'),
  unsupported('tmp_upload_dir', [], 'string', null, 'a WSGI setting of gunicorn'),
  unsupported('asgi_loop', ['--asgi-loop'], 'string', 'auto', 'gunicorn\'s own ASGI worker setting: use --loop'),
  ignored('asgi_lifespan', ['--asgi-lifespan'], 'string', 'auto', 'gunicorn\'s own ASGI worker setting: use --lifespan'),
  unsupported('asgi_disconnect_grace_period', ['--asgi-disconnect-grace-period'], 'int', 3, 'gunicorn\'s own ASGI worker setting; uvicorn has none'),
  unsupported('websocket_max_message_size', ['--websocket-max-message-size'], 'int', 16777216, 'gunicorn\'s own ASGI worker setting: use --ws-max-size'),
  unsupported('http_parser', ['--http-parser'], 'string', 'auto', 'gunicorn\'s own ASGI worker setting: use --http'),
  unsupported('paste', ['--paste', '--paster'], 'string', null, 'PasteDeploy apps are WSGI; corral runs ASGI apps'),
  unsupported('raw_paste_global_conf', ['--paste-global'], 'list', [], 'PasteDeploy apps are WSGI; corral runs ASGI apps'),
  unsupported('dirty_apps', ['--dirty-app'], 'list', [], 'gunicorn\'s dirty arbiters are not supported'),
  unsupported('dirty_workers', ['--dirty-workers'], 'int', 0, 'gunicorn\'s dirty arbiters are not supported'),
  unsupported('dirty_timeout', ['--dirty-timeout'], 'int', 300, 'gunicorn\'s dirty arbiters are not supported'),
  unsupported('dirty_threads', ['--dirty-threads'], 'int', 1, 'gunicorn\'s dirty arbiters are not supported'),
  unsupported('dirty_graceful_timeout', ['--dirty-graceful-timeout'], 'int', 30, 'gunicorn\'s dirty arbiters are not supported'),
  { name: 'control_socket', type: 'string', default: null, flags: ['--control-socket'], origin: GU, support: 'honoured', help: 'Unix socket for corral status/reload/scale/stop [default: next to the --pid file]' },
  unsupported('control_socket_mode', ['--control-socket-mode'], 'int', null, 'corral\'s control socket has the mode the umask gives it'),
  { name: 'control_socket_disable', type: 'bool', default: false, flags: ['--no-control-socket'], origin: G, support: 'honoured', help: 'No control socket, even with --pid' },
  unsupported('spew', ['--spew'], 'bool', false, 'no line tracing; use --log-level trace'),

  // --- development: reload (issue 4 implements it) ---
  { name: 'reload', type: 'bool', default: false, flags: ['--reload'], uvicornParam: 'reload', origin: GU, support: 'honoured', help: 'Restart the workers when source files change' },
  { name: 'reload_dirs', type: 'list', default: [], flags: ['--reload-dir'], uvicornParam: 'reload_dirs', origin: U, support: 'honoured', help: 'Directory to watch, repeatable [default: the app directory]' },
  { name: 'reload_includes', type: 'list', default: [], flags: ['--reload-include'], uvicornParam: 'reload_includes', origin: U, support: 'honoured', help: 'Glob of files to watch, repeatable [default: *.py]' },
  { name: 'reload_excludes', type: 'list', default: [], flags: ['--reload-exclude'], uvicornParam: 'reload_excludes', origin: U, support: 'honoured', help: 'Glob or directory not to watch, repeatable [default: .* *.py[cod] .sw.* ~*]' },
  { name: 'reload_delay', type: 'float', default: 0.1, flags: ['--reload-delay'], uvicornParam: 'reload_delay', origin: U, support: 'honoured', help: 'Seconds of quiet after a change before reloading' },
  { name: 'reload_extra_files', type: 'list', default: [], flags: ['--reload-extra-file'], origin: G, support: 'honoured', help: 'Other file that reloads when it changes (template, .env), repeatable' },
  ignored('reload_engine', ['--reload-engine'], 'string', 'auto', 'corral watches files itself'),

  // --- corral's actions ---
  { name: 'print_config', type: 'bool', default: false, flags: ['--print-config'], origin: G, support: 'honoured', help: 'Print every resolved setting with its source and exit', noEnv: true },
  { name: 'json', type: 'bool', default: false, flags: ['--json'], origin: C, support: 'honoured', help: 'With --print-config: one JSON object keyed by setting name', noEnv: true },
  { name: 'check_config', type: 'bool', default: false, flags: ['--check-config'], origin: G, support: 'honoured', help: 'Check the configuration and import the app, then exit 0 or 1', noEnv: true },

  // --- server hooks (config file only) ---
  ...WORKER_HOOKS.map((name) => hook(name, true)),
  ...MASTER_HOOKS.map((name) => hook(name, false)),
];

// uvicorn's --ws-per-message-deflate takes a value (click type=bool), unlike a flag.
export const VALUE_TAKING_BOOL_FLAGS: ReadonlyMap<string, string> = new Map([['--ws-per-message-deflate', 'ws_per_message_deflate']]);

export const SETTINGS_BY_NAME: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((setting) => [setting.name, setting]));

/** Names a config file may use for each setting: its name and its aliases. */
export const FILE_NAMES: ReadonlyMap<string, Setting> = new Map(
  SETTINGS.filter((setting) => !setting.notInFile).flatMap((setting) =>
    [...(setting.aliasesOnlyInFile ? [] : [setting.name]), ...(setting.fileAliases ?? [])].map((name) => [name, setting] as const),
  ),
);

/** Maps every command-line flag to its setting and the value a flag without argument means. */
export interface FlagTarget {
  setting: Setting;
  /** For bool settings: the value this flag sets. Undefined: the flag takes a value. */
  sets?: boolean;
}

export const FLAGS: ReadonlyMap<string, FlagTarget> = (() => {
  const map = new Map<string, FlagTarget>();
  for (const setting of SETTINGS) {
    for (const flag of setting.flags) map.set(flag, setting.type === 'bool' ? { setting, sets: setting.name === 'sendfile' ? false : true } : { setting });
    for (const flag of setting.offFlags ?? []) map.set(flag, { setting, sets: false });
  }
  for (const [flag, name] of VALUE_TAKING_BOOL_FLAGS) map.set(flag, { setting: SETTINGS_BY_NAME.get(name)! });
  return map;
})();

/** CORRAL_<OPTION>: the setting's first long flag in capitals, e.g. --log-level → CORRAL_LOG_LEVEL. */
export function corralEnvName(setting: Setting): string | undefined {
  if (setting.noEnv) return undefined;
  const long = setting.flags.find((flag) => flag.startsWith('--'));
  return long ? `CORRAL_${long.slice(2).replace(/[-]/g, '_').toUpperCase()}` : undefined;
}

/** UVICORN_<NAME> as click's auto_envvar_prefix makes it: the parameter name in capitals. */
export function uvicornEnvName(setting: Setting): string | undefined {
  return setting.uvicornParam ? `UVICORN_${setting.uvicornParam.toUpperCase()}` : undefined;
}
