import type { ChildProcess } from 'node:child_process';
import { controlChannel, spawnWithChannels, type ChannelSpawnOptions } from './channels.js';
import { encodeMasterMessage, type MasterMessage } from './protocol.js';
import { RuntimeWorker } from './runtime-worker.js';
import { spawnFailure, type Worker, type WorkerExit, type WorkerSpawnSpec, type WorkerStream } from './worker.js';

export interface ProcessWorkerOptions extends ChannelSpawnOptions {
  gracefulTimeoutMs: number;
  /** One line, at most a line limit long; `droppedBytes` is what it lost past the limit. */
  onOutput(worker: Worker, stream: WorkerStream, line: string, droppedBytes: number): void;
}

/** Counts every worker spawned, as gunicorn's worker.age does (the config file's hooks read it). */
let spawnedWorkers = 0;


/** A real worker: the Python worker entry in a child process. */
export class ProcessWorker extends RuntimeWorker {
  /** Undefined when spawn threw: nothing was started. */
  private readonly child: ChildProcess | undefined;

  constructor(spec: WorkerSpawnSpec, options: ProcessWorkerOptions) {
    super(spec, options.gracefulTimeoutMs);
    const settings = { ...options.settings, slot: spec.slot, age: ++spawnedWorkers };
    this.child = spawnWithChannels('worker', { ...options, settings }, {
      onSpawnError: (error) => this.failSpawn(error),
      onExit: (exit) => this.onExit(exit),
      onOutput: (stream, line, dropped) => options.onOutput(this, stream, line, dropped),
      onControl: (line) => this.onControl(line),
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

  private onExit(exit: WorkerExit): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    clearTimeout(this.killTimer);
    this.emit('exit', exit);
  }

  protected signal(signal: NodeJS.Signals): void {
    if (this.state === 'exited' || this.child?.pid === undefined) return;
    try {
      this.child.kill(signal);
    } catch {
      // Already gone: the exit event follows.
    }
  }

  /** Writes one message to the worker on the control channel (only a standby reads them). */
  send(message: MasterMessage): void {
    const channel = controlChannel(this.child);
    if (this.state === 'exited' || !channel) return;
    channel.write(encodeMasterMessage(message));
  }
}
