import { isIP } from 'node:net';
import path from 'node:path';
import { parseAppTarget } from './app-target.js';
import { parseArgv, type ParsedArgv } from './argv.js';
import { describeBind, parseBind, type BindSpec } from './bind.js';
import type { ConfigFileContents } from './config-file.js';
import { applyConfigKwargs, isFromWorkerClass, workerClassSource } from './config-kwargs.js';
import { workersForCpus, type CpuLimit } from './cpu-limit.js';
import { CorralError, ExitCode, UsageError } from '../exit-codes.js';
import { helpText } from './help.js';
import { suggestName } from './misspelling.js';
import { parseMetricsBind, resolveControlSocket, type TcpAddress } from './telemetry-options.js';
import { defaultPython } from '../worker/python.js';
import { coerce, isDefaultValue } from './values.js';
import {
  corralEnvName,
  FILE_NAMES,
  LOG_FORMATS,
  LOG_LEVELS,
  MASTER_HOOK_NAMES,
  SETTINGS,
  SETTINGS_BY_NAME,
  UVICORN_WORKER_CLASSES,
  uvicornEnvName,
  WORKER_HOOK_NAMES,
  type Setting,
  type Value,
} from './settings-table.js';
import { shellWords } from './shell-words.js';
import { needsInspection, type WorkerClassInspection, type WorkerClassResult } from './worker-class.js';

export { LOG_FORMATS, LOG_LEVELS };
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

/** uvicorn.Config keyword arguments passed through to every worker unchanged. */
export type UvicornSettings = Record<string, unknown>;

/** A setting's final value and where it came from, as --print-config shows it. */
export interface Resolved {
  value: Value;
  source: string;
}

/** Something the log must say about the configuration before corral starts. */
export interface Notice {
  level: 'info' | 'warn';
  setting?: string;
  msg: string;
}

export interface CorralConfig {
  app: string;
  factory: boolean;
  workers: number;
  binds: BindSpec[];
  appDir: string;
  python: string;
  /** Seconds a draining worker gets before SIGKILL. */
  gracefulTimeout: number;
  /** Seconds between TERM and the drain, while /readyz answers 503 and the workers still serve. */
  shutdownDelay: number;
  /** Seconds without a heartbeat before a worker counts as hung; 0 disables. */
  timeout: number;
  /** Seconds a worker may take from spawn to ready. */
  bootTimeout: number;
  maxRequests: number;
  maxRequestsJitter: number;
  /** Bytes of unique memory (USS) of a worker's process tree; 0 disables. */
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
  /** Directory to change to before binding (gunicorn's --chdir). */
  chdir: string | undefined;
  /** Directories prepended to the workers' PYTHONPATH. */
  pythonPath: string[];
  /** Variables added to the workers' environment (-e KEY=VALUE). */
  rawEnv: Record<string, string>;
  procName: string | undefined;
  /** `-u/--user`, `-g/--group`: who the workers run as (resolved to ids in src/platform/privileges.ts). */
  user: string | undefined;
  group: string | undefined;
  initgroups: boolean;
  /** Development mode: watch the code and swap in new workers when it changes. */
  reload: boolean;
  /** How workers start: forked from a fork server per code generation, or spawned as fresh interpreters. */
  startMethod: 'fork' | 'spawn';
  /** --preload: the fork server imports the whole app, not only its third-party imports. */
  preloadApp: boolean;
  /** Directories to watch; empty means the app directory. */
  reloadDirs: string[];
  reloadIncludes: string[];
  reloadExcludes: string[];
  /** Seconds without a change before a burst of changes reloads. */
  reloadDelay: number;
  /** Files that reload whatever the patterns say (templates, .env). */
  reloadExtraFiles: string[];
  /** The config file read, and its server hooks by side. */
  configFile: { path: string; workerHooks: string[]; masterHooks: string[] } | undefined;
  /** A UvicornWorker subclass corral does not know by name (undefined for the ones it does). */
  workerClass: WorkerClassConfig | undefined;
  /** Every setting with its value and source, keyed by setting name. */
  settings: Record<string, Resolved>;
  /** Lines the log must show at start: ignored and unsupported settings, misspellings, auto workers. */
  notices: Notice[];
}

