import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Arbiter, type ArbiterSettings } from './supervisor/arbiter.js';
import { DEFAULT_CONFIG_FILE, readConfigFile } from './config/config-file.js';
import { ConfigRereads } from './config/rereads.js';
import { readCpuLimit } from './config/cpu-limit.js';
import { CorralError, ExitCode, UsageError, type ExitCodeValue } from './exit-codes.js';
import { isControlCommand } from './control/commands.js';
import { installCrashHandler, onCrash } from './platform/crash.js';
import { createLogOutput, type LogOutput } from './telemetry/logger.js';
import { startObservability, type Observability } from './telemetry/observability.js';
import { parseCommandLine, preliminarySettings, type CommandLine, type CorralConfig } from './config/resolve.js';
import { currentIds, resolveWorkerIdentity } from './platform/privileges.js';
import { markDeadOnExit, prepareMultiprocDirectory } from './telemetry/prometheus-multiproc.js';
import { preparePython, WORKER_ENTRY } from './worker/python.js';
import { Recycler, type RecyclingSettings } from './supervisor/recycling.js';
import { bindAll, systemdListenFds, type Listener } from './platform/sockets.js';
import { initUnavailableReason, INIT_NAME } from './platform/pid-one.js';
import { containerInitParent, inheritanceFromEnvironment, INHERITED_LISTENERS, MasterUpgrades, UPGRADE_FD, UPGRADE_FROM } from './platform/upgrade.js';
import { VERSION } from './version.js';
import { checkWorkerCount, readMachineLimits } from './config/worker-capacity.js';
import { UVICORN_WORKER_CLASSES } from './config/settings-table.js';
import { checkWorkerClass, workerClassSettings } from './config/worker-class.js';
import { applyReloadMode } from './reload/mode.js';
import { ProcessWorker } from './worker/process-worker.js';
import type { SpawnWorker, WorkerSpawnSpec } from './worker/worker.js';
import { routeForkServerOutput, routeWorkerOutput } from './worker/output.js';
import { ChannelServer } from './worker/channel-server.js';
import { ForkServerLauncher } from './worker/fork-launcher.js';

/** How long an exiting corral waits for its queued log records to be written. */
const EXIT_LOG_FLUSH_MS = 1000;

/** Variables that belong to the master alone (systemd's), never to a worker. */
const MASTER_ONLY_ENV = [
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'NOTIFY_SOCKET',
  'WATCHDOG_USEC',
  'WATCHDOG_PID',
  UPGRADE_FROM,
  UPGRADE_FD,
  INHERITED_LISTENERS,
];

function workerEnvironment(env: NodeJS.ProcessEnv, config: CorralConfig): NodeJS.ProcessEnv {
  const copy = { ...env, ...config.rawEnv };
  for (const name of MASTER_ONLY_ENV) delete copy[name];
  // gunicorn's --pythonpath: directories searched before the app's own.
  if (config.pythonPath.length > 0) {
    const dirs = config.pythonPath.map((dir) => path.resolve(dir));
    copy.PYTHONPATH = [...dirs, ...(copy.PYTHONPATH ? [copy.PYTHONPATH] : [])].join(path.delimiter);
  }
  return copy;
}

/** What the worker entry needs to run a config file's worker-side hooks. */
function hookSettings(config: CorralConfig): Record<string, unknown> {
  if (!config.configFile || config.configFile.workerHooks.length === 0) return {};
  const cfg: Record<string, unknown> = {};
  for (const [name, resolved] of Object.entries(config.settings)) cfg[name] = resolved.value;
  return { hooks: { file: config.configFile.path, names: config.configFile.workerHooks, cfg, master_pid: process.pid } };
}

export function arbiterSettings(config: CorralConfig): ArbiterSettings {
  return {
    workers: config.workers,
    timeoutMs: config.timeout * 1000,
    bootTimeoutMs: config.bootTimeout * 1000,
    maxSurge: config.maxSurge,
    parkOnBootFailure: config.reload,
    shutdownDelayMs: config.shutdownDelay * 1000,
  };
}

export function recyclingSettings(config: CorralConfig): RecyclingSettings {
  return {
    maxMemory: config.maxMemory,
    sampleIntervalMs: config.memoryCheckInterval * 1000,
    maxLifetimeMs: config.maxWorkerLifetime * 1000,
    maxLifetimeJitterMs: config.maxWorkerLifetimeJitter * 1000,
  };
}

