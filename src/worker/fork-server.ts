import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { CONTROL_LINE_LIMIT, LineSplitter, type LineSplitterOptions, PARTIAL_LINE_DELAY_MS, RECORD_LINE_LIMIT, TEXT_LINE_LIMIT } from './line-splitter.js';
import type { ForkServerOutput } from './output.js';
import { encodeForkServerRequest, parseForkServerMessage, type ForkServerRequest } from './protocol.js';
import type { BootError, WorkerExit } from './worker.js';

export interface ForkServerOptions {
  generation: number;
  python: string;
  entry: string;
  listenerFds: readonly number[];
  env: NodeJS.ProcessEnv;
  /** The generation's worker settings: what to preload (the app, uvicorn's protocols) comes from them. */
  settings: Record<string, unknown>;
  onOutput: ForkServerOutput;
  uid?: number;
  gid?: number;
}

/** What the fork server says once it has imported what its workers share. */
export interface ForkServerReady {
  modules: number;
  preloaded: number;
  seconds: number;
  /** Threads beside the main one: forking is unsafe, the generation's workers are spawned. */
  threads: string[];
  sockets: number;
}

export interface ForkServerEvents {
  ready: [info: ForkServerReady];
  unsafe: [token: string, threads: string[]];
  forked: [token: string, pid: number];
  'fork-failed': [token: string, error: string];
  /** A child of the fork server was reaped. */
  'child-exit': [pid: number, exit: WorkerExit];
  /** --preload: the app could not be imported (the fork server exits next). */
  'boot-error': [error: BootError];
  /** The fork server itself is gone; `error` when it could not be started. */
  exit: [exit: WorkerExit, error: unknown];
}

export type ForkServerState = 'starting' | 'ready' | 'exited';

const CONTROL_FD = 3;
const RECORD_FD = 4;

/**
 * One fork server (`corral_worker.py --fork-server`, src/python/corral_runtime/fork_server.py): started
 * for a code generation with the listen sockets at the workers' fd numbers, it preloads, then forks
 * workers on request and reports each child's pid and exit. It is the parent of those workers, so
 * signals for them go through it: it never signals a pid it has reaped.
 */
export class ForkServer extends EventEmitter<ForkServerEvents> {
  readonly generation: number;
  readonly startedAt = Date.now();
  readyAt: number | undefined;
  state: ForkServerState = 'starting';
  retiring = false;
  info: ForkServerReady | undefined;
  private readonly child: ChildProcess | undefined;

  constructor(options: ForkServerOptions) {
    super();
    this.generation = options.generation;
    const settings = {
      ...options.settings,
      generation: options.generation,
      control_fd: CONTROL_FD,
      record_fd: RECORD_FD,
      listen_fds: options.listenerFds.map((_fd, index) => RECORD_FD + 1 + index),
      master_pid: process.pid,
    };
    let child: ChildProcess;
    try {
      child = spawn(options.python, ['-u', options.entry, '--fork-server'], {
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', ...options.listenerFds],
        env: { ...options.env, PYTHONUNBUFFERED: '1', CORRAL_WORKER_CONFIG: JSON.stringify(settings) },
        ...(options.uid !== undefined ? { uid: options.uid } : {}),
        ...(options.gid !== undefined ? { gid: options.gid } : {}),
      });
    } catch (error) {
      this.fail(error);
      return;
    }
    this.child = child;
    child.on('error', (error) => {
      if (child.pid === undefined) this.fail(error);
    });
    child.once('exit', (code, signal) => this.onExit({ code, signal }));
    const control = child.stdio?.[CONTROL_FD] as Readable | null | undefined;
    const records = child.stdio?.[RECORD_FD] as Readable | null | undefined;
    if (!child.stdout || !child.stderr || !control || !records) {
      if (child.pid !== undefined) child.kill('SIGKILL');
      setImmediate(() => this.fail(new Error(`spawn ${options.python}: the pipes to the fork server could not be set up`)));
      return;
    }
    const text = { limit: TEXT_LINE_LIMIT, partialDelayMs: PARTIAL_LINE_DELAY_MS };
    const label = this;
    this.readLines(child.stdout, { ...text, onLine: (line, dropped) => options.onOutput(label, 'stdout', line, dropped) });
    this.readLines(child.stderr, { ...text, onLine: (line, dropped) => options.onOutput(label, 'stderr', line, dropped) });
    this.readLines(records, { limit: RECORD_LINE_LIMIT, onLine: (line, dropped) => options.onOutput(label, 'records', line, dropped) });
    this.readLines(control, {
      limit: CONTROL_LINE_LIMIT,
      onLine: (line, dropped) => {
        if (dropped === 0) this.onMessage(line);
      },
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.state !== 'exited';
  }

  private fail(error: unknown): void {
    if (this.state === 'exited') return;
    setImmediate(() => this.onExit({ code: null, signal: null }, error));
  }

  private readLines(stream: Readable, options: LineSplitterOptions): void {
    const lines = new LineSplitter(options);
    stream.on('error', () => undefined);
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => lines.push(text));
    stream.on('end', () => lines.end());
  }

  private onMessage(line: string): void {
    const message = parseForkServerMessage(line);
    if (message === undefined) return;
    switch (message.type) {
      case 'ready': {
        const { type: _type, ...info } = message;
        this.info = info;
        this.state = 'ready';
        this.readyAt = Date.now();
        this.emit('ready', info);
        return;
      }
      case 'unsafe':
        this.emit('unsafe', message.token, message.threads);
        return;
      case 'forked':
        this.emit('forked', message.token, message.pid);
        return;
      case 'fork_failed':
        this.emit('fork-failed', message.token, message.error);
        return;
      case 'exited':
        this.emit('child-exit', message.pid, { code: message.code, signal: message.signal });
        return;
      case 'boot_error': {
        const { type: _type, ...error } = message;
        this.emit('boot-error', error);
        return;
      }
      default: {
        // Every message of the table is handled above: a new one fails to compile here until it is.
        const unhandled: never = message;
        return unhandled;
      }
    }
  }

  private onExit(exit: WorkerExit, error?: unknown): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.emit('exit', exit, error);
  }

  private send(request: ForkServerRequest): boolean {
    const channel = this.child?.stdio?.[CONTROL_FD] as Writable | null | undefined;
    if (this.state === 'exited' || !channel || channel.destroyed) return false;
    channel.write(encodeForkServerRequest(request));
    return true;
  }

  /** Asks for one worker; its channels connect back with `token`. */
  fork(token: string, settings: Record<string, unknown>): boolean {
    return this.send({ type: 'fork', token, settings });
  }

  /** Signals a child of this fork server, unless it has been reaped already. */
  signal(pid: number, signal: NodeJS.Signals): boolean {
    return this.send({ type: 'signal', pid, signal });
  }

  /** A newer generation serves: the fork server exits once its last child is gone. */
  retire(): void {
    if (this.retiring) return;
    this.retiring = true;
    this.send({ type: 'retire' });
  }

  /** Ends the fork server at once (its workers are not its to end: they live on their own channels). */
  kill(): void {
    if (this.state === 'exited' || this.child?.pid === undefined) return;
    try {
      this.child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
