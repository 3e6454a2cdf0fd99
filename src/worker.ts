import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { CONTROL_LINE_LIMIT, LineSplitter, type LineSplitterOptions, PARTIAL_LINE_DELAY_MS, RECORD_LINE_LIMIT, TEXT_LINE_LIMIT } from './line-splitter.js';
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

export interface BootError {
  /** `spawn`: the master could not start the process at all (EMFILE, EAGAIN, ENOMEM, …). */
  kind: 'app-load' | 'startup' | 'spawn';
  message: string;
  traceback: string;
  /** Where the error is in the app's code (a SyntaxError's location, else the deepest frame), when known. */
  file?: string;
  line?: number;
  /** The exception alone, e.g. `SyntaxError: invalid syntax`, when there is one. */
  exception?: string;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the worker reports on its control channel, one JSON object a line. */
export type ControlMessage =
  | { type: 'loaded'; seconds: number }
  | { type: 'ready'; pid: number }
  | { type: 'heartbeat'; requests: number; connections: number }
  | { type: 'retiring'; reason: string; requests?: number }
  | { type: 'draining'; requests: number }
  | ({ type: 'boot_error' } & BootError)
  /** Reload mode: a warm standby has imported its modules and waits for "go"; paths are sys.path mtimes. */
  | { type: 'standby'; paths: Record<string, string> }
  /** Reload mode: the worker's sys.modules (name to file), sent once after ready. */
  | { type: 'modules'; modules: Record<string, string> };

export interface WorkerEvents {
  ready: [];
  heartbeat: [];
  retiring: [reason: string];
  exit: [exit: WorkerExit];
  standby: [paths: Record<string, string>];
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

export type SpawnWorker = (spec: WorkerSpawnSpec) => Worker;

/**
 * Where a line of a worker's output came from: the app's stdout or stderr (text, whatever it is), or the
 * runtime's record channel (pino-compatible JSON lines, which the app's output cannot reach by accident).
 */
export type WorkerStream = 'stdout' | 'stderr' | 'records';

export interface ProcessWorkerOptions {
  python: string;
  entry: string;
  listenerFds: readonly number[];
  env: NodeJS.ProcessEnv;
  /** Settings for the worker entry, merged with slot and descriptors. */
  settings: Record<string, unknown>;
  gracefulTimeoutMs: number;
  /** One line, at most a line limit long; `droppedBytes` is what it lost past the limit. */
  onOutput(worker: Worker, stream: WorkerStream, line: string, droppedBytes: number): void;
  /** -u/-g: the worker's user and group (the master stays as it is, to hold privileged ports). */
  uid?: number;
  gid?: number;
}

const CONTROL_FD = 3;
/** The runtime's log records: a pipe of their own, so nothing the app prints can pass for one. */
const RECORD_FD = 4;

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
/** Counts every worker spawned, as gunicorn's worker.age does (the config file's hooks read it). */
let spawnedWorkers = 0;
const QUICK_STOP_KILL_MS = 2_000;

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

/** A real worker: the Python worker entry in a child process. */
export class ProcessWorker extends WorkerRecord {
  /** Undefined when spawn threw: nothing was started. */
  private readonly child: ChildProcess | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly gracefulTimeoutMs: number;

  constructor(spec: WorkerSpawnSpec, options: ProcessWorkerOptions) {
    super(spec);
    this.gracefulTimeoutMs = options.gracefulTimeoutMs;
    const listenFds = options.listenerFds.map((_fd, index) => RECORD_FD + 1 + index);
    const settings = {
      ...options.settings,
      slot: spec.slot,
      control_fd: CONTROL_FD,
      record_fd: RECORD_FD,
      listen_fds: listenFds,
      master_pid: process.pid,
      age: ++spawnedWorkers,
    };
    let child: ChildProcess;
    try {
      child = spawn(options.python, ['-u', options.entry], {
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', ...options.listenerFds],
        env: { ...options.env, PYTHONUNBUFFERED: '1', CORRAL_WORKER_CONFIG: JSON.stringify(settings) },
        ...(options.uid !== undefined ? { uid: options.uid } : {}),
        ...(options.gid !== undefined ? { gid: options.gid } : {}),
      });
    } catch (error) {
      // Node throws for some errnos (ENOMEM, EPERM, …) instead of emitting 'error'.
      this.failSpawn(error);
      return;
    }
    this.child = child;
    // Once the process has started, 'error' only reports a failed kill: its exit event follows.
    child.on('error', (error) => {
      if (child.pid === undefined) this.failSpawn(error);
    });
    child.once('exit', (code, signal) => this.onExit({ code, signal }));
    const control = child.stdio?.[CONTROL_FD] as Readable | null | undefined;
    const records = child.stdio?.[RECORD_FD] as Readable | null | undefined;
    if (!child.stdout || !child.stderr || !control || !records) {
      // At EMFILE or ENFILE Node sets up no pipes and reports the errno with 'error' on the next
      // tick: that message wins; this one is the fallback should no 'error' come.
      if (child.pid !== undefined) child.kill('SIGKILL');
      setImmediate(() => this.failSpawn(new Error(`spawn ${options.python}: the pipes to the worker could not be set up`)));
      return;
    }
    // Text may stop mid-line (a prompt, a progress bar): what has arrived is logged after a short delay.
    const text = { limit: TEXT_LINE_LIMIT, partialDelayMs: PARTIAL_LINE_DELAY_MS };
    this.readLines(child.stdout, { ...text, onLine: (line, dropped) => options.onOutput(this, 'stdout', line, dropped) });
    this.readLines(child.stderr, { ...text, onLine: (line, dropped) => options.onOutput(this, 'stderr', line, dropped) });
    this.readLines(records, {
      limit: RECORD_LINE_LIMIT,
      onLine: (line, dropped) => options.onOutput(this, 'records', line, dropped),
    });
    // A truncated message cannot be parsed: it is dropped as any other unreadable line.
    this.readLines(control, {
      limit: CONTROL_LINE_LIMIT,
      onLine: (line, dropped) => {
        if (dropped === 0) this.onControl(line);
      },
    });
  }