/**
 * A worker class imported to be checked (src/config/worker-class.ts). pending: not checked yet; main imports
 * it with the workers' Python and parses again with the answer.
 */
export type WorkerClassConfig =
  | { name: string; pending: true }
  | {
      name: string;
      pending?: false;
      /** What the workers put on sys.path before importing it, and the config file of a `__config__.Name`. */
      paths: string[];
      configFile: string | null;
      /** CONFIG_KWARGS keywords the workers pass to uvicorn.Config as the class has them. */
      passthrough: string[];
    };

export type CommandLine =
  | { kind: 'run'; config: CorralConfig }
  | { kind: 'print-config'; config: CorralConfig; json: boolean }
  | { kind: 'check-config'; config: CorralConfig }
  | { kind: 'help'; text: string }
  | { kind: 'version' };

/**
 * Spawned workers: a quarter at a time. Each imports everything in a fresh interpreter, so 32 take 4 boot
 * times, not 32, and the CPU they need does not starve the workers that serve. Forked workers: all at
 * once, as gunicorn's HUP does: a forked worker imports only the app's own modules and costs only its
 * private pages, so a generation is ready in about one boot time (the old workers serve until then).
 */
export function defaultMaxSurge(workers: number, startMethod: 'fork' | 'spawn'): number {
  return startMethod === 'fork' ? Math.max(1, workers) : Math.max(1, Math.ceil(workers / 4));
}

/** What parseCommandLine needs from outside: the config file's contents and the CPU limit, both read by main. */
export interface ParseContext {
  configFile?: ConfigFileContents;
  cpuLimit?: (cgroupRoot: string) => CpuLimit;
  /** The check of a worker class corral does not know by name, when it has been made. */
  workerClass?: WorkerClassInspection;
}

type Layer = Map<string, Resolved>;

const CMD_ARGS_VARIABLES = ['GUNICORN_CMD_ARGS', 'CORRAL_CMD_ARGS'] as const;
/** CORRAL_ variables that are not options: corral's own, between master, workers and an upgraded master. */
const RESERVED_CORRAL_VARIABLES = new Set([
  'CORRAL_CMD_ARGS',
  'CORRAL_WORKER_CONFIG',
  'CORRAL_UPGRADE_FROM',
  'CORRAL_UPGRADE_FD',
  'CORRAL_LISTENERS',
  'CORRAL_MASTER_PID',
]);

function put(layer: Layer, setting: Setting, value: Value, source: string): void {
  const previous = layer.get(setting.name);
  // Repeatable settings add up within one source; a higher source replaces the whole list, as in gunicorn.
  if (setting.type === 'list' && previous && Array.isArray(previous.value) && Array.isArray(value)) {
    layer.set(setting.name, { value: [...previous.value, ...value], source });
  } else {
    layer.set(setting.name, { value, source });
  }
}

function argvLayer(parsed: ParsedArgv, source: string, where: string): Layer {
  const layer: Layer = new Map();
  for (const option of parsed.options) {
    // Errors name the long option even when the short one was typed (-w → --workers).
    const flag = option.flag.startsWith('--') ? option.flag : (option.setting.flags.find((f) => f.startsWith('--')) ?? option.flag);
    const label = where === '' ? flag : `${flag} (in ${where})`;
    put(layer, option.setting, coerce(option.setting, option.value, label), source);
  }
  if (parsed.positionals.length > 1) {
    throw new UsageError(`one APP expected${where ? ` in ${where}` : ''}, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`);
  }
  if (parsed.positionals.length === 1) put(layer, SETTINGS_BY_NAME.get('app')!, parsed.positionals[0]!, source);
  return layer;
}