/** How often a worker reports: six beats per timeout, and no more than one each 5 s (the master's idle CPU). */
export function heartbeatInterval(timeoutSeconds: number): number {
  if (timeoutSeconds <= 0) return 5;
  return Math.min(5, Math.max(0.1, timeoutSeconds / 6));
}

function workerSettings(config: CorralConfig): Record<string, unknown> {
  return {
    app: config.app,
    app_dir: config.appDir,
    factory: config.factory,
    log_level: config.logLevel,
    access_log: config.accessLog,
    graceful_timeout: config.gracefulTimeout,
    heartbeat_interval: heartbeatInterval(config.timeout),
    max_requests: config.maxRequests,
    max_requests_jitter: config.maxRequestsJitter,
    preload_app: config.preloadApp,
    uvicorn: config.uvicorn,
    proc_name: config.procName ?? null,
    ...hookSettings(config),
    ...workerClassSettings(config.workerClass),
  };
}

function installSignals(arbiter: Arbiter, log: Logger, reload: () => void): () => void {
  const handlers: Partial<Record<NodeJS.Signals, () => void>> = {
    SIGTERM: () => arbiter.stop('graceful'),
    SIGINT: () => arbiter.stop('quick'),
    SIGQUIT: () => arbiter.stop('quick'),
    SIGHUP: reload,
    SIGTTIN: () => arbiter.requestScaleUp(),
    SIGTTOU: () => arbiter.requestScaleDown(),
    SIGWINCH: () => undefined,
  };
  for (const [signal, handler] of Object.entries(handlers)) {
    process.on(signal, () => {
      log.info({ signal }, 'signal received');
      handler();
    });
  }
  return () => {
    for (const signal of Object.keys(handlers)) process.removeAllListeners(signal);
  };
}

/** As PID 1 corral runs behind corral-init (src/platform/pid-one.ts); a master still PID 1 could not start it, and reaps no orphans. */
function reportPidOne(log: Logger): void {
  if (containerInitParent() === INIT_NAME) {
    log.info({ init: process.ppid }, `running under ${INIT_NAME}: orphaned processes are reaped and signals forwarded to this master`);
    return;
  }
  if (process.pid !== 1) return;
  const reason = initUnavailableReason();
  log.warn(
    `corral runs as PID 1${reason ? ` and could not start ${INIT_NAME} (${reason})` : ''}: nothing reaps orphaned processes; use tini as the ENTRYPOINT (ENTRYPOINT ["tini", "--"]) or docker run --init`,
  );
}

/** Where the sockets come from, when not from --bind: said once, so a --bind that is ignored is no surprise. */
function logSocketSource(config: CorralConfig, log: Logger, upgrading: boolean): void {
  if (upgrading) {
    log.info({ previousMaster: process.env[UPGRADE_FROM] }, 'upgrade: using the listen sockets of the previous master');
  } else if (systemdListenFds(process.env).length > 0) {
    log.info(
      { fds: Number(process.env.LISTEN_FDS), names: process.env.LISTEN_FDNAMES, ignoredBinds: config.binds.length },
      'systemd socket activation: using the sockets from LISTEN_FDS instead of --bind',
    );
  }
}

/** Reads every configuration source; aborting stops a config file that is still running. */
type LoadCommandLine = (signal?: AbortSignal) => Promise<CommandLine>;

/**
 * HUP re-reads the configuration as it was given (command line and environment). What needs a new
 * master (binds, Python, worker count changes go through TTIN/TTOU) is kept and named in the log.
 */
async function rereadConfiguration(load: LoadCommandLine, current: CorralConfig, log: Logger, signal: AbortSignal): Promise<CorralConfig | undefined> {
  let parsed;
  try {
    parsed = await load(signal);
  } catch (error) {
    if (signal.aborted) return undefined;
    log.error({ err: error }, 'the configuration could not be re-read; restarting with the previous one');
    return undefined;
  }
  if (parsed.kind !== 'run') return undefined;
  const next = { ...parsed.config, binds: current.binds, python: current.python, workers: current.workers };
  return applyReloadMode(next);
}

