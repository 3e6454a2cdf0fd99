import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Arbiter } from '../supervisor/arbiter.js';
import type { Worker } from '../worker/worker.js';

/** The sender helper shipped inside the package (Node cannot send unix datagrams). */
export const NOTIFY_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'python', 'corral_notify.py');

/** How often to send WATCHDOG=1, when systemd asked for it and meant this process: half the timeout. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/** Whether the service answers: at least one ready worker whose heartbeat is recent. */
export function workersHealthy(workers: readonly Pick<Worker, 'state' | 'lastHeartbeatAt'>[], staleMs: number, now = Date.now()): boolean {
  return workers.some((worker) => worker.state === 'ready' && now - worker.lastHeartbeatAt <= staleMs);
}

/** The STATUS= text systemctl status shows. */
export function statusText(ready: number, wanted: number): string {
  return `${ready} of ${wanted} workers ready`;
}

/** Sends notifications through the Python helper; one long-lived process, fed over a pipe. */
export class SystemdNotifier {
  private readonly helper: ChildProcess;
  private closed = false;

  constructor(python: string, socketPath: string, log: Logger) {
    this.helper = spawn(python, ['-u', NOTIFY_ENTRY], {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: socketPath, CORRAL_MASTER_PID: String(process.pid), PYTHONUNBUFFERED: '1' },
    });
    this.helper.stdin!.on('error', () => undefined);
    this.helper.once('error', (error) => log.warn({ err: error }, 'sd_notify helper could not start; systemd will not hear from corral'));
    createInterface({ input: this.helper.stderr! }).on('line', (line) => log.warn({ notifySocket: socketPath }, line));
    log.debug({ helperPid: this.helper.pid, notifySocket: socketPath }, 'sd_notify helper started');
  }

  get helperPid(): number | undefined {
    return this.helper.pid;
  }

  send(message: string): void {
    if (this.closed || !this.helper.stdin?.writable) return;
    this.helper.stdin.write(`${JSON.stringify(message)}\n`);
  }

  /** Lets the helper send what it has and exit (EOF). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.helper.stdin?.end();
  }
}

export interface NotifyOptions {
  /** WATCHDOG=1 period, when systemd's watchdog is on. */
  watchdogMs?: number;
  /** A heartbeat older than this means the worker is not healthy. */
  staleMs: number;
  log: Logger;
}

/**
 * Tells systemd what the arbiter does: READY=1 once every worker is ready (not before, unlike
 * gunicorn), RELOADING=1 … READY=1 around a rolling restart, STOPPING=1, STATUS= lines, and
 * WATCHDOG=1 only while some worker is ready and beating — so a master whose workers all hang is
 * restarted by systemd. Returns the detacher, and `handOver` for a USR2 upgrade, after which the old
 * master says nothing more (the new one is systemd's main process by then).
 */
export function attachNotifier(arbiter: Arbiter, notifier: SystemdNotifier, options: NotifyOptions): { detach(): void; handOver(): void } {
  let announcedReady = false;
  let reloading = false;
  let silent = false;
  let healthy = true;
  const status = () => {
    const ready = arbiter.liveWorkers().filter((worker) => worker.state === 'ready' && worker.stopReason === undefined).length;
    return `STATUS=${statusText(Math.min(ready, arbiter.wantedWorkers()), arbiter.wantedWorkers())}`;
  };
  const send = (message: string) => {
    if (!silent) notifier.send(message);
  };
  const onAllReady = () => {
    if (reloading) return;
    send(announcedReady ? status() : `READY=1\n${status()}`);
    announcedReady = true;
  };
  const onRestartBegin = (reason: string) => {
    reloading = true;
    send(`RELOADING=1\nSTATUS=rolling restart (${reason})`);
  };
  const onRestartEnd = (_reason: string, ok: boolean) => {
    reloading = false;
    send(`READY=1\n${status()}${ok ? '' : '; the last rolling restart failed, the previous workers serve'}`);
    announcedReady = true;
  };
  const onStopping = () => send('STOPPING=1\nSTATUS=stopping');
  const onWorkerChange = () => {
    if (announcedReady && !reloading && !arbiter.stopping) send(status());
  };
  arbiter.on('all-ready', onAllReady);
  arbiter.on('restart-begin', onRestartBegin);
  arbiter.on('restart-end', onRestartEnd);
  arbiter.on('stopping', onStopping);
  arbiter.on('worker-exit', onWorkerChange);

  let timer: NodeJS.Timeout | undefined;
  if (options.watchdogMs !== undefined) {
    timer = setInterval(() => {
      if (!announcedReady || arbiter.stopping) return;
      const now = workersHealthy(arbiter.liveWorkers(), options.staleMs);
      if (now) {
        if (!healthy) send(status());
        send('WATCHDOG=1');
      } else if (healthy) {
        options.log.warn({ staleMs: options.staleMs }, 'no worker is ready and beating; withholding the systemd watchdog ping');
        send('STATUS=unhealthy: no worker is ready and beating; watchdog pings withheld');
      }
      healthy = now;
    }, options.watchdogMs);
  }
  return {
    detach: () => {
      clearInterval(timer);
      arbiter.off('all-ready', onAllReady);
      arbiter.off('restart-begin', onRestartBegin);
      arbiter.off('restart-end', onRestartEnd);
      arbiter.off('stopping', onStopping);
      arbiter.off('worker-exit', onWorkerChange);
    },
    handOver: () => {
      silent = true;
      clearInterval(timer);
    },
  };
}

export interface SystemdNotifications {
  send(message: string): void;
  /** After a USR2 hand-over: the new master speaks to systemd from now on. */
  handOver(): void;
  close(): void;
}

/** Starts talking to systemd when NOTIFY_SOCKET is set; undefined otherwise. */
export function startSystemdNotifications(
  arbiter: Arbiter,
  options: { python: string; env: NodeJS.ProcessEnv; heartbeatSeconds: number; log: Logger },
): SystemdNotifications | undefined {
  const socketPath = options.env.NOTIFY_SOCKET;
  if (!socketPath) return undefined;
  const notifier = new SystemdNotifier(options.python, socketPath, options.log);
  const attached = attachNotifier(arbiter, notifier, {
    watchdogMs: watchdogIntervalMs(options.env),
    // Three missed heartbeats: one late beat on a busy machine is not a hung worker.
    staleMs: 3 * options.heartbeatSeconds * 1000,
    log: options.log,
  });
  return {
    send: (message) => notifier.send(message),
    handOver: () => attached.handOver(),
    close: () => {
      attached.detach();
      notifier.close();
    },
  };
}