/** The defaults, with gunicorn's and uvicorn's environment-derived ones. */
function defaultLayer(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = new Map();
  for (const setting of SETTINGS) layer.set(setting.name, { value: setting.default, source: 'default' });
  const web = env.WEB_CONCURRENCY?.trim();
  if (web) layer.set('workers', { value: coerce(SETTINGS_BY_NAME.get('workers')!, web, '$WEB_CONCURRENCY'), source: '$WEB_CONCURRENCY' });
  const port = env.PORT?.trim();
  if (port) layer.set('bind', { value: [`0.0.0.0:${port}`], source: '$PORT' });
  const forwarded = env.FORWARDED_ALLOW_IPS?.trim();
  if (forwarded) layer.set('forwarded_allow_ips', { value: forwarded, source: '$FORWARDED_ALLOW_IPS' });
  return layer;
}

function splitEnvList(text: string): string[] {
  return text.split(/\s+/).filter((word) => word !== '');
}

/** UVICORN_<NAME> as uvicorn reads them, then CORRAL_<OPTION>, which win. */
function environmentLayer(env: NodeJS.ProcessEnv, notices: Notice[]): Layer {
  const layer: Layer = new Map();
  const known = new Set<string>();
  for (const prefix of ['uvicorn', 'corral'] as const) {
    for (const setting of SETTINGS) {
      const name = prefix === 'uvicorn' ? uvicornEnvName(setting) : corralEnvName(setting);
      if (!name) continue;
      known.add(name);
      // click ignores an empty variable; so does corral.
      const text = env[name];
      if (text === undefined || text.trim() === '') continue;
      const raw = setting.type === 'list' ? splitEnvList(text) : text;
      layer.set(setting.name, { value: coerce(setting, raw, `$${name}`), source: `$${name}` });
    }
  }
  const uvicornApp = env.UVICORN_APP?.trim();
  if (uvicornApp) layer.set('app', { value: uvicornApp, source: '$UVICORN_APP' });
  for (const name of Object.keys(env)) {
    if (!name.startsWith('CORRAL_') || known.has(name) || RESERVED_CORRAL_VARIABLES.has(name)) continue;
    const meant = suggestName(name, known);
    if (meant) notices.push({ level: 'warn', msg: `$${name} is not a corral variable and is ignored; did you mean $${meant}?` });
  }
  return layer;
}

function fileLayer(file: ConfigFileContents, notices: Notice[]): Layer {
  const layer: Layer = new Map();
  const where = file.path ? path.basename(file.path) : file.given;
  const source = `config file ${file.given}`;
  const knownNames = [...FILE_NAMES.keys()];
  for (const [name, raw] of Object.entries(file.settings)) {
    const setting = FILE_NAMES.get(name);
    if (!setting || setting.type === 'hook') {
      const meant = suggestName(name, knownNames);
      if (meant) notices.push({ level: 'warn', setting: meant, msg: `${where}: "${name}" is not a setting and is ignored (gunicorn ignores it silently); did you mean "${meant}"?` });
      continue;
    }
    if (setting.name === 'config') continue;
    put(layer, setting, coerce(setting, raw, `${name} in ${where}`), source);
  }
  for (const [name, text] of Object.entries(file.unreadable)) {
    if (FILE_NAMES.has(name)) notices.push({ level: 'warn', setting: name, msg: `${where}: "${name}" = ${text} cannot be passed to the workers and is ignored` });
  }
  for (const name of Object.keys(file.functions)) {
    if (WORKER_HOOK_NAMES.has(name) || MASTER_HOOK_NAMES.has(name)) {
      layer.set(name, { value: `${where}:${name}`, source });
      continue;
    }
    const meant = suggestName(name, [...WORKER_HOOK_NAMES, ...MASTER_HOOK_NAMES]);
    if (meant) notices.push({ level: 'warn', setting: meant, msg: `${where}: function "${name}" is not a server hook and never runs; did you mean "${meant}"?` });
  }
  return layer;
}

