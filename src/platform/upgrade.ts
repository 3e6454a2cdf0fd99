import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { Arbiter } from '../supervisor/arbiter.js';
import type { BindSpec } from '../config/bind.js';
import { UsageError } from '../exit-codes.js';
import { INIT_NAME } from './pid-one.js';
import { replacePidFile, writePidFile } from './pidfile.js';
import type { InheritedListener, Listener } from './sockets.js';

/**
 * USR2, the zero-downtime upgrade of the master itself (gunicorn's and nginx's scheme): the running
 * master starts a new corral from the same command line with the listen sockets inherited; when the
 * new master's workers are all ready it says so on a pipe, and the old master drains and exits. The
 * new master notices the old one is gone by EOF on that pipe and takes over the pid file.
 *
 * Between the two masters, over the environment:
 *   CORRAL_UPGRADE_FROM  the old master's pid
 *   CORRAL_UPGRADE_FD    the new master's end of the pipe (the new master writes "ready")
 *   CORRAL_LISTENERS     JSON [{fd, spec}]: which inherited descriptor is which address (like GUNICORN_FD)
 */
export const UPGRADE_FROM = 'CORRAL_UPGRADE_FROM';
export const UPGRADE_FD = 'CORRAL_UPGRADE_FD';
export const INHERITED_LISTENERS = 'CORRAL_LISTENERS';

/** Descriptor of the pipe in the new master; its listen sockets follow it. */
const CHANNEL_FD = 3;

export interface UpgradeInheritance {
  previousPid: number;
  channelFd: number;
  listeners: InheritedListener[];
}

function isBindSpec(value: unknown): value is BindSpec {
  if (typeof value !== 'object' || value === null) return false;
  const spec = value as Record<string, unknown>;
  return (
    (spec.kind === 'tcp' && typeof spec.host === 'string' && typeof spec.port === 'number') ||
    (spec.kind === 'unix' && typeof spec.path === 'string') ||
    (spec.kind === 'fd' && typeof spec.fd === 'number')
  );
}

/** What a previous master handed down, or undefined when this corral was started normally. */
export function inheritanceFromEnvironment(env: NodeJS.ProcessEnv): UpgradeInheritance | undefined {
  const from = env[UPGRADE_FROM];
  if (from === undefined) return undefined;
  const previousPid = Number(from);
  const channelFd = Number(env[UPGRADE_FD]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(env[INHERITED_LISTENERS] ?? '');
  } catch {
    parsed = undefined;
  }
  const valid =
    Number.isInteger(previousPid) &&
    Number.isInteger(channelFd) &&
    Array.isArray(parsed) &&
    parsed.every((entry: { fd?: unknown; spec?: unknown }) => Number.isInteger(entry?.fd) && isBindSpec(entry?.spec));
  if (!valid) {
    throw new UsageError(`${UPGRADE_FROM} is set but ${UPGRADE_FD}/${INHERITED_LISTENERS} are not what corral writes; unset them`);
  }
  return { previousPid, channelFd, listeners: parsed as InheritedListener[] };
}

/** The new master's environment: the hand-over variables, none of systemd's socket ones. */
export function newMasterEnvironment(env: NodeJS.ProcessEnv, listeners: readonly Listener[], pid = process.pid): NodeJS.ProcessEnv {
  const next: NodeJS.ProcessEnv = { ...env };
  // The sockets come by CORRAL_LISTENERS now; LISTEN_PID would name the old master anyway.
  for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'WATCHDOG_PID']) delete next[name];
  next[UPGRADE_FROM] = String(pid);
  next[UPGRADE_FD] = String(CHANNEL_FD);
  next[INHERITED_LISTENERS] = JSON.stringify(listeners.map((listener, index) => ({ fd: CHANNEL_FD + 1 + index, spec: listener.spec })));
  return next;
}

/** The pid file a master writes: `<pid>.2` while it is the new master of an unfinished upgrade. */
export function pidFilePath(pidFile: string, upgrading: boolean): string {
  return upgrading ? `${pidFile}.2` : pidFile;
}

export type UpgradeOutcome = { ok: true; pid: number } | { ok: false; pid: number | undefined; code: number | null; signal: NodeJS.Signals | null; error?: string };

/**
 * Old master side: starts the new master with the sockets and waits until it reports ready, or exits.
 * The pipe stays open for this process's whole life: its EOF tells the new master it has taken over.
 */
