import { EventEmitter } from 'node:events';
import type { BootErrorFields } from './protocol.js';
import type { ResourceUsage } from './resources.js';

export type WorkerState = 'booting' | 'ready' | 'draining' | 'exited';

/** Why corral stopped a worker; a worker that exits on its own has none. */
export type StopReason =
  | 'shutdown'
  | 'restart'
  | 'scale-down'
  | 'timeout'
  | 'boot-timeout'
  | 'max-requests'
  | 'max-memory'
  | 'max-lifetime'
  | 'reload'
  | 'halt';

/** Why a worker exists: decides what its failure to boot means. */
export type WorkerRole = 'initial' | 'respawn' | 'replacement' | 'scale-up';

export type StopMode = 'graceful' | 'quick' | 'kill';

/** Why a worker failed to boot: what its `boot_error` message said, or the master's own `spawn` failure. */
export type BootError = BootErrorFields;

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerEvents {
  /** The pid is known now: sent by a worker whose process another process starts (a fork server). */
  started: [];
  ready: [];
  heartbeat: [];
  retiring: [reason: string];
  exit: [exit: WorkerExit];
  standby: [paths: Record<string, string>, imported: string[]];
  modules: [modules: Record<string, string>];
}

/** One worker process as the arbiter sees it; the arbiter's tests use a fake. */
export interface Worker extends EventEmitter<WorkerEvents> {
  readonly slot: number;
  readonly generation: number;
  readonly role: WorkerRole;
  readonly pid: number | undefined;
  readonly state: WorkerState;
  readonly startedAt: number;
  readonly readyAt: number | undefined;
  readonly lastHeartbeatAt: number;
  readonly requests: number;
  readonly connections: number;
  readonly stopReason: StopReason | undefined;
  readonly bootError: BootError | undefined;
  /** The latest CPU and memory sample of the worker's process tree. */
  usage: ResourceUsage | undefined;
  stop(reason: StopReason, mode: StopMode): void;
  /** Asks a hung worker for its stack (SIGABRT), then kills it after `graceMs`. */
  abort(reason: StopReason, graceMs: number): void;
}

export interface WorkerSpawnSpec {
  slot: number;
  generation: number;
  role: WorkerRole;
}

/**
 * Where a line of a worker's output came from: the app's stdout or stderr (text, whatever it is), or the
 * runtime's record channel (pino-compatible JSON lines, which the app's output cannot reach by accident).
 */
export type WorkerStream = 'stdout' | 'stderr' | 'records';

/** What each spawn errno means for the operator: the master's resources, not the app. */
const SPAWN_ERROR_HINTS: Record<string, string> = {
  EMFILE: "the master has reached its limit of open files (ulimit -n, systemd's LimitNOFILE)",
  ENFILE: 'the system-wide limit of open files is reached',
  EAGAIN: "the limit of processes is reached (ulimit -u, systemd's TasksMax, the cgroup's pids.max)",
  ENOMEM: 'out of memory',
  ENOENT: 'the Python executable is gone',
  EACCES: 'the Python executable is not executable for this user',
};

/** A spawn that failed, as a boot error: the arbiter backs off and retries, as for any failed boot. */
export function spawnFailure(error: unknown): BootError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const hint = code === undefined ? undefined : SPAWN_ERROR_HINTS[code];
  const text = error instanceof Error ? error.message : String(error);
  return { kind: 'spawn', message: `cannot start the worker process: ${text}${hint ? `: ${hint}` : ''}`, traceback: '' };
}

/** The state every worker keeps, whatever runs it: the arbiter reads it; the arbiter's tests share it. */
export abstract class WorkerRecord extends EventEmitter<WorkerEvents> implements Worker {
  slot: number;
  generation: number;
  role: WorkerRole;
  startedAt = Date.now();
  state: WorkerState = 'booting';
  readyAt: number | undefined;
  lastHeartbeatAt = Date.now();
  requests = 0;
  connections = 0;
  stopReason: StopReason | undefined;
  bootError: BootError | undefined;
  usage: ResourceUsage | undefined;
  abstract readonly pid: number | undefined;

  constructor(spec: WorkerSpawnSpec) {
    super();
    this.slot = spec.slot;
    this.generation = spec.generation;
    this.role = spec.role;
  }

  /** booting → ready, once. */
  protected markReady(): boolean {
    if (this.state !== 'booting') return false;
    this.state = 'ready';
    this.readyAt = Date.now();
    this.lastHeartbeatAt = this.readyAt;
    this.emit('ready');
    return true;
  }

  abstract stop(reason: StopReason, mode: StopMode): void;
  abstract abort(reason: StopReason, graceMs: number): void;
}

/**
 * A worker whose process could not be started: it reports its spawn failure as an exit on the next
 * turn of the loop (its spawner attaches listeners first), so the arbiter treats it as a failed boot.
 */
export class UnstartedWorker extends WorkerRecord {
  readonly pid = undefined;

  constructor(spec: WorkerSpawnSpec, error: unknown) {
    super(spec);
    this.bootError = spawnFailure(error);
    setImmediate(() => {
      this.state = 'exited';
      this.emit('exit', { code: null, signal: null });
    });
  }

  stop(reason: StopReason): void {
    this.stopReason ??= reason;
  }

  abort(reason: StopReason): void {
    this.stopReason ??= reason;
  }
}