async function serve(givenConfig: CorralConfig, load: LoadCommandLine, output: LogOutput, startCwd: string): Promise<ExitCodeValue> {
  const config = applyReloadMode(givenConfig);
  // Feature modules load only when used: every start pays for what it imports.
  const reloading = config.reload ? await import('./reload/dev-reloader.js') : undefined;
  // A reload directory that does not exist is a usage error, found before anything is bound.
  reloading?.watchRulesOf(config);
  const log = output.logger;
  let listeners: Listener[] = [];
  let upgrades: MasterUpgrades | undefined;
  let forgetCrash = (): void => undefined;
  try {
    reportPidOne(log);
    const inheritance = inheritanceFromEnvironment(process.env);
    upgrades = new MasterUpgrades(inheritance, config.pidFile, startCwd, log);
    const identity = resolveWorkerIdentity(config.user, config.group, currentIds());
    logSocketSource(config, log, inheritance !== undefined);
    listeners = await bindAll(config.binds, {
      unixMode: 0o777 & ~config.umask,
      env: process.env,
      inherited: inheritance?.listeners,
      ...(identity ? { owner: { uid: identity.uid, gid: identity.gid } } : {}),
    });
    const python = await preparePython(
      config.python,
      listeners.map((listener) => listener.fd),
      Number(config.uvicorn.backlog ?? 2048),
      identity,
    );
    upgrades.writePidFile();
    // Before any worker: prometheus_client's multiprocess files of an earlier run must go.
    prepareMultiprocDirectory(workerEnvironment(process.env, config), { takingOver: inheritance !== undefined, owner: identity, log });
    const addresses = listeners.map((listener, index) => (listener.spec.kind === 'fd' ? (python.addresses?.[index] ?? listener.address) : listener.address));
    log.info(
      {
        version: VERSION,
        binds: addresses,
        ...(identity ? { user: identity.user, group: identity.group, uid: identity.uid, gid: identity.gid } : {}),
        workers: config.workers,
        python: python.executable,
        pythonVersion: python.python,
        uvicorn: python.uvicorn,
        app: config.app,
      },
      `corral ${VERSION} listening on ${addresses.join(', ')}`,
    );
    const onOutput = routeWorkerOutput(output);
    let current = config;
    let settings = workerSettings(current);
    // Reads the live configuration at each spawn, so a HUP's re-read reaches every new worker.
    const makeWorker = (spec: WorkerSpawnSpec, extraSettings: Record<string, unknown> = {}) => {
      // -e and --pythonpath may change with a HUP's re-read.
      const env = workerEnvironment(process.env, current);
      const worker = new ProcessWorker(spec, {
        python: current.python,
        entry: WORKER_ENTRY,
        listenerFds: listeners.map((listener) => listener.fd),
        env,
        settings: { ...settings, ...extraSettings },
        // The worker bounds its own drain; the master's SIGKILL comes just after, as a backstop.
        gracefulTimeoutMs: current.gracefulTimeout * 1000 + 500,
        onOutput,
        ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
      });
      return markDeadOnExit(worker, env, log);
    };
    const reloader = reloading ? new reloading.DevReloader(config, makeWorker, log) : undefined;
    // --reload keeps its warm standbys (spawned); otherwise workers are forked unless --start-method spawn.
    const forking = !reloader && config.startMethod === 'fork' ? await startForking(config.python, listeners, identity, onOutput, output, log) : undefined;
    const launchFork = (spec: WorkerSpawnSpec) =>
      forking!.launcher.launch(spec, {
        settings,
        env: workerEnvironment(process.env, current),
        gracefulTimeoutMs: current.gracefulTimeout * 1000 + 500,
        spawn: (fallback) => makeWorker(fallback),
      });
    const spawnWorker: SpawnWorker = reloader
      ? reloader.spawnWorker
      : forking
        ? (spec) => markDeadOnExit(launchFork(spec), workerEnvironment(process.env, current), log)
        : (spec) => makeWorker(spec);
    const arbiter = new Arbiter(arbiterSettings(current), spawnWorker, log);
    // A crash skips the finally below: what it does must still happen (workers, listeners, pid file).
    forgetCrash = onCrash(() => {
      forking?.channels.removeFiles();
      for (const worker of arbiter.liveWorkers()) worker.stop('halt', 'kill');
      for (const listener of listeners) listener.close({ keepFile: upgrades?.socketsShared ?? false });
      upgrades?.releasePidFile();
    });
    const recycler = new Recycler(arbiter, recyclingSettings(current), log);
    recycler.start();
    // The config file runs in a child process: the master serves signals, heartbeats and the control socket meanwhile.
    const rereads = new ConfigRereads(async (reason, signal) => {
      const next = await rereadConfiguration(load, current, log, signal);
      if (signal.aborted) return;
      if (next) {
        current = next;
        settings = workerSettings(next);
        arbiter.updateSettings(arbiterSettings(next));
        recycler.updateSettings(recyclingSettings(next));
      }
      arbiter.requestRollingRestart(reason);
    }, log);
    arbiter.once('stopping', () => rereads.close());
    const reload = (reason = 'SIGHUP'): void => rereads.request(reason);
    const removeSignals = installSignals(arbiter, log, () => reload());
    // The metrics port and the control socket are the previous master's until it has gone.
    let observability: Observability | undefined;
    const observe = async (): Promise<void> => {
      observability = await startObservability(config, arbiter, output, () => reload('control'), recycler, forking && (() => forking.launcher.status()));
    };
    if (!upgrades.awaitingPromotion) await observe();

    const systemd = (process.env.NOTIFY_SOCKET ? await import('./platform/sd-notify.js') : undefined)?.startSystemdNotifications(arbiter, {
      python: config.python,
      env: process.env,
      heartbeatSeconds: heartbeatInterval(config.timeout),
      log,
    });

    // USR2: this master may be the new one of an upgrade, and may start the next.
    const removeUpgrades = upgrades.attach(arbiter, listeners, {
      onReady: () => systemd?.send(`MAINPID=${process.pid}`),
      onHandOver: () => systemd?.handOver(),
      onPromoted: () =>
        void observe().catch((error: unknown) =>
          log.error({ err: error }, 'upgrade: the metrics endpoint or control socket could not start'),
        ),
    });

    try {
      const running = arbiter.run();
      await reloader?.start(arbiter);
      const code = await running;
      await reloader?.close();
      await forking?.close();
      removeSignals();
      removeUpgrades();
      systemd?.close();
      log.info({ code }, upgrades.handedOver ? 'corral stopped; the new master serves' : 'corral stopped');
      return code;
    } finally {
      await observability?.close();
      await forking?.close();
    }
  } finally {
    forgetCrash();
    // A unix socket file still served by the other master of an upgrade stays.
    for (const listener of listeners) listener.close({ keepFile: upgrades?.socketsShared ?? false });
    upgrades?.releasePidFile();
  }
}

