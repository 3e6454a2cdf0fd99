import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { ChannelStream } from './channel-server.js';
import { readChannel } from './channels.js';
import type { ForkServer } from './fork-server.js';
import { CHANNEL_STREAMS, encodeMasterMessage, type MasterMessage } from './protocol.js';
import { RuntimeWorker } from './runtime-worker.js';
import { spawnFailure, type BootError, type Worker, type WorkerExit, type WorkerSpawnSpec, type WorkerStream } from './worker.js';

export interface ForkedWorkerOptions {
  gracefulTimeoutMs: number;
  onOutput(worker: Worker, stream: WorkerStream, line: string, droppedBytes: number): void;
}

/** What a spawned worker run instead takes of the standby's messages (a ProcessWorker). */
interface Activatable {
  send(message: MasterMessage): void;
}

/** A child reaped before the master accepted its control connection: how long that connection may still come. */
const LATE_CHANNEL_MS = 300;
/** Control EOF while the fork server lives: how long its report of the exit may take. */
const EXIT_REPORT_MS = 2_000;

/**
 * A worker forked by a generation's fork server (src/worker/fork-launcher.ts asks for it). To the
 * arbiter it is a worker like a spawned one: the same states and events. Its control channel, record
 * channel, stdout and stderr are connections the child opened to the master's channel socket
 * (src/worker/channel-server.ts), so they outlive the fork server; its exit code comes from the fork
 * server, which reaps it, and its end is the later of that report and the control channel's EOF (so
 * a boot_error written just before the exit is read first). Signals go through the fork server, which
 * never signals a reaped pid; once the fork server is gone, straight to the pid while the control
 * channel is open (the child holds it until it dies, so the pid is still its own).
 *
 * When the generation cannot fork (threads in the fork server), `spawnInstead` runs it as a spawned
 * worker and this object passes that worker's events on.
 */
export class ForkedWorker extends RuntimeWorker {
  readonly token = randomBytes(16).toString('hex');
  private childPid: number | undefined;
  private server: ForkServer | undefined;
  private inner: Worker | undefined;
  private controlSocket: net.Socket | undefined;
  private controlEnded = false;
  private exitReport: WorkerExit | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  /** A signal asked for before the fork server said which pid the worker has. */
  private pendingSignal: NodeJS.Signals | undefined;
  /** Set by the launcher: takes the request back while it waits for its fork server. */
  cancelRequest: (() => boolean) | undefined;
  private readonly sockets: net.Socket[] = [];
  private readonly attached = new Set<ChannelStream>();
  /** Messages for the child written before its control channel connected (reload mode's standby). */
  private outbox: MasterMessage[] = [];

  constructor(
    spec: WorkerSpawnSpec,
    private readonly options: ForkedWorkerOptions,
  ) {
    super(spec, options.gracefulTimeoutMs);
  }

  get pid(): number | undefined {
    return this.inner ? this.inner.pid : this.childPid;
  }

  protected override get runAs(): Worker | undefined {
    return this.inner;
  }

  // ---- what the launcher reports ------------------------------------------------------------

  /** The fork server forked it: this is its pid. */
  forked(server: ForkServer, pid: number): void {
    this.server = server;
    this.childPid = pid;
    this.emit('started');
    if (this.pendingSignal) this.signal(this.pendingSignal);
  }

  /** No process could be made (the fork server died first, a fork failed): a failed spawn. */
  failSpawn(error: unknown, bootError?: BootError, exit: WorkerExit = { code: null, signal: null }): void {
    if (this.state === 'exited' || this.exitReport) return;
    this.bootError ??= bootError ?? spawnFailure(error);
    this.exitReport = exit;
    setImmediate(() => this.finish(exit));
  }

  /** The fork server reaped it. */
  childExited(exit: WorkerExit): void {
    if (this.exitReport) return;
    this.exitReport = exit;
    this.maybeFinish();
  }

  /** Its fork server is gone: from now on the control channel's EOF is its end. */
  serverLost(): void {
    this.maybeFinish();
  }

