import type { Logger } from 'pino';
import { Arbiter, type ArbiterSettings } from './supervisor/arbiter.js';
import { ConfigRereads } from './config/rereads.js';
import type { ExitCodeValue } from './exit-codes.js';
import { onCrash } from './platform/crash.js';
import type { LogOutput } from './telemetry/logger.js';
import { startObservability, type Observability } from './telemetry/observability.js';
import type { CommandLine, CorralConfig } from './config/resolve.js';
import { currentIds, resolveWorkerIdentity } from './platform/privileges.js';
import { prepareMultiprocDirectory } from './telemetry/prometheus-multiproc.js';
import { preparePython } from './worker/python.js';
import { Recycler, type RecyclingSettings } from './supervisor/recycling.js';
import { bindAll, systemdListenFds, type Listener } from './platform/sockets.js';
import { initUnavailableReason, INIT_NAME, type FORWARDED_SIGNALS } from './platform/pid-one.js';
import { containerInitParent, inheritanceFromEnvironment, MasterUpgrades, UPGRADE_FROM } from './platform/upgrade.js';
import type { SystemdNotifications } from './platform/sd-notify.js';
import { VERSION } from './version.js';
import { applyReloadMode } from './reload/mode.js';
import type { DevReloader } from './reload/dev-reloader.js';
import { SpawnLauncher, type WorkerLauncher } from './worker/launcher.js';
import { heartbeatInterval, workerEnvironment } from './worker/worker-config.js';
import { routeForkServerOutput, routeWorkerOutput } from './worker/output.js';
import type { ForkServerLauncher } from './worker/fork-launcher.js';

/**
 * The master: binds the sockets, starts the arbiter and what steers it (signals, the control socket,
 * HUP's re-read, recycling, systemd, USR2 upgrades), and cleans up after it. main.ts has parsed the
 * command line and made the logger; everything from here on is the running server.
 */

/** Reads every configuration source; aborting stops a config file that is still running. */
export type LoadCommandLine = (signal?: AbortSignal) => Promise<CommandLine>;

/** Every signal the master takes: exactly those its init forwards (src/platform/pid-one.ts), as the table's type requires. */
export type MasterSignal = (typeof FORWARDED_SIGNALS)[number];

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

/** What the master runs with, made ready by serve() before any worker starts. */
interface MasterParts {
  config: CorralConfig;
  load: LoadCommandLine;
  output: LogOutput;
  listeners: readonly Listener[];
  upgrades: MasterUpgrades;
  launcher: WorkerLauncher;
  reloader: DevReloader | undefined;
  /** --start-method fork: the fork servers, for `corral status`. */
  forking?: ForkServerLauncher | undefined;
}

/**
 * The running master. Every OS signal it takes is in one table, each with one handler method, as
 * gunicorn's arbiter has SIGNALS and handle_*; nothing else in corral's master installs a signal
 * handler. The arbiter decides which workers run; the launcher starts them; this class turns
 * signals, control-socket commands and HUP's re-read into the arbiter's operations.
 */
export class Master {
  readonly arbiter: Arbiter;
  private readonly log: Logger;
  private readonly recycler: Recycler;
  private readonly rereads: ConfigRereads;
  /** The configuration in force: the start's, then each HUP's re-read. */
  private current: CorralConfig;
  private observability: Observability | undefined;
  private systemd: SystemdNotifications | undefined;
  private readonly installed = new Map<MasterSignal, () => void>();

  /** The signal table. */
  private readonly signals: Readonly<Record<MasterSignal, () => void>> = {
    SIGTERM: () => this.handleTerm(),
    SIGINT: () => this.handleInt(),
    SIGQUIT: () => this.handleQuit(),
    SIGHUP: () => this.handleHup(),
    SIGTTIN: () => this.handleTtin(),
    SIGTTOU: () => this.handleTtou(),
    SIGUSR1: () => this.handleUsr1(),
    SIGUSR2: () => this.handleUsr2(),
    SIGWINCH: () => this.handleWinch(),
  };

  constructor(private readonly parts: MasterParts) {
    this.log = parts.output.logger;
    this.current = parts.config;
    this.arbiter = new Arbiter(arbiterSettings(parts.config), parts.launcher, this.log);
    this.recycler = new Recycler(this.arbiter, recyclingSettings(parts.config), this.log);
    // The config file runs in a child process: the master serves signals, heartbeats and the control socket meanwhile.
    this.rereads = new ConfigRereads((reason, signal) => this.reread(reason, signal), this.log);
    this.arbiter.once('stopping', () => this.rereads.close());
  }

  // ---- signals ----------------------------------------------------------------------------

  /** TERM: a graceful stop, after --shutdown-delay; a second TERM during the delay drains at once. */
  handleTerm(): void {
    this.arbiter.stop('graceful');
  }

  /** INT: a quick stop; a second one kills the workers. */
  handleInt(): void {
    this.arbiter.stop('quick');
  }

  /** QUIT: as INT. */
  handleQuit(): void {
    this.arbiter.stop('quick');
  }

  /** HUP: re-read the configuration, then replace every worker (a rolling restart). */
  handleHup(): void {
    this.reload('SIGHUP');
  }

  /** TTIN: one worker more. */
  handleTtin(): void {
    this.arbiter.requestScaleUp();
  }

  /** TTOU: one worker fewer, the oldest drained. */
  handleTtou(): void {
    this.arbiter.requestScaleDown();
  }

  /** USR1: reopen the log files (after logrotate moved them). */
  handleUsr1(): void {
    this.parts.output.reopen();
    this.log.info({ signal: 'SIGUSR1' }, 'log files reopened');
  }