/** The fork servers' launcher and the socket their workers connect back to (--start-method fork). */
async function startForking(
  python: string,
  listeners: readonly Listener[],
  identity: { uid: number; gid: number } | undefined,
  onOutput: ReturnType<typeof routeWorkerOutput>,
  output: LogOutput,
  log: Logger,
): Promise<{ launcher: ForkServerLauncher; channels: ChannelServer; close(): Promise<void> }> {
  const channels = await ChannelServer.open(identity);
  const launcher = new ForkServerLauncher({
    python,
    entry: WORKER_ENTRY,
    listenerFds: listeners.map((listener) => listener.fd),
    channels,
    log,
    onOutput,
    onServerOutput: routeForkServerOutput(output),
    ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
  });
  let closing: Promise<void> | undefined;
  return {
    launcher,
    channels,
    close: () => (closing ??= launcher.close().finally(() => channels.close())),
  };
}

/** The config file to read: -c (or $CORRAL_CONFIG, or a CMD_ARGS variable), else ./gunicorn.conf.py when present. */
function configFileToRead(given: string | undefined): string | undefined {
  if (given !== undefined) return given;
  return fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

function changeDirectory(dir: string | undefined, startCwd: string): void {
  if (dir === undefined) return;
  // Relative to where corral started, so a HUP's re-read lands in the same place.
  const target = path.resolve(startCwd, dir);
  if (target === process.cwd()) return;
  try {
    process.chdir(target);
  } catch {
    throw new UsageError(`--chdir ${JSON.stringify(dir)}: no such directory`);
  }
}

/** Reads every configuration source (chdir first, then the config file) into a command line. */
async function resolveCommandLine(argv: readonly string[], startCwd: string, signal?: AbortSignal): Promise<CommandLine> {
  const first = preliminarySettings(argv, process.env);
  if (first.helpOrVersion) return parseCommandLine(argv, process.env);
  changeDirectory(first.chdir, startCwd);
  const file = configFileToRead(first.config);
  // The reader also checks a worker class named above or in the file: one Python run for both.
  const workerClassHint = { upper: first.aboveFile, known: Object.keys(UVICORN_WORKER_CLASSES) };
  const configFile = file === undefined ? undefined : await readConfigFile(file, first.python, process.cwd(), { workerClassHint, ...(signal ? { signal } : {}) });
  if (configFile?.printed) process.stderr.write(configFile.printed);
  const context = { configFile, cpuLimit: (root: string) => readCpuLimit(root) };
  let parsed = parseCommandLine(argv, process.env, context);
  // A chdir set in the config file itself applies after reading it, as in gunicorn.
  if ('config' in parsed) changeDirectory(parsed.config.chdir, startCwd);
  // A worker class corral does not know by name is imported and checked once, before anything starts.
  if ('config' in parsed && parsed.config.workerClass?.pending) {
    const fromReader = { inspection: configFile?.workerClass, python: first.python };
    const workerClass = await checkWorkerClass(parsed.config.workerClass.name, parsed.config, fromReader, process.env);
    parsed = parseCommandLine(argv, process.env, { ...context, workerClass });
  }
  return parsed;
}

function printNotices(config: CorralConfig): void {
  for (const notice of config.notices) process.stderr.write(`corral: ${notice.level === 'warn' ? 'warning' : 'note'}: ${notice.msg}\n`);
}

/** Runs corral with these arguments; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<ExitCodeValue> {
  // The client (and yargs) load only for a subcommand: a running master never needs them.
  if (isControlCommand(argv[0])) return (await import('./control/client.js')).runControlCommand(argv);
  let config: CorralConfig;
  // Before any --chdir: USR2 starts the next master from here, and HUP re-reads relative to it.
  const startCwd = process.cwd();
  // HUP re-reads every source again: the command line, the environment and the config file.
  // One code path at start and on HUP: at start nothing runs yet, but the read is the same.
  const load: LoadCommandLine = (signal) => resolveCommandLine(argv, startCwd, signal);
  try {
    const parsed = await load();
    if (parsed.kind === 'help') {
      process.stdout.write(`${parsed.text}\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'version') {
      process.stdout.write(`corral ${VERSION} (Node.js ${process.version}, ${os.platform()})\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'print-config') {
      printNotices(parsed.config);
      const { configAsJson, configAsText } = await import('./config/print-config.js');
      process.stdout.write(`${parsed.json ? configAsJson(parsed.config) : configAsText(parsed.config)}\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'check-config') {
      printNotices(parsed.config);
      const result = (await import('./config/check-config.js')).checkAppImports(parsed.config, process.env);
      if (result.output) process.stderr.write(`${result.output}\n`);
      process.stderr.write(result.ok ? `corral: configuration OK; ${parsed.config.app} imports\n` : `corral: check failed\n`);
      return result.ok ? ExitCode.ok : ExitCode.runtime;
    }
    config = parsed.config;
    // Refused before anything is bound: -w 100000 would spawn until the master runs out of descriptors.
    const crowded = checkWorkerCount(config.workers, readMachineLimits(), config.reload);
    if (crowded) config = { ...config, notices: [...config.notices, { level: 'warn', setting: 'workers', msg: crowded }] };
  } catch (error) {
    if (error instanceof CorralError) {
      if (error.detail) process.stderr.write(error.detail.endsWith('\n') ? error.detail : `${error.detail}\n`);
      process.stderr.write(`corral: error: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
  let output: LogOutput;
  try {
    output = createLogOutput(config.logFormat, config.logLevel, {
      errorLogFile: config.errorLogFile,
      accessLogFile: config.accessLogFile,
    });
  } catch (error) {
    process.stderr.write(`corral: error: cannot open a log file: ${(error as Error).message}\n`);
    return ExitCode.runtime;
  }
  for (const notice of config.notices) {
    const fields = notice.setting ? { setting: notice.setting } : {};
    if (notice.level === 'warn') output.logger.warn(fields, notice.msg);
    else output.logger.info(fields, notice.msg);
  }
  if (config.procName) process.title = config.procName;
  installCrashHandler(output.logger);
  try {
    return await serve(config, load, output, startCwd);
  } catch (error) {
    if (error instanceof CorralError) {
      output.logger.fatal({ code: error.exitCode }, error.message);
      return error.exitCode;
    }
    output.logger.fatal({ err: error }, 'corral failed');
    return ExitCode.runtime;
  } finally {
    // What is still queued goes out now, within a bound: a stdout nobody reads must not hold the exit.
    await output.flush(EXIT_LOG_FLUSH_MS);
  }
}