export function startNewMaster(listeners: readonly Listener[], cwd: string): { pid: number | undefined; outcome: Promise<UpgradeOutcome> } {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    cwd,
    // Same stdout and stderr: the new master's log continues where the old one's goes.
    stdio: ['ignore', 'inherit', 'inherit', 'pipe', ...listeners.map((listener) => listener.fd)],
    env: newMasterEnvironment(process.env, listeners),
  });
  // At EMFILE Node sets up no pipes (child.stdio is undefined) and reports the errno with 'error'.
  const channel = child.stdio?.[CHANNEL_FD] as net.Socket | null | undefined;
  const outcome = new Promise<UpgradeOutcome>((resolve) => {
    if (channel) {
      channel.on('error', () => undefined);
      createInterface({ input: channel }).on('line', (line) => {
        if (line.trim() === 'ready') resolve({ ok: true, pid: child.pid! });
      });
    }
    child.once('error', (error) => resolve({ ok: false, pid: child.pid, code: null, signal: null, error: error.message }));
    child.once('exit', (code, signal) => resolve({ ok: false, pid: child.pid, code, signal }));
  });
  // Once handed over, the old master must not wait for the new one (it outlives it).
  child.unref();
  channel?.unref?.();
  return { pid: child.pid, outcome };
}

/** New master side: the pipe to the previous master. */
export class UpgradeChannel {
  private readonly socket: net.Socket;

  constructor(fd: number) {
    this.socket = new net.Socket({ fd, readable: true, writable: true });
    this.socket.on('error', () => undefined);
    // Nothing is read but EOF; keep the data flowing so EOF is seen.
    this.socket.resume();
  }

  /** Tells the previous master every worker here is ready. */
  reportReady(): void {
    if (this.socket.writable) this.socket.write('ready\n');
  }