  /** USR2: upgrade the master itself: a new master with these sockets, then this one drains (src/platform/upgrade.ts). */
  handleUsr2(): void {
    this.parts.upgrades.upgrade();
  }

  /** WINCH: taken and logged only. gunicorn stops the workers of a daemonized master; corral never daemonizes. */
  handleWinch(): void {}

  private installSignals(): void {
    for (const [signal, handler] of Object.entries(this.signals) as [MasterSignal, () => void][]) {
      const listener = (): void => {
        this.log.info({ signal }, 'signal received');
        handler();
      };
      this.installed.set(signal, listener);
      process.on(signal, listener);
    }
  }

  private removeSignals(): void {
    for (const [signal, listener] of this.installed) process.off(signal, listener);
    this.installed.clear();
  }

  // ---- HUP --------------------------------------------------------------------------------

  /** HUP or `corral reload`: re-reads the configuration (one at a time; src/config/rereads.ts), then the rolling restart. */
  reload(reason: string): void {
    this.rereads.request(reason);
  }

  private async reread(reason: string, signal: AbortSignal): Promise<void> {
    const next = await rereadConfiguration(this.parts.load, this.current, this.log, signal);
    if (signal.aborted) return;
    if (next) {
      this.current = next;
      // New workers start from it: the launcher has the live configuration.
      this.parts.launcher.reconfigure(next);
      this.arbiter.updateSettings(arbiterSettings(next));
      this.recycler.updateSettings(recyclingSettings(next));
    }
    this.arbiter.requestRollingRestart(reason);
  }

  // ---- running ----------------------------------------------------------------------------

  /** Kills every worker at once: the crash handler's cleanup. */
  killWorkers(): void {
    for (const worker of this.arbiter.liveWorkers()) worker.stop('halt', 'kill');
  }

  /** The metrics port and the control socket (the previous master's until it has gone, in an upgrade). */
  private async observe(): Promise<void> {
    const forking = this.parts.forking;
    this.observability = await startObservability(
      this.parts.config,
      this.arbiter,
      this.parts.output,
      () => this.reload('control'),
      this.recycler,
      forking,
    );
  }

  /** Runs until the arbiter has stopped every worker; resolves with the exit code. */
  async run(): Promise<ExitCodeValue> {
    const { config, upgrades, reloader, launcher, listeners } = this.parts;
    this.recycler.start();
    this.installSignals();
    try {
      if (!upgrades.awaitingPromotion) await this.observe();
      this.systemd = (process.env.NOTIFY_SOCKET ? await import('./platform/sd-notify.js') : undefined)?.startSystemdNotifications(this.arbiter, {
        python: config.python,
        env: process.env,
        heartbeatSeconds: heartbeatInterval(config.timeout),
        log: this.log,
      });
      // This master may be the new one of an upgrade (USR2 itself is in the signal table).
      upgrades.attach(this.arbiter, listeners, {
        onReady: () => this.systemd?.send(`MAINPID=${process.pid}`),
        onHandOver: () => this.systemd?.handOver(),
        onPromoted: () =>
          void this.observe().catch((error: unknown) =>
            this.log.error({ err: error }, 'upgrade: the metrics endpoint or control socket could not start'),
          ),
      });
      const running = this.arbiter.run();
      await reloader?.start(this.arbiter);
      const code = await running;
      await reloader?.close();
      await launcher.close();
      this.removeSignals();
      this.systemd?.close();
      this.log.info({ code }, upgrades.handedOver ? 'corral stopped; the new master serves' : 'corral stopped');
      return code;
    } finally {
      this.removeSignals();
      await this.observability?.close();
    }
  }
}

/**
 * Serves until stopped: binds (or inherits) the sockets, checks the Python, writes the pid file, and
 * runs the master; whatever way it ends, the sockets and the pid file are released.
 */
export async function serve(givenConfig: CorralConfig, load: LoadCommandLine, output: LogOutput, startCwd: string): Promise<ExitCodeValue> {
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
    const listenerFds = listeners.map((listener) => listener.fd);
    const python = await preparePython(config.python, listenerFds, Number(config.uvicorn.backlog ?? 2048), identity);
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
    const spawner = new SpawnLauncher({ config, listenerFds, identity, onOutput, log });
    // Forked from a fork server per generation unless --start-method spawn; --reload keeps one fork server
    // across saves and forks its standbys from it (spawn: spawned standbys).
    const forking =
      config.startMethod === 'fork'
        ? await (await import('./worker/fork-launcher.js')).ForkServerLauncher.open({
            config,
            listenerFds,
            identity,
            log,
            onOutput,
            onServerOutput: routeForkServerOutput(output),
            spawn: spawner,
          })
        : undefined;
    const reloader = reloading ? new reloading.DevReloader(config, spawner, forking, log) : undefined;
    const launcher = reloader?.launcher ?? forking ?? spawner;
    const master = new Master({ config, load, output, listeners, upgrades, launcher, reloader, forking });
    // A crash skips the finally below: what it does must still happen (workers, listeners, pid file).
    forgetCrash = onCrash(() => {
      master.killWorkers();
      forking?.removeFiles();
      for (const listener of listeners) listener.close({ keepFile: upgrades?.socketsShared ?? false });
      upgrades?.releasePidFile();
    });
    return await master.run();
  } finally {
    forgetCrash();
    // A unix socket file still served by the other master of an upgrade stays.
    for (const listener of listeners) listener.close({ keepFile: upgrades?.socketsShared ?? false });
    upgrades?.releasePidFile();
  }
}
