import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { CONTROL_LINE_LIMIT, LineSplitter, type LineSplitterOptions, PARTIAL_LINE_DELAY_MS, RECORD_LINE_LIMIT, TEXT_LINE_LIMIT } from './line-splitter.js';
import { encodeMasterMessage, parseWorkerMessage, type MasterMessage } from './protocol.js';
import { spawnFailure, WorkerRecord, type StopMode, type StopReason, type Worker, type WorkerExit, type WorkerSpawnSpec, type WorkerStream } from './worker.js';

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

/** Counts every worker spawned, as gunicorn's worker.age does (the config file's hooks read it). */
let spawnedWorkers = 0;
const QUICK_STOP_KILL_MS = 2_000;


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

  /** One line of the control channel: a message of src/worker/protocol.ts's WORKER_MESSAGES, else ignored. */
  private onControl(line: string): void {
    const message = parseWorkerMessage(line);
    if (message === undefined) return;
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
      default: {
        // Every message of the table is handled above: a new one fails to compile here until it is.
        const unhandled: never = message;
        return unhandled;
      }
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
  send(message: MasterMessage): void {
    const channel = this.child?.stdio?.[CONTROL_FD] as Writable | null | undefined;
    if (this.state === 'exited' || !channel) return;
    channel.write(encodeMasterMessage(message));
  }

  abort(reason: StopReason, graceMs: number): void {
    if (this.state === 'exited') return;
    this.stopReason ??= reason;
    this.state = 'draining';
    this.signal('SIGABRT');
    this.killAfter(graceMs);
  }
}