/** The non-file sources, highest last, as parseCommandLine layers them. */
function commandLayers(argv: readonly string[], env: NodeJS.ProcessEnv, notices: Notice[]): { layers: Layer[]; cli: ParsedArgv } {
  const layers: Layer[] = [];
  for (const variable of CMD_ARGS_VARIABLES) {
    const text = env[variable];
    if (text === undefined || text.trim() === '') continue;
    const parsed = parseArgv(shellWords(text, `$${variable}`), `$${variable}`);
    layers.push(argvLayer(parsed, `$${variable}`, `$${variable}`));
  }
  layers.push(environmentLayer(env, notices));
  const cli = parseArgv(argv);
  layers.push(argvLayer(cli, 'command line', ''));
  return { layers, cli };
}

function valueIn(layers: Layer[], name: string): Resolved | undefined {
  for (let index = layers.length - 1; index >= 0; index--) {
    const found = layers[index]!.get(name);
    if (found) return found;
  }
  return undefined;
}

/**
 * What main must read before parseCommandLine: the config file named by -c, $CORRAL_CONFIG or the
 * CMD_ARGS variables (undefined: look for ./gunicorn.conf.py), the Python that reads it, and
 * --chdir, which applies first. Pure; throws UsageError.
 */
export function preliminarySettings(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { config: string | undefined; python: string; chdir: string | undefined; helpOrVersion: boolean; aboveFile: Record<string, Value> } {
  const { layers, cli } = commandLayers(argv, env, []);
  const text = (name: string) => {
    const value = valueIn(layers, name)?.value;
    return typeof value === 'string' ? value : undefined;
  };
  // What the config file cannot change: the reader checks the worker class with these in the same run.
  const aboveFile = Object.fromEntries(['worker_class', 'pythonpath', 'app_dir', 'raw_env', 'chdir'].map((name) => [name, valueIn(layers, name)?.value ?? null]));
  return { config: text('config'), python: text('python') ?? defaultPython(env), chdir: text('chdir'), helpOrVersion: cli.help || cli.version, aboveFile };
}

/** How a setting is named in a notice: its long flag, or its config-file name. */
function displayName(setting: Setting): string {
  return setting.flags.find((flag) => flag.startsWith('--')) ?? setting.name;
}

/** --preload preloads into a fork server: said when nothing is forked (spawn), or when the fork server never imports the app (--reload). */
function noticesForStartMethod(settings: Record<string, Resolved>, notices: Notice[]): void {
  const preload = settings.preload_app!;
  if (preload.value !== true) return;
  const why = settings.reload!.value === true ? '--reload (its fork server never imports the app\'s own code)' : settings.start_method!.value === 'spawn' ? '--start-method spawn' : undefined;
  if (why) notices.push({ level: 'info', setting: 'preload_app', msg: `--preload (${preload.source}) has no effect with ${why}: each worker imports the app itself` });
}

function noticesForSupport(settings: Record<string, Resolved>, notices: Notice[]): void {
  for (const setting of SETTINGS) {
    const resolved = settings[setting.name]!;
    if (resolved.source === 'default' || isDefaultValue(setting, resolved.value)) continue;
    if (setting.support === 'ignored') {
      notices.push({ level: 'info', setting: setting.name, msg: `${displayName(setting)} (${resolved.source}) has no effect under corral: ${setting.note}` });
    } else if (setting.support === 'unsupported' && setting.type !== 'hook') {
      notices.push({ level: 'warn', setting: setting.name, msg: `${displayName(setting)} (${resolved.source}) is not supported and is ignored: ${setting.note}` });
    }
  }
}

const SUPPORTED_CLASSES = 'use uvicorn.workers.UvicornWorker or uvicorn_worker.UvicornWorker (or their H11 variants, or a subclass of them).';

/** Why a worker class is refused, in one line that says what to do instead. */
function refusal(label: string, name: string, result: Extract<WorkerClassResult, { refused: string }>): string {
  switch (result.refused) {
    case 'not-a-class':
      return `${label}: ${name} is a ${result.type}, not a class; ${SUPPORTED_CLASSES}`;
    case 'not-uvicorn':
      return (
        `${label}: ${name} is not a UvicornWorker subclass (its bases: ${result.bases.join(', ') || 'none'}); ${SUPPORTED_CLASSES} ` +
        'corral runs ASGI apps on uvicorn only; keep gunicorn for WSGI apps.'
      );
    case 'overrides':
      return (
        `${label}: ${name} overrides ${result.methods.join(', ')} of ${result.base}, which corral never calls (it runs uvicorn itself); ` +
        'keep only CONFIG_KWARGS in the class, and move start-up code to a post_fork or post_worker_init hook or to the app\'s lifespan.'
      );
    case 'bad-config-kwargs':
      return `${label}: CONFIG_KWARGS of ${name} is not a dict keyed by uvicorn.Config keywords: ${result.repr}`;
  }
}

/** Inserts `name` right after `after` in the settings' order, so --print-config shows them together. */
function insertAfter(settings: Record<string, Resolved>, after: string, name: string, resolved: Resolved): void {
  const entries = Object.entries(settings);
  entries.splice(entries.findIndex(([key]) => key === after) + 1, 0, [name, resolved]);
  for (const key of Object.keys(settings)) delete settings[key];
  Object.assign(settings, Object.fromEntries(entries));
}

/**
 * The worker class: the UvicornWorker classes corral knows by name; gunicorn's own classes refused;
 * any other class checked by importing it (context.workerClass) and its CONFIG_KWARGS applied.
 */
function resolveWorkerClass(settings: Record<string, Resolved>, context: ParseContext, python: string, notices: Notice[]): WorkerClassConfig | undefined {
  const resolved = settings.worker_class!;
  const name = String(resolved.value);
  const label = `--worker-class ${JSON.stringify(name)} (${resolved.source})`;
  const setHttp = (http: 'h11' | undefined, source: string) => {
    if (http && settings.http!.source === 'default') settings.http = { value: http, source };
  };
  const known = UVICORN_WORKER_CLASSES[name];
  if (known) {
    if (known.note) notices.push({ level: 'info', setting: 'worker_class', msg: known.note });
    setHttp(known.http, `--worker-class ${name}`);
    return undefined;
  }
  if (!needsInspection(name)) {
    throw new UsageError(`${label}: not supported; ${SUPPORTED_CLASSES} corral runs ASGI apps on uvicorn only; keep gunicorn for WSGI apps.`);
  }
  const inspection = context.workerClass;
  if (!inspection || inspection.request.name !== name) return { name, pending: true };
  const result = inspection.result;
  if ('import_error' in result) {
    const why = result.missing_gunicorn
      ? `its module imports gunicorn (uvicorn.workers and uvicorn_worker classes derive from gunicorn's Worker), which is not installed for ${python}; install gunicorn there (corral needs it only to import this class), or pass the CONFIG_KWARGS as corral options and drop ${label.split(' (')[0]}`
      : result.import_error;
    throw new CorralError(`cannot import the worker class ${JSON.stringify(name)} (${resolved.source}): ${why}`, ExitCode.appLoadFailure, result.traceback);
  }
  if ('refused' in result) throw new UsageError(refusal(label, name, result));
  let passthrough: string[] = [];
  if (result.config_kwargs) {
    const kwargs = result.config_kwargs;
    const unreadable = result.unreadable ?? {};
    passthrough = applyConfigKwargs(settings, name, kwargs, unreadable, result.config_params ?? [], notices);
    insertAfter(settings, 'worker_class', 'config_kwargs', { value: { ...kwargs, ...unreadable }, source: workerClassSource(name) });
    const keys = Object.keys({ ...kwargs, ...unreadable });
    notices.push({
      level: 'info',
      setting: 'worker_class',
      msg: `worker class ${name} (a ${result.base} subclass): its CONFIG_KWARGS apply${keys.length > 0 ? `: ${keys.join(', ')}` : ' (empty)'}`,
    });
  } else {
    setHttp(result.h11 ? 'h11' : undefined, `--worker-class ${name} (a ${result.base} subclass)`);
    notices.push({ level: 'info', setting: 'worker_class', msg: `worker class ${name}: a ${result.base} subclass with no CONFIG_KWARGS of its own` });
  }
  return { name, paths: inspection.request.paths, configFile: inspection.request.config_file, passthrough };
}

/** uvicorn's --host/--port/--uds/--fd make one bind, as uvicorn chooses it: fd, else uds, else host:port. */
function uvicornBind(settings: Record<string, Resolved>): { bind: string; source: string } | undefined {
  const given = ['fd', 'uds', 'host', 'port'].filter((name) => settings[name]!.value !== null);
  if (given.length === 0) return undefined;
  const source = given.map((name) => settings[name]!.source).filter((value, index, all) => all.indexOf(value) === index).join(', ');
  if (settings.fd!.value !== null) return { bind: `fd://${settings.fd!.value}`, source };
  if (settings.uds!.value !== null) return { bind: `unix:${settings.uds!.value}`, source };
  const host = settings.host!.value === null ? '127.0.0.1' : String(settings.host!.value);
  const port = settings.port!.value === null ? 8000 : Number(settings.port!.value);
  return { bind: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`, source };
}

function nonEmptyPath(option: string, value: string | null): string | undefined {
  if (value !== null && value.trim() === '') throw new UsageError(`${option} "": expected a path`);
  return value ?? undefined;
}

function parseRawEnv(values: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const item of values) {
    const equals = item.indexOf('=');
    if (equals <= 0) throw new UsageError(`--env ${JSON.stringify(item)}: expected KEY=VALUE`);
    result[item.slice(0, equals)] = item.slice(equals + 1);
  }
  return result;
}

function parseHeaders(values: string[]): [string, string][] {
  return values.map((item) => {
    const colon = item.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header ${JSON.stringify(item)}: expected Name:Value`);
    return [item.slice(0, colon).trim(), item.slice(colon + 1).trim()];
  });
}

