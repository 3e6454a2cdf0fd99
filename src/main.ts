import os from 'node:os';
import type { Logger } from 'pino';
import { Arbiter, type ArbiterSettings } from './arbiter.js';
import { CorralError, ExitCode, type ExitCodeValue } from './exit-codes.js';
import { createLogOutput, type LogOutput } from './logger.js';
import { parseCommandLine, type CommandLine, type CorralConfig } from './options.js';
import { writePidFile } from './pidfile.js';
import { currentIds, resolveWorkerIdentity } from './privileges.js';
import { preparePython, WORKER_ENTRY } from './python.js';
import { Recycler, type RecyclingSettings } from './recycling.js';
import { attachNotifier, SystemdNotifier, watchdogIntervalMs } from './sd-notify.js';
import { bindAll, systemdListenFds, type Listener } from './sockets.js';
import {
  containerInitParent,
  inheritanceFromEnvironment,
  INHERITED_LISTENERS,
  pidFilePath,
  promotePidFile,
  startNewMaster,
  UpgradeChannel,
  upgradeRefusal,
  UPGRADE_FD,
  UPGRADE_FROM,
} from './upgrade.js';
import { VERSION } from './version.js';
import { ProcessWorker, type SpawnWorker, type Worker } from './worker.js';

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

function workerEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of MASTER_ONLY_ENV) delete copy[name];
  return copy;
}

