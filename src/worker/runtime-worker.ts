import { parseWorkerMessage, type MasterMessage } from './protocol.js';
import { WorkerRecord, type StopMode, type StopReason, type Worker, type WorkerSpawnSpec } from './worker.js';

/** A quick stop (SIGINT) that has not ended the worker by then ends with SIGKILL. */
const QUICK_STOP_KILL_MS = 2_000;

/**
 * A worker whose process runs corral's Python runtime, however it was started (spawned: ProcessWorker;
 * forked by a fork server: ForkedWorker). Both read the same control channel and stop by the same
 * signals; how a signal reaches the process is each one's own (`signal`).
 */
export abstract class RuntimeWorker extends WorkerRecord {
  protected killTimer: NodeJS.Timeout | undefined;

  constructor(
    spec: WorkerSpawnSpec,
    private readonly gracefulTimeoutMs: number,
  ) {
    super(spec);
  }

  /** Sends a signal to the worker's process, while it has one. */
  protected abstract signal(signal: NodeJS.Signals): void;

  /** Writes one message to the worker's control channel (only a standby reads them). */
  abstract send(message: MasterMessage): void;

  /**
   * Hands a standby (started with the `standby` setting: a spawned warm one, or a child its fork server
   * holds) its slot: it imports the app and boots from here, so its boot deadline starts now.
   */
  activate(spec: WorkerSpawnSpec): void {
    this.slot = spec.slot;
    this.generation = spec.generation;
    this.role = spec.role;
    this.startedAt = Date.now();
    this.lastHeartbeatAt = this.startedAt;
    this.send({ type: 'go', slot: spec.slot, generation: spec.generation });
  }

  /** The worker this one runs as, when it is run by another (a ForkedWorker spawned instead): stops go to it. */
  protected get runAs(): Worker | undefined {
    return undefined;
  }

  /** One line of the control channel: a message of src/worker/protocol.ts's WORKER_MESSAGES, else ignored. */
  protected onControl(line: string): void {
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
      // Only reload mode's workers and standbys send these (its settings ask for them).
      case 'standby':
        this.emit('standby', message.paths, message.imported ?? []);
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

  private killAfter(ms: number): void {
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.signal('SIGKILL'), ms);
  }

  stop(reason: StopReason, mode: StopMode): void {
    if (this.state === 'exited') return;
    const escalating = this.stopReason !== undefined;
    this.stopReason ??= reason;
    this.state = 'draining';
    if (this.runAs) {
      this.runAs.stop(reason, mode);
      return;
    }
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

  abort(reason: StopReason, graceMs: number): void {
    if (this.state === 'exited') return;
    this.stopReason ??= reason;
    this.state = 'draining';
    if (this.runAs) {
      this.runAs.abort(reason, graceMs);
      return;
    }
    this.signal('SIGABRT');
    this.killAfter(graceMs);
  }
}