/** CorralConfig's fields whose type is number. */
type NumberField = { [K in keyof CorralConfig]: CorralConfig[K] extends number ? K : never }[keyof CorralConfig];

/**
 * The numeric fields that are their setting's value as it is, field → setting name: one line each, where
 * a field CorralConfig lacks, or one that is not a number, fails to compile. (workers and umask are
 * computed, so they are not here.)
 */
const NUMBER_FIELDS = {
  gracefulTimeout: 'graceful_timeout',
  shutdownDelay: 'shutdown_delay',
  timeout: 'timeout',
  bootTimeout: 'boot_timeout',
  maxRequests: 'max_requests',
  maxRequestsJitter: 'max_requests_jitter',
  maxMemory: 'max_memory',
  memoryCheckInterval: 'memory_check_interval',
  maxWorkerLifetime: 'max_worker_lifetime',
  maxWorkerLifetimeJitter: 'max_worker_lifetime_jitter',
  maxSurge: 'max_surge',
  reloadDelay: 'reload_delay',
} as const satisfies { [K in NumberField]?: string };

/** The table's fields with their types in CorralConfig: the config literal still names every other field. */
type NumberFields = { [K in keyof typeof NUMBER_FIELDS]: CorralConfig[K] };

function numberFields(settings: Record<string, Resolved>): NumberFields {
  // Object.fromEntries cannot know the keys; the table's type says them.
  return Object.fromEntries(Object.entries(NUMBER_FIELDS).map(([field, name]) => [field, settings[name]!.value as number])) as NumberFields;
}

