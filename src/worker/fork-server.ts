import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { controlChannel, spawnWithChannels, type ChannelSpawnOptions } from './channels.js';
import type { ForkServerOutput } from './output.js';
import { encodeForkServerRequest, parseForkServerMessage, type ForkServerRequest } from './protocol.js';
import type { BootError, WorkerExit } from './worker.js';

export interface ForkServerOptions extends ChannelSpawnOptions {
  generation: number;
  /** The generation's worker settings: what to preload (the app, uvicorn's protocols) comes from them. */
  settings: Record<string, unknown>;
  onOutput: ForkServerOutput;
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
  /** A refresh for a new generation is done: what its code added to the preload. */
  refreshed: [info: ForkServerReady];
  /** A refresh found preloaded files changed on disk (how many, the first few). */
  stale: [changed: number, files: string[]];
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

/**
 * One fork server (`corral_worker.py --fork-server`, src/python/corral_runtime/fork_server.py): started
 * for a code generation with the listen sockets at the workers' fd numbers, it preloads, then forks
 * workers on request and reports each child's pid and exit. It is the parent of those workers, so
 * signals for them go through it: it never signals a pid it has reaped.
 */
export class ForkServer extends EventEmitter<ForkServerEvents> {
  /** The newest generation it serves (a refresh makes it serve a new one too). */
  generation: number;
  readonly startedAt = Date.now();
  readyAt: number | undefined;
  state: ForkServerState = 'starting';
  retiring = false;
  info: ForkServerReady | undefined;
  private readonly child: ChildProcess | undefined;

  constructor(options: ForkServerOptions) {
    super();
    this.generation = options.generation;
    const settings = { ...options.settings, generation: options.generation };
    this.child = spawnWithChannels('fork server', { ...options, args: ['--fork-server'], settings }, {
      onSpawnError: (error) => this.fail(error),
      onExit: (exit) => this.onExit(exit),
      onOutput: (stream, line, dropped) => options.onOutput(this, stream, line, dropped),
      onControl: (line) => this.onMessage(line),
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
      case 'refreshed': {
        const { type: _type, ...info } = message;
        this.info = info;
        this.emit('refreshed', info);
        return;
      }
      case 'stale':
        this.emit('stale', message.changed, message.files);
        return;
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
    const channel = controlChannel(this.child);
    if (this.state === 'exited' || !channel || channel.destroyed) return false;
    channel.write(encodeForkServerRequest(request));
    return true;
  }

  /** Asks for one worker; its channels connect back with `token`. */
  fork(token: string, settings: Record<string, unknown>): boolean {
    return this.send({ type: 'fork', token, settings });
  }

  /** Serves a new code generation too: it checks its preloaded files and imports what the new code adds. */
  refresh(settings: Record<string, unknown>): boolean {
    return this.send({ type: 'refresh', settings });
  }

  /** Reload mode: the modules to preload on top of its own choice (it reads them before it is ready). */
  preload(modules: readonly string[]): boolean {
    return this.send({ type: 'preload', modules });
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