  /** The process could not be started: reported as an exit before ready, on a later turn of the loop. */
  private failSpawn(error: unknown): void {
    if (this.state === 'exited' || this.bootError !== undefined) return;
    this.bootError = spawnFailure(error);
    setImmediate(() => this.onExit({ code: null, signal: null }));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Reads one of the worker's pipes line by line, with bounded memory whatever the worker writes. Its
   * end is not the worker's: a subprocess of the app may hold stdout long after; the exit event decides.
   */
  private readLines(stream: Readable, options: LineSplitterOptions): void {
    const lines = new LineSplitter(options);
    // A worker that dies with unread data resets the channel (ECONNRESET): its exit event reports it.
    stream.on('error', () => undefined);
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => lines.push(text));
    stream.on('end', () => lines.end());
  }

  private onControl(line: string): void {
    let message: ControlMessage;
    try {
      message = JSON.parse(line) as ControlMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case 'ready':
        this.markReady();
        return;
      case 'heartbeat':
        this.lastHeartbeatAt = Date.now();
        this.requests = message.requests;
        this.connections = message.connections;
        this.emit('heartbeat');
        return;
      case 'retiring':
        if (message.requests !== undefined) this.requests = message.requests;
        this.emit('retiring', message.reason);
        return;
      case 'boot_error':
        this.bootError = { kind: message.kind, message: message.message, traceback: message.traceback };
        if (message.file !== undefined) this.bootError.file = message.file;
        if (message.line !== undefined) this.bootError.line = message.line;
        if (message.exception !== undefined) this.bootError.exception = message.exception;
        return;
      case 'standby':
        this.emit('standby', message.paths);
        return;
      case 'modules':
        this.emit('modules', message.modules);
        return;
      default:
        return;
    }
  }

  private onExit(exit: WorkerExit): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    clearTimeout(this.killTimer);
    this.emit('exit', exit);
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.state === 'exited' || this.child?.pid === undefined) return;
    try {
      this.child.kill(signal);
    } catch {
      // Already gone: the exit event follows.
    }
  }

  private killAfter(ms: number): void {
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.signal('SIGKILL'), ms);
  }

  stop(reason: StopReason, mode: StopMode): void {
    if (this.state === 'exited') return;
    const escalating = this.stopReason !== undefined;
    this.stopReason ??= reason;
    this.state = 'draining';
    if (mode === 'kill') {
      this.signal('SIGKILL');
    } else if (mode === 'quick') {
      this.signal('SIGINT');
      this.killAfter(QUICK_STOP_KILL_MS);
    } else if (!escalating) {
      this.signal('SIGTERM');
      // The worker bounds its own drain by the graceful timeout; this is the backstop.
      this.killAfter(this.gracefulTimeoutMs);
    }
  }

  /**
   * Hands a warm standby (started with the `standby` setting) its slot: it imports the app and boots
   * from here, so its boot deadline starts now.
   */
  activate(spec: WorkerSpawnSpec): void {
    this.slot = spec.slot;
    this.generation = spec.generation;
    this.role = spec.role;
    this.startedAt = Date.now();
    this.lastHeartbeatAt = this.startedAt;
    this.send({ type: 'go', slot: spec.slot, generation: spec.generation });
  }

  /** Writes one message to the worker on the control channel (only a standby reads them). */
  send(message: Record<string, unknown> & { type: string }): void {
    const channel = this.child?.stdio?.[CONTROL_FD] as Writable | null | undefined;
    if (this.state === 'exited' || !channel) return;
    channel.write(`${JSON.stringify(message)}\n`);
  }

  abort(reason: StopReason, graceMs: number): void {
    if (this.state === 'exited') return;
    this.stopReason ??= reason;
    this.state = 'draining';
    this.signal('SIGABRT');
    this.killAfter(graceMs);
  }
}