export function arbiterSettings(config: CorralConfig): ArbiterSettings {
  return {
    workers: config.workers,
    timeoutMs: config.timeout * 1000,
    bootTimeoutMs: config.bootTimeout * 1000,
    maxSurge: config.maxSurge,
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

/** How often a worker reports: often enough that a quarter of the timeout spans several beats. */
export function heartbeatInterval(timeoutSeconds: number): number {
  if (timeoutSeconds <= 0) return 2;
  return Math.min(2, Math.max(0.1, timeoutSeconds / 5));
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
    uvicorn: config.uvicorn,
  };
}

function routeWorkerOutput(output: LogOutput) {
  return (worker: Worker, stream: 'stdout' | 'stderr', line: string): void => {
    // The worker entry writes pino-compatible records itself: pass them on unparsed.
    if (line.startsWith('{"level":')) {
      output.writeRecord(line);
      return;
    }
    const fields = { worker: worker.slot, pid: worker.pid, stream };
    if (stream === 'stdout') output.logger.info(fields, line);
    else output.logger.warn(fields, line);
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

/** Node as PID 1 reaps no orphans: a container needs tini (or `docker run --init`) in front. */
function warnIfPidOne(log: Logger): void {
  if (process.pid !== 1) return;
  log.warn(
    'corral runs as PID 1: nothing reaps orphaned processes; use tini as the ENTRYPOINT (ENTRYPOINT ["tini", "--"]) or docker run --init',
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

/**
 * HUP re-reads the configuration as it was given (command line and environment). What needs a new
 * master (binds, Python, worker count changes go through TTIN/TTOU) is kept and named in the log.
 */
function rereadConfiguration(load: () => CommandLine, current: CorralConfig, log: Logger): CorralConfig | undefined {
  let parsed;
  try {
    parsed = load();
  } catch (error) {
    log.error({ err: error }, 'the configuration could not be re-read; restarting with the previous one');
    return undefined;
  }
  if (parsed.kind !== 'run') return undefined;
  const next = { ...parsed.config, binds: current.binds, python: current.python, workers: current.workers };
  return next;
}

async function serve(config: CorralConfig, load: () => CommandLine, output: LogOutput): Promise<ExitCodeValue> {
  const log = output.logger;
  const startCwd = process.cwd();
  let listeners: Listener[] = [];
  let removePidFile = () => undefined as void;
  // Set when a USR2 upgrade has handed the sockets and the pid file to a new master.
  let handedOver = false;
  // Set in a new master until the previous one has exited: its unix socket files are still shared.
  let awaitingPromotion = false;
  try {
    warnIfPidOne(log);
    const inheritance = inheritanceFromEnvironment(process.env);
    awaitingPromotion = inheritance !== undefined;
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
    if (config.pidFile) removePidFile = writePidFile(pidFilePath(config.pidFile, inheritance !== undefined));
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
    const env = workerEnvironment(process.env);
    const onOutput = routeWorkerOutput(output);
    let current = config;
    let settings = workerSettings(current);
    // Reads the live configuration at each spawn, so a HUP's re-read reaches every new worker.
    const spawnWorker: SpawnWorker = (spec) =>
      new ProcessWorker(spec, {
        python: current.python,
        entry: WORKER_ENTRY,
        listenerFds: listeners.map((listener) => listener.fd),
        env,
        settings,
        // The worker bounds its own drain; the master's SIGKILL comes just after, as a backstop.
        gracefulTimeoutMs: current.gracefulTimeout * 1000 + 500,
        onOutput,
        ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
      });
    const arbiter = new Arbiter(arbiterSettings(current), spawnWorker, log);
    const recycler = new Recycler(arbiter, recyclingSettings(current), log);
    recycler.start();
    const reload = (): void => {
      const next = rereadConfiguration(load, current, log);
      if (next) {
        current = next;
        settings = workerSettings(next);
        arbiter.updateSettings(arbiterSettings(next));
        recycler.updateSettings(recyclingSettings(next));
      }
      arbiter.requestRollingRestart('SIGHUP');
    };
    const removeSignals = installSignals(arbiter, log, reload);

    const notifySocket = process.env.NOTIFY_SOCKET;
    const notifier = notifySocket ? new SystemdNotifier(config.python, notifySocket, log) : undefined;
    const notifications = notifier
      ? attachNotifier(arbiter, notifier, {
          watchdogMs: watchdogIntervalMs(process.env),
          staleMs: 3 * heartbeatInterval(config.timeout) * 1000,
          log,
        })
      : undefined;

    if (inheritance) {
      // New master of a USR2 upgrade: report ready once every worker is, then wait for the old one to go.
      const channel = new UpgradeChannel(inheritance.channelFd);
      arbiter.once('all-ready', () => {
        if (notifySocket) notifier?.send(`MAINPID=${process.pid}`);
        channel.reportReady();
      });
      channel.onPreviousGone(() => {
        awaitingPromotion = false;
        if (config.pidFile) {
          try {
            promotePidFile(config.pidFile);
            removePidFile = writePidFile(config.pidFile);
          } catch (error) {
            log.error({ err: error, pidFile: config.pidFile }, 'upgrade: could not move the pid file over');
          }
        }
        log.info({ previousMaster: inheritance.previousPid, pidFile: config.pidFile }, 'upgrade: the previous master has exited; this master is in charge');
      });
    }

    let upgrading = false;
    process.on('SIGUSR2', () => {
      log.info({ signal: 'SIGUSR2' }, 'signal received');
      const refusal = upgradeRefusal({
        pid: process.pid,
        containerInit: containerInitParent(),
        awaitingPromotion,
        upgrading,
        stopping: arbiter.stopping,
      });
      if (refusal) {
        log.warn({ signal: 'SIGUSR2' }, `upgrade refused: ${refusal}`);
        return;
      }
      upgrading = true;
      const next = startNewMaster(listeners, startCwd);
      log.info({ newMaster: next.pid }, 'upgrade: started a new master with the listen sockets; waiting for its workers');
      void next.outcome.then((outcome) => {
        if (!outcome.ok) {
          upgrading = false;
          log.error(
            { newMaster: outcome.pid, code: outcome.code, signal: outcome.signal, error: outcome.error },
            'upgrade failed: the new master exited before its workers were ready; this master keeps serving',
          );
          return;
        }
        handedOver = true;
        notifications?.handOver();
        log.info({ newMaster: outcome.pid }, 'upgrade: the new master is ready; draining this master and exiting');
        arbiter.stop('graceful');
      });
    });

    const code = await arbiter.run();
    removeSignals();
    process.removeAllListeners('SIGUSR2');
    notifications?.detach();
    notifier?.close();
    log.info({ code }, handedOver ? 'corral stopped; the new master serves' : 'corral stopped');
    return code;
  } finally {
    // A unix socket file still served by the other master of an upgrade stays.
    for (const listener of listeners) listener.close({ keepFile: handedOver || awaitingPromotion });
    // The new master renames its <pid>.2 over the pid file once this one has exited.
    if (!handedOver) removePidFile();
  }
}

/** Runs corral with these arguments; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<ExitCodeValue> {
  let config: CorralConfig;
  const load = (): CommandLine => parseCommandLine(argv, process.env);
  try {
    const parsed = load();
    if (parsed.kind === 'help') {
      process.stdout.write(`${parsed.text}\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'version') {
      process.stdout.write(`corral ${VERSION} (Node.js ${process.version}, ${os.platform()})\n`);
      return ExitCode.ok;
    }
    config = parsed.config;
  } catch (error) {
    if (error instanceof CorralError) {
      process.stderr.write(`corral: error: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
  const output = createLogOutput(config.logFormat, config.logLevel);
  try {
    return await serve(config, load, output);
  } catch (error) {
    if (error instanceof CorralError) {
      output.logger.fatal({ code: error.exitCode }, error.message);
      return error.exitCode;
    }
    output.logger.fatal({ err: error }, 'corral failed');
    return ExitCode.runtime;
  }
}