  /** Called once the previous master has exited (or died): this master now owns the pid file. */
  onPreviousGone(callback: () => void): void {
    let called = false;
    const once = () => {
      if (called) return;
      called = true;
      callback();
    };
    this.socket.once('end', once);
    this.socket.once('close', once);
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * The new master takes the pid file over: `<pid>` is replaced by a new file with this pid in one
 * atomic rename (there is always a pid file), then `<pid>.2` goes. Renaming `<pid>.2` itself would
 * move whatever is at that path now, a symlink included. No liveness check: the pid there is the
 * previous master's, which has exited (perhaps not yet reaped). Returns the new pid file's remover.
 */
export function promotePidFile(pidFile: string, removeSecond: () => void, pid = process.pid): () => void {
  const remove = replacePidFile(pidFile, pid);
  removeSecond();
  return remove;
}

/** Container init programs that exit when their child does: an upgrade under them ends the container. */
const CONTAINER_INITS = new Set(['tini', 'docker-init', 'dumb-init', 'catatonit', INIT_NAME]);

/** The name of the parent process when it is such an init, else undefined. */
export function containerInitParent(ppid = process.ppid): string | undefined {
  try {
    const name = fs.readFileSync(`/proc/${ppid}/comm`, 'utf8').trim();
    return CONTAINER_INITS.has(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

export interface UpgradeState {
  pid: number;
  containerInit: string | undefined;
  awaitingPromotion: boolean;
  upgrading: boolean;
  stopping: boolean;
}

/** Why a USR2 cannot be carried out now, or undefined when it can. */
export function upgradeRefusal(state: UpgradeState): string | undefined {
  if (state.pid === 1) return 'corral is PID 1: the old master exiting would end the container; roll out a new container instead';
  if (state.containerInit) {
    return `corral runs under ${state.containerInit}, which exits with it: the old master exiting would end the container; roll out a new container instead`;
  }
  if (state.awaitingPromotion) return 'this master is the new one of an upgrade still in progress; wait until the previous master has exited';
  if (state.upgrading) return 'an upgrade is already in progress';
  if (state.stopping) return 'corral is stopping';
  return undefined;
}

export interface UpgradeHooks {
  /** The new master is ready, just before it tells the old one (systemd: MAINPID=). */
  onReady?(): void;
  /** This master has handed over (systemd: say nothing more). */
  onHandOver?(): void;
  /** The previous master has exited: what it held alone (metrics port, control socket) is free. */
  onPromoted?(): void;
}

/**
 * One master's part in USR2 upgrades, both sides: as the new master of an upgrade (when `inheritance`
 * is given) and as the master that starts the next one. Owns the pid file, because it moves.
 */
export class MasterUpgrades {
  /** Set once a new master has taken over: keep the pid file and the unix socket files. */
  handedOver = false;
  /** Set in a new master until the previous one has exited. */
  awaitingPromotion: boolean;
  private upgrading = false;
  private removePidFile: () => void = () => undefined;
  private attached: { arbiter: Arbiter; listeners: readonly Listener[]; hooks: UpgradeHooks } | undefined;

  constructor(
    private readonly inheritance: UpgradeInheritance | undefined,
    private readonly pidFile: string | undefined,
    private readonly cwd: string,
    private readonly log: Logger,
  ) {
    this.awaitingPromotion = inheritance !== undefined;
  }

  /** Unix socket files are shared with another master right now: closing must not remove them. */
  get socketsShared(): boolean {
    return this.handedOver || this.awaitingPromotion;
  }

  /** `<pid>` normally; `<pid>.2` in a new master until the previous one has gone. */
  writePidFile(): void {
    if (!this.pidFile) return;
    this.removePidFile = writePidFile(pidFilePath(this.pidFile, this.inheritance !== undefined), { warn: (message) => this.log.warn(message) });
  }

  /** At exit: the pid file goes, unless it now belongs to the new master. */
  releasePidFile(): void {
    if (!this.handedOver) this.removePidFile();
  }

  /**
   * Wires the arbiter: reports readiness to a previous master, and gives upgrade() what it needs.
   * USR2 itself is taken by the master's signal table (src/master.ts), which calls upgrade().
   */
  attach(arbiter: Arbiter, listeners: readonly Listener[], hooks: UpgradeHooks = {}): void {
    this.attached = { arbiter, listeners, hooks };
    if (this.inheritance) this.followPreviousMaster(arbiter, this.inheritance, hooks);
  }

  private followPreviousMaster(arbiter: Arbiter, inheritance: UpgradeInheritance, hooks: UpgradeHooks): void {
    const channel = new UpgradeChannel(inheritance.channelFd);
    arbiter.once('all-ready', () => {
      hooks.onReady?.();
      channel.reportReady();
    });
    channel.onPreviousGone(() => {
      this.awaitingPromotion = false;
      if (this.pidFile) {
        try {
          this.removePidFile = promotePidFile(this.pidFile, this.removePidFile);
        } catch (error) {
          this.log.error({ err: error, pidFile: this.pidFile }, 'upgrade: could not move the pid file over');
        }
      }
      this.log.info({ previousMaster: inheritance.previousPid, pidFile: this.pidFile }, 'upgrade: the previous master has exited; this master is in charge');
      hooks.onPromoted?.();
    });
  }

  /** USR2: starts the next master with the listen sockets; once its workers are ready, this master drains and exits. */
  upgrade(): void {
    if (!this.attached) {
      this.log.warn({ signal: 'SIGUSR2' }, 'upgrade refused: corral is still starting');
      return;
    }
    const { arbiter, listeners, hooks } = this.attached;
    const refusal = upgradeRefusal({
      pid: process.pid,
      containerInit: containerInitParent(),
      awaitingPromotion: this.awaitingPromotion,
      upgrading: this.upgrading,
      stopping: arbiter.stopping,
    });
    if (refusal) {
      this.log.warn({ signal: 'SIGUSR2' }, `upgrade refused: ${refusal}`);
      return;
    }
    this.upgrading = true;
    let next: ReturnType<typeof startNewMaster>;
    try {
      next = startNewMaster(listeners, this.cwd);
    } catch (error) {
      // spawn throws for some errnos (ENOMEM, …): the upgrade fails, this master serves on.
      next = { pid: undefined, outcome: Promise.resolve({ ok: false, pid: undefined, code: null, signal: null, error: (error as Error).message }) };
    }
    this.log.info({ newMaster: next.pid }, 'upgrade: started a new master with the listen sockets; waiting for its workers');
    void next.outcome.then((outcome) => {
      if (!outcome.ok) {
        this.upgrading = false;
        this.log.error(
          { newMaster: outcome.pid, code: outcome.code, signal: outcome.signal, error: outcome.error },
          'upgrade failed: the new master exited before its workers were ready; this master keeps serving',
        );
        return;
      }
      this.handedOver = true;
      hooks.onHandOver?.();
      this.log.info({ newMaster: outcome.pid }, 'upgrade: the new master is ready; draining this master and exiting');
      // No --shutdown-delay: the new master already serves these sockets.
      arbiter.stop('graceful', { delay: false });
    });
  }
}