  /** Runs it as a spawned worker instead (the generation cannot fork). */
  spawnInstead(spawnWorker: (spec: WorkerSpawnSpec) => Worker): void {
    if (this.state === 'exited') return;
    const inner = spawnWorker({ slot: this.slot, generation: this.generation, role: this.role });
    this.inner = inner;
    inner.on('ready', () => this.markReady());
    inner.on('heartbeat', () => {
      this.lastHeartbeatAt = inner.lastHeartbeatAt;
      this.requests = inner.requests;
      this.connections = inner.connections;
      this.emit('heartbeat');
    });
    inner.on('retiring', (reason) => {
      this.requests = inner.requests;
      this.emit('retiring', reason);
    });
    // Reload mode's reports, from a standby or a worker spawned instead.
    inner.on('standby', (paths, imported) => this.emit('standby', paths, imported));
    inner.on('modules', (modules) => this.emit('modules', modules));
    for (const message of this.outbox.splice(0)) (inner as Partial<Activatable>).send?.(message);
    inner.once('exit', (exit) => {
      this.bootError = inner.bootError;
      this.finish(exit);
    });
    if (inner.pid !== undefined) this.emit('started');
    if (this.stopReason !== undefined) inner.stop(this.stopReason, this.pendingSignal === 'SIGKILL' ? 'kill' : 'quick');
  }

  /**
   * One of the child's connections, after its hello line; false when it is refused (the worker has
   * exited, or that stream is connected already: one of each, from the child the fork request made).
   */
  attach(stream: ChannelStream, socket: net.Socket): boolean {
    if (this.state === 'exited' || this.attached.has(stream)) {
      socket.destroy();
      return false;
    }
    this.attached.add(stream);
    this.sockets.push(socket);
    readChannel(stream, socket, {
      onOutput: (name, line, dropped) => this.options.onOutput(this, name, line, dropped),
      onControl: (line) => this.onControl(line),
    });
    if (stream === 'control') {
      this.controlSocket = socket;
      for (const message of this.outbox.splice(0)) socket.write(encodeMasterMessage(message));
      socket.once('close', () => {
        this.controlEnded = true;
        this.maybeFinish();
      });
    }
    return true;
  }

  /** Every stream of the child is connected: its token opens nothing more. */
  get connected(): boolean {
    return this.attached.size === CHANNEL_STREAMS.length;
  }

  // ---- reload mode's standby ----------------------------------------------------------------

  /** Writes one message to the child's control channel, once it has connected (only a standby reads them). */
  send(message: MasterMessage): void {
    if (this.state === 'exited') return;
    if (this.inner) {
      (this.inner as Partial<Activatable>).send?.(message);
      return;
    }
    if (this.controlSocket && !this.controlEnded) this.controlSocket.write(encodeMasterMessage(message));
    else if (!this.controlSocket) this.outbox.push(message);
  }

  // ---- its end ------------------------------------------------------------------------------

  private maybeFinish(): void {
    if (this.state === 'exited' || this.inner) return;
    const serverAlive = this.server?.alive ?? false;
    if (this.exitReport) {
      if (this.controlSocket && !this.controlEnded) return; // the EOF follows: the process is gone
      if (!this.controlSocket) {
        // The child may have connected just before it died: that connection waits in the backlog.
        this.finishTimer ??= setTimeout(() => this.finish(this.exitReport!), LATE_CHANNEL_MS);
        return;
      }
      this.finish(this.exitReport);
      return;
    }
    if (!this.controlEnded) return;
    if (serverAlive) {
      // The fork server reaps it and reports how it ended; should that report not come, it ended anyway.
      this.finishTimer ??= setTimeout(() => this.finish({ code: null, signal: null }), EXIT_REPORT_MS);
      return;
    }
    // An orphan (its fork server was killed): nobody here can learn its exit status.
    this.finish({ code: null, signal: null });
  }

  private finish(exit: WorkerExit): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    clearTimeout(this.finishTimer);
    clearTimeout(this.killTimer);
    // A child that ends before it ever connected could not report why: say so.
    if (!this.inner && this.childPid !== undefined && !this.controlSocket && this.bootError === undefined) {
      this.bootError = spawnFailure(new Error(`the forked worker exited (${exit.signal ?? `code ${exit.code}`}) before it connected to the master`));
    }
    for (const socket of this.sockets) socket.destroy();
    this.emit('exit', exit);
  }

  // ---- stopping -----------------------------------------------------------------------------

  protected signal(signal: NodeJS.Signals): void {
    if (this.state === 'exited') return;
    if (this.childPid === undefined) {
      // Not forked yet: a request still queued is taken back (no process, nothing to stop); one sent
      // gets the signal as soon as its pid is known.
      if (this.cancelRequest?.()) {
        this.exitReport = { code: null, signal: null };
        setImmediate(() => this.finish(this.exitReport!));
        return;
      }
      this.pendingSignal = signal === 'SIGKILL' || this.pendingSignal === undefined ? signal : this.pendingSignal;
      return;
    }
    if (this.server?.alive && this.server.signal(this.childPid, signal)) return;
    if (this.controlSocket && !this.controlEnded) {
      try {
        process.kill(this.childPid, signal);
      } catch {
        // Already gone: the control channel's EOF follows.
      }
    }
  }
}