/** Turns argv, the environment and a config file's contents into a configuration. Pure: throws UsageError. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv, context: ParseContext = {}): CommandLine {
  const notices: Notice[] = [];
  const { layers: upper, cli } = commandLayers(argv, env, notices);
  if (cli.version) return { kind: 'version' };
  if (cli.help) return { kind: 'help', text: helpText() };
  const layers = [defaultLayer(env), ...(context.configFile ? [fileLayer(context.configFile, notices)] : []), ...upper];

  const settings: Record<string, Resolved> = {};
  for (const setting of SETTINGS) settings[setting.name] = valueIn(layers, setting.name)!;
  const value = <T extends Value>(name: string) => settings[name]!.value as T;
  if (context.configFile && settings.config!.value === null) {
    settings.config = { value: context.configFile.given, source: 'default (present in the working directory)' };
  }

  const app = value<string | null>('app');
  if (!app) throw new UsageError('no APP given: pass the app as module:attribute, e.g. corral app.main:app');
  // Its CONFIG_KWARGS come first: every value read below is the one the class leaves.
  const workerClass = resolveWorkerClass(settings, context, value<string | null>('python') ?? defaultPython(env), notices);
  const target = parseAppTarget(app);
  if (target.call && value<boolean>('factory')) {
    throw new UsageError(`APP ${JSON.stringify(app)} calls the factory already; drop --factory (${settings.factory!.source}), which would call what it returns`);
  }

  let workers: number;
  if (value('workers') === 'auto') {
    const root = value<string>('cgroup_root');
    if (!context.cpuLimit) throw new UsageError('--workers auto: the CPU limit cannot be read here');
    const limit = context.cpuLimit(root);
    workers = workersForCpus(limit.cpus);
    notices.push({ level: 'info', setting: 'workers', msg: `--workers auto: ${limit.found} → ${workers} worker${workers === 1 ? '' : 's'} (one per CPU, rounded down, at least 1)` });
    settings.workers = { value: workers, source: `${settings.workers!.source} (auto: ${limit.found})` };
  } else {
    workers = value<number>('workers');
  }

  const extraBind = uvicornBind(settings);
  if (extraBind) {
    const explicit = settings.bind!.source !== 'default' && settings.bind!.source !== '$PORT';
    settings.bind = explicit
      ? { value: [...value<string[]>('bind'), extraBind.bind], source: `${settings.bind!.source}; ${extraBind.source}` }
      : { value: [extraBind.bind], source: extraBind.source };
  }
  const bindList = value<string[]>('bind');
  if (bindList.length === 0) throw new UsageError('--bind: no address given');
  const binds = bindList.map(parseBind);
  // Shown as corral will bind them (":8000" is 0.0.0.0:8000, "localhost" is 127.0.0.1).
  settings.bind = { value: binds.map(describeBind), source: settings.bind!.source };

  // Shown as resolved, not as "unset".
  if (settings.python!.value === null) {
    settings.python = { value: defaultPython(env), source: env.VIRTUAL_ENV ? 'default ($VIRTUAL_ENV)' : 'default' };
  }
  if (settings.max_surge!.value === null) {
    const forked = settings.start_method!.value === 'fork' && settings.reload!.value !== true;
    settings.max_surge = forked
      ? { value: defaultMaxSurge(workers, 'fork'), source: 'default (all the workers: they are forked)' }
      : { value: defaultMaxSurge(workers, 'spawn'), source: 'default (a quarter of the workers, at least 1)' };
  }
  noticesForSupport(settings, notices);
  noticesForStartMethod(settings, notices);
  const workerHooks = Object.keys(settings).filter((name) => WORKER_HOOK_NAMES.has(name) && settings[name]!.value !== null);
  const masterHooks = Object.keys(settings).filter((name) => MASTER_HOOK_NAMES.has(name) && settings[name]!.value !== null);
  if (masterHooks.length > 0) {
    notices.push({
      level: 'warn',
      setting: masterHooks[0],
      msg: `server hooks ${masterHooks.join(', ')} in ${context.configFile?.given} run in gunicorn's master; corral does not run them (it runs post_fork, post_worker_init, worker_int, worker_abort and worker_exit in each worker)`,
    });
  }
  if (workerHooks.length > 0) {
    notices.push({ level: 'info', msg: `server hooks ${workerHooks.join(', ')} from ${context.configFile?.given} run in every worker` });
  }

  const uvicorn: UvicornSettings = {};
  for (const setting of SETTINGS) {
    if (!setting.uvicornKwarg || setting.uvicornKwarg === 'log_config') continue;
    const resolved = settings[setting.name]!;
    // A None from a worker class's CONFIG_KWARGS is uvicorn's own "off" (ws_ping_interval=None): passed on.
    if (resolved.value !== null || isFromWorkerClass(resolved)) uvicorn[setting.uvicornKwarg] = resolved.value;
  }
  uvicorn.headers = parseHeaders(value<string[] | null>('headers') ?? []);
  const logConfig = value('logconfig_dict') ?? value('logconfig_json') ?? value('logconfig');
  if (logConfig !== null) uvicorn.log_config = logConfig;

  const pythonpath = value<string | null>('pythonpath');
  const config: CorralConfig = {
    app,
    factory: value<boolean>('factory'),
    workers,
    binds,
    appDir: value<string>('app_dir'),
    python: value<string>('python'),
    ...numberFields(settings),
    pidFile: value<string | null>('pidfile') ?? undefined,
    umask: parseInt(value<string>('umask').slice(2), 8),
    logLevel: value<LogLevel>('loglevel'),
    logFormat: value<LogFormat>('log_format'),
    accessLog: value<boolean>('access_log'),
    accessLogFile: nonEmptyPath('--access-logfile', value<string | null>('accesslog')),
    errorLogFile: nonEmptyPath('--error-logfile', value<string | null>('errorlog')),
    metricsBind: value<string | null>('metrics_bind') === null ? undefined : parseMetricsBind(value<string>('metrics_bind')),
    controlSocket: value<boolean>('control_socket_disable')
      ? undefined
      : resolveControlSocket(nonEmptyPath('--control-socket', value<string | null>('control_socket')), value<string | null>('pidfile') ?? undefined),
    uvicorn,
    chdir: value<string | null>('chdir') ?? undefined,
    pythonPath: pythonpath ? pythonpath.split(',').map((dir) => dir.trim()).filter((dir) => dir !== '') : [],
    rawEnv: parseRawEnv(value<string[]>('raw_env')),
    procName: value<string | null>('proc_name') ?? undefined,
    user: value<string | null>('user') ?? undefined,
    group: value<string | null>('group') ?? undefined,
    initgroups: value<boolean>('initgroups'),
    reload: value<boolean>('reload'),
    startMethod: value<'fork' | 'spawn'>('start_method'),
    preloadApp: value<boolean>('preload_app'),
    reloadDirs: value<string[]>('reload_dirs'),
    reloadIncludes: value<string[]>('reload_includes'),
    reloadExcludes: value<string[]>('reload_excludes'),
    reloadExtraFiles: value<string[]>('reload_extra_files'),
    configFile: context.configFile ? { path: context.configFile.path || context.configFile.given, workerHooks, masterHooks } : undefined,
    workerClass,
    settings,
    notices,
  };
  if (value('print_config')) return { kind: 'print-config', config, json: value<boolean>('json') };
  if (value('check_config')) return { kind: 'check-config', config };
  return { kind: 'run', config };
}
