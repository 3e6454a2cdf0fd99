import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { AwakeClock } from './awake-clock.js';
import { RespawnBackoff, type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { decideExit, type ArbiterPhase, type ExitAction, type ExitLog } from './exit-decision.js';
import type { WorkerLauncher } from '../worker/launcher.js';
import { UnstartedWorker, type StopMode, type StopReason, type Worker, type WorkerExit, type WorkerRole } from '../worker/worker.js';

export interface ArbiterSettings {
  workers: number;
  /** Heartbeat timeout; 0 disables hung-worker detection. */
  timeoutMs: number;
  bootTimeoutMs: number;
  maxSurge: number;
  backoff?: BackoffOptions;
  /** How often deadlines are checked. */
  tickMs?: number;
  /** How long a hung worker gets to print its stack after SIGABRT. */
  abortGraceMs?: number;
  /**
   * Reload mode: a worker that cannot boot (exit 3 or 4) leaves its slot empty until the next
   * rolling restart fills it, instead of halting corral at first start or respawning broken code.
   */
  parkOnBootFailure?: boolean;
  /**
   * --shutdown-delay: a graceful stop first keeps every worker serving this long while corral
   * reports not ready (/readyz 503, STOPPING=1), so load balancers stop sending traffic before
   * the drain begins.
   */
  shutdownDelayMs?: number;
}

export interface ArbiterEvents {
  'worker-spawn': [worker: Worker];
  'worker-ready': [worker: Worker];
  'worker-exit': [worker: Worker, exit: WorkerExit];
  /** Every wanted slot has a ready worker (sent each time that becomes true). */
  'all-ready': [];
  'restart-begin': [reason: string];
  /** Every slot is served by the new generation; the old workers drain (a restart that aborts sends none). */
  'restart-serving': [reason: string];
  /** The restart is over: the old workers it retired have exited, or it aborted. */
  'restart-end': [reason: string, ok: boolean, seconds: number];
  stopping: [mode: StopMode];
}

type Operation = { name: string; run: () => Promise<void> };

/** A run of spawns (each a fork and exec) yields to the event loop once it has taken this long. */
const SPAWN_SLICE_MS = 10;
/** A stall this long is worth a warning: the master was stopped, paused or blocked. */
const STALL_WARNING_MS = 1_000;

/**
 * The master's state machine: keeps one ready worker in every wanted slot, replaces the dead,
 * runs operations (rolling restart, scaling, recycling) one at a time, and stops everything on
 * shutdown. It never blocks: each wait has a deadline checked by one periodic tick.
 */
export class Arbiter extends EventEmitter<ArbiterEvents> {
  private readonly workers = new Set<Worker>();
  private readonly slots = new Set<number>();
  private readonly everReady = new Set<number>();
  private readonly backoffs = new Map<number, RespawnBackoff>();
  private readonly respawnTimers = new Map<number, NodeJS.Timeout>();
  private readonly operations: Operation[] = [];
  private operationRunning = false;
  private generation = 1;
  /** Generations the launcher has prepared and not yet retired. */
  private readonly generations = new Set<number>();
  private tickTimer: NodeJS.Timeout | undefined;
  private stopMode: StopMode | undefined;
  private exitCode: ExitCodeValue = ExitCode.ok;
  private finish: ((code: ExitCodeValue) => void) | undefined;
  private allReadyAnnounced = false;
  /** Set during the shutdown delay: stopping, yet every worker still serves (and a dead one is replaced). */
  private delayTimer: NodeJS.Timeout | undefined;
  private clock: AwakeClock | undefined;
  private judgedLastTick = true;

  constructor(
    private settings: ArbiterSettings,
    private readonly launcher: WorkerLauncher,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Starts the workers; resolves with the exit code once every worker has exited after a stop. */
  run(): Promise<ExitCodeValue> {
    const done = new Promise<ExitCodeValue>((resolve) => (this.finish = resolve));
    const tickMs = this.settings.tickMs ?? 500;
    this.clock = new AwakeClock(tickMs);
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    const slots: number[] = [];
    for (let slot = 1; slot <= this.settings.workers; slot += 1) slots.push(slot);
    for (const slot of slots) this.slots.add(slot);
    // An operation like the others, so a HUP or a TTIN during a big start waits for it to finish.
    this.enqueue({
      name: 'start',
      run: async () => {
        const preparing = this.prepareGeneration(this.generation);
        if (preparing) await preparing;
        await this.spawnEach(
          slots.filter((slot) => this.slots.has(slot)),
          (slot) => this.spawn(slot, 'initial'),
        );
      },
    });
    return done;
  }

  get stopping(): boolean {
    return this.stopMode !== undefined;
  }

  liveWorkers(): Worker[] {
    return [...this.workers];
  }

  wantedWorkers(): number {
    return this.slots.size;
  }

  updateSettings(settings: ArbiterSettings): void {
    this.settings = settings;
  }

  // ---- operations -------------------------------------------------------------------------

  /** Replaces every worker by a new generation without dropping below capacity. */
  requestRollingRestart(reason: string): void {
    // A restart already waiting covers this request too: never two queued at once.
    if (this.operations.some((operation) => operation.name === 'restart')) {
      this.log.info({ reason }, 'a rolling restart is already queued');
      return;
    }
    this.enqueue({ name: 'restart', run: () => this.rollingRestart(reason) });
  }

  /** One worker more (TTIN). */
  requestScaleUp(): void {
    this.enqueue({ name: 'scale-up', run: async () => void (await this.scaleUp()) });
  }

  /** One worker fewer (TTOU): the oldest drains; never below one. */
  requestScaleDown(): void {
    this.enqueue({ name: 'scale-down', run: async () => this.scaleDown() });
  }

  /** Sets the number of workers. */
  requestScaleTo(count: number): void {
    this.enqueue({
      name: 'scale-to',
      run: async () => {
        while (!this.stopping && this.slots.size < count) {
          if (!(await this.scaleUp())) return;
        }
        while (!this.stopping && this.slots.size > Math.max(1, count)) this.scaleDown();
      },
    });
  }

  /** Replaces one worker, its replacement ready before it drains (max-requests, max-memory, …). */
  requestRecycle(worker: Worker, reason: StopReason, detail: Record<string, unknown>): void {
    if (this.operations.some((operation) => operation.name === `recycle:${worker.pid}`)) return;
    this.enqueue({ name: `recycle:${worker.pid}`, run: () => this.recycle(worker, reason, detail) });
  }

  private enqueue(operation: Operation): void {
    if (this.stopping) return;
    this.operations.push(operation);
    void this.drainQueue();
  }

  private async drainQueue(): Promise<void> {
    if (this.operationRunning) return;
    this.operationRunning = true;
    try {
      while (!this.stopping && this.operations.length > 0) {
        const operation = this.operations.shift()!;
        try {
          await operation.run();
        } catch (error) {
          this.log.error({ err: error, operation: operation.name }, 'operation failed');
        }
      }
    } finally {
      this.operationRunning = false;
    }
  }

  private async rollingRestart(reason: string): Promise<void> {
    const started = Date.now();
    const generation = this.generation + 1;
    this.emit('restart-begin', reason);
    this.log.info({ reason, generation, workers: this.slots.size }, 'rolling restart: starting a new generation');
    // Prepared before it is current: a respawn meanwhile still launches the previous generation.
    const preparing = this.prepareGeneration(generation);
    if (preparing) await preparing;
    this.generation = generation;
    const outdated = () =>
      this.liveWorkers()
        .filter((worker) => worker.generation < generation && worker.state !== 'draining' && worker.stopReason === undefined)
        .sort((a, b) => a.slot - b.slot);
    let ok = true;
    // Slots left empty by a worker that could not boot (reload mode) are filled first.
    const empty = [...this.slots].filter(
      (slot) => !this.respawnTimers.has(slot) && !this.liveWorkers().some((worker) => worker.slot === slot && worker.stopReason === undefined),
    );
    if (empty.length > 0) {
      const fresh = await this.spawnEach(empty, (slot) => this.spawn(slot, 'replacement', generation));
      const booted = await Promise.all(fresh.map((worker) => this.whenReady(worker)));
      if (this.stopping) return;
      if (booted.includes(false)) {
        ok = false;
        this.abortRestart(generation, fresh);
      }
    }
    const retired: Promise<void>[] = [];
    for (let batch = ok ? outdated().slice(0, this.settings.maxSurge) : []; batch.length > 0; batch = outdated().slice(0, this.settings.maxSurge)) {
      const fresh = await this.spawnEach(batch, (old) => this.spawn(old.slot, 'replacement', generation));
      const booted = await Promise.all(fresh.map((worker) => this.whenReady(worker)));
      if (this.stopping) return;
      if (booted.includes(false)) {
        ok = false;
        this.abortRestart(generation, fresh);
        break;
      }
      for (const old of batch) {
        retired.push(this.whenExited(old));
        old.stop('restart', 'graceful');
      }
    }
    if (ok) {
      this.log.info({ reason, generation, draining: retired.length }, 'rolling restart: the new generation serves; the old workers drain');
      this.emit('restart-serving', reason);
    }
    // Over once the old code no longer runs: its workers finish their requests first (bounded by the
    // graceful timeout). A restart requested meanwhile queues behind this one.
    await Promise.all(retired);
    if (this.stopping) return;
    const seconds = (Date.now() - started) / 1000;
    if (ok) this.log.info({ reason, generation, seconds }, 'rolling restart complete');
    this.emit('restart-end', reason, ok, seconds);
  }

  private abortRestart(generation: number, fresh: Worker[]): void {
    for (const worker of this.liveWorkers()) {
      if (worker.generation === generation) worker.stop('restart', 'quick');
    }
    const failed = fresh.find((worker) => worker.bootError) ?? fresh[0]!;
    const error = failed.bootError;
    this.log.error(
      { worker: failed.slot, pid: failed.pid, error: error?.message, file: error?.file, line: error?.line, traceback: error?.traceback },
      'rolling restart aborted: a new worker failed to boot; the previous workers keep serving',
    );
  }

  private async scaleUp(): Promise<boolean> {
    let slot = 1;
    while (this.slots.has(slot)) slot += 1;
    this.slots.add(slot);
    this.log.info({ worker: slot, workers: this.slots.size }, 'scaling up');
    const worker = this.spawn(slot, 'scale-up');
    if (await this.whenReady(worker)) return true;
    this.slots.delete(slot);
    this.log.error({ worker: slot, error: worker.bootError?.message }, 'scale-up failed: the new worker did not boot');
    return false;
  }

  private scaleDown(): void {
    if (this.slots.size <= 1) {
      this.log.warn({ workers: this.slots.size }, 'not scaling down: corral keeps at least one worker');
      return;
    }
    const serving = this.liveWorkers().filter((worker) => worker.stopReason === undefined);
    const oldest = serving.sort((a, b) => a.startedAt - b.startedAt)[0];
    const slot = oldest?.slot ?? Math.max(...this.slots);
    this.slots.delete(slot);
    this.cancelRespawn(slot);
    this.log.info({ worker: slot, pid: oldest?.pid, workers: this.slots.size }, 'scaling down');
    for (const worker of this.liveWorkers()) if (worker.slot === slot) worker.stop('scale-down', 'graceful');
  }

  private async recycle(worker: Worker, reason: StopReason, detail: Record<string, unknown>): Promise<void> {
    if (worker.state !== 'ready' || worker.stopReason !== undefined || !this.slots.has(worker.slot)) return;
    this.log.info({ worker: worker.slot, pid: worker.pid, reason, ...detail }, 'recycling worker: starting its replacement');
    const replacement = this.spawn(worker.slot, 'replacement', worker.generation);
    if (!(await this.whenReady(replacement))) {
      this.log.error({ worker: worker.slot, error: replacement.bootError?.message }, 'recycling postponed: the replacement did not boot');
      return;
    }
    const exited = this.whenExited(worker);
    worker.stop(reason, 'graceful');
    // One recycle at a time: the next waits until this worker has drained.
    await exited;
  }

  private whenExited(worker: Worker): Promise<void> {
    return new Promise((resolve) => (worker.state === 'exited' ? resolve() : worker.once('exit', () => resolve())));
  }

  private whenReady(worker: Worker): Promise<boolean> {
    if (worker.state === 'ready') return Promise.resolve(true);
    if (worker.state !== 'booting') return Promise.resolve(false);
    return new Promise((resolve) => {
      const onReady = () => {
        worker.off('exit', onExit);
        resolve(true);
      };
      const onExit = () => {
        worker.off('ready', onReady);
        resolve(false);
      };
      worker.once('ready', onReady);
      worker.once('exit', onExit);
    });
  }

  // ---- workers ----------------------------------------------------------------------------

  /**
   * Spawns one worker per item. A spawn blocks the event loop for a fork and an exec, so a long run
   * of them (-w 500) yields between spawns: signals, the control socket and heartbeats are served
   * meanwhile. Spawns nothing more once corral is stopping.
   */
  private async spawnEach<T>(items: readonly T[], spawnOne: (item: T) => Worker): Promise<Worker[]> {
    const spawned: Worker[] = [];
    let sliceStart = Date.now();
    for (const item of items) {
      if (Date.now() - sliceStart >= SPAWN_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = Date.now();
      }
      if (this.stopping) break;
      spawned.push(spawnOne(item));
    }
    return spawned;
  }

  /** Asks the launcher to get a generation ready; a promise to await, or undefined when it is ready now. */
  private prepareGeneration(generation: number): Promise<void> | undefined {
    this.generations.add(generation);
    return this.launcher.prepareGeneration(generation)?.catch((error: unknown) => {
      this.log.error({ err: error, generation }, 'the worker launcher could not prepare the generation');
    });
  }

  /** Tells the launcher about every generation older than the current one whose last worker has gone. */
  private retireGenerations(): void {
    for (const generation of this.generations) {
      if (generation >= this.generation || [...this.workers].some((worker) => worker.generation === generation)) continue;
      this.generations.delete(generation);
      this.launcher.retireGeneration(generation);
    }
  }

  private spawn(slot: number, role: WorkerRole, generation = this.generation): Worker {
    const spec = { slot, generation, role };
    let worker: Worker;
    try {
      worker = this.launcher.launch(spec);
    } catch (error) {
      // A spawn that fails, however it fails, is a failed boot: never an exception out of here.
      worker = new UnstartedWorker(spec, error);
    }
    this.workers.add(worker);
    const booting = () => this.log.info({ worker: slot, pid: worker.pid, generation, role }, 'worker booting');
    // A forked worker's pid comes from its fork server a moment later: its record waits for it (and
    // is left out for a worker stopped before it had one: it never booted).
    if (worker.pid === undefined && worker.state === 'booting' && !(worker instanceof UnstartedWorker)) {
      const onExit = () => {
        worker.off('started', onStarted);
        if (worker.stopReason === undefined) booting();
      };
      const onStarted = () => {
        worker.off('exit', onExit);
        if (worker.stopReason === undefined) booting();
      };
      worker.once('started', onStarted);
      worker.once('exit', onExit);
    } else {
      booting();
    }
    this.emit('worker-spawn', worker);
    worker.on('ready', () => this.onReady(worker));
    worker.once('exit', (exit) => this.onExit(worker, exit));
    // After onExit has let the worker go: it may have been its generation's last.
    worker.once('exit', () => this.retireGenerations());
    this.retireGenerations();
    return worker;
  }

  private onReady(worker: Worker): void {
    this.everReady.add(worker.slot);
    const bootSeconds = ((worker.readyAt ?? Date.now()) - worker.startedAt) / 1000;
    this.log.info({ worker: worker.slot, pid: worker.pid, seconds: bootSeconds }, 'worker ready');
    this.emit('worker-ready', worker);
    this.announceIfAllReady();
  }

  private announceIfAllReady(): void {
    const ready = [...this.slots].every((slot) =>
      this.liveWorkers().some((worker) => worker.slot === slot && worker.state === 'ready'),
    );
    if (ready && !this.allReadyAnnounced && !this.stopping) {
      this.allReadyAnnounced = true;
      this.log.info({ workers: this.slots.size }, 'all workers ready');
      this.emit('all-ready');
    } else if (!ready) {
      this.allReadyAnnounced = false;
    }
  }

  private onExit(worker: Worker, exit: WorkerExit): void {
    this.workers.delete(worker);
    const uptimeMs = Date.now() - worker.startedAt;
    this.emit('worker-exit', worker, exit);
    const slot = worker.slot;
    const backoff = this.backoffOf(slot);
    const { action, log } = decideExit({
      phase: this.phase,
      exit,
      worker: {
        slot,
        pid: worker.pid,
        role: worker.role,
        wasReady: worker.readyAt !== undefined,
        stopReason: worker.stopReason,
        bootError: worker.bootError,
        uptimeMs,
      },
      slot: {
        wanted: this.slots.has(slot),
        served: this.liveWorkers().some((other) => other.slot === slot && other.stopReason === undefined),
        everReady: this.everReady.has(slot),
      },
      parkOnBootFailure: this.settings.parkOnBootFailure ?? false,
      respawnDelayMs: backoff.nextDelay(uptimeMs),
    });
    if (action.kind === 'give-up') {
      this.halt(action.exitCode, log);
      return;
    }
    if (log) this.log[log.level](log.fields, log.message);
    this.carryOut(slot, action, () => backoff.delayAfterDeath(uptimeMs));
  }

  private get phase(): ArbiterPhase {
    if (!this.stopping) return 'running';
    return this.inShutdownDelay ? 'shutdown-delay' : 'stopping';
  }

  private backoffOf(slot: number): RespawnBackoff {
    let backoff = this.backoffs.get(slot);
    if (!backoff) {
      backoff = new RespawnBackoff(this.settings.backoff ?? DEFAULT_BACKOFF);
      this.backoffs.set(slot, backoff);
    }
    return backoff;
  }

  /** Carries out an exit decision other than giving up; `recordDeath` counts the death in the slot's backoff. */
  private carryOut(slot: number, action: Exclude<ExitAction, { kind: 'give-up' }>, recordDeath: () => number): void {
    switch (action.kind) {
      case 'none':
        if (action.cause === 'stopping') {
          if (this.workers.size === 0) this.finishStop();
        } else if (action.cause === 'stopped') {
          this.announceIfAllReady();
        } else if (action.cause !== 'operation-decides') {
          this.allReadyAnnounced = false;
        }
        return;
      case 'park':
        this.allReadyAnnounced = false;
        return;
      case 'restart-now':
      case 'back-off': {
        this.allReadyAnnounced = false;
        recordDeath();
        this.cancelRespawn(slot);
        if (action.kind === 'restart-now') {
          this.spawn(slot, 'respawn');
          return;
        }
        this.respawnTimers.set(
          slot,
          setTimeout(() => {
            this.respawnTimers.delete(slot);
            if ((!this.stopping || this.inShutdownDelay) && this.slots.has(slot)) this.spawn(slot, 'respawn');
          }, action.delayMs),
        );
      }
    }
  }

  private cancelRespawn(slot: number): void {
    clearTimeout(this.respawnTimers.get(slot));
    this.respawnTimers.delete(slot);
  }

  /**
   * Deadlines: boot timeout and heartbeat timeout, both counted in time the master was running, so
   * a stall of the master itself (stopped, paused, blocked) is never blamed on its workers.
   */
  private tick(): void {
    const clock = this.clock!;
    const stalledMs = clock.tick();
    if (stalledMs >= STALL_WARNING_MS) {
      this.log.warn({ seconds: stalledMs / 1000 }, 'the master was stalled (stopped, paused or blocked); heartbeat and boot deadlines leave that time out');
    }
    // What the workers sent during the stall is read after this tick: judge at the next one, when the
    // master has caught up. Never two ticks in a row, so a master that is always late still judges.
    if (stalledMs > 0 && this.judgedLastTick) {
      this.judgedLastTick = false;
      return;
    }
    this.judgedLastTick = true;
    let oldest = Date.now();
    for (const worker of this.workers) {
      if (worker.state === 'booting') oldest = Math.min(oldest, worker.startedAt);
      if (worker.state === 'ready') oldest = Math.min(oldest, worker.lastHeartbeatAt);
      if (worker.state === 'booting' && clock.elapsedSince(worker.startedAt) > this.settings.bootTimeoutMs) {
        this.log.error(
          { worker: worker.slot, pid: worker.pid, timeout: this.settings.bootTimeoutMs / 1000 },
          'worker did not become ready within the boot timeout; killing it',
        );
        worker.stop('boot-timeout', 'kill');
      } else if (
        worker.state === 'ready' &&
        worker.stopReason === undefined &&
        this.settings.timeoutMs > 0 &&
        clock.elapsedSince(worker.lastHeartbeatAt) > this.settings.timeoutMs
      ) {
        this.log.error(
          { worker: worker.slot, pid: worker.pid, silent: clock.elapsedSince(worker.lastHeartbeatAt) / 1000 },
          'worker hung: no heartbeat within the timeout; aborting it for a stack dump',
        );
        worker.abort('timeout', this.settings.abortGraceMs ?? 2_000);
      }
    }
    clock.forgetBefore(oldest);
  }

  // ---- stopping ---------------------------------------------------------------------------

  private get inShutdownDelay(): boolean {
    return this.delayTimer !== undefined;
  }

  /**
   * Graceful (TERM) or quick (INT, QUIT); a quick stop during a stop kills at once. A graceful stop
   * waits out --shutdown-delay first (unless `delay` is false: a USR2 hand-over, whose sockets the
   * new master already serves). During that delay a second TERM drains at once and INT or QUIT
   * stops quickly at once.
   */
  stop(mode: Exclude<StopMode, 'kill'>, options: { delay?: boolean } = {}): void {
    if (this.inShutdownDelay) {
      this.log.info(
        { mode, workers: this.workers.size },
        mode === 'graceful' ? 'second TERM: ending the shutdown delay, draining now' : 'quick stop: ending the shutdown delay, stopping now',
      );
      this.stopWorkers(mode);
      return;
    }
    if (this.stopMode !== undefined) {
      if (mode === 'quick') {
        this.log.warn({ workers: this.workers.size }, 'second interrupt: killing the workers now');
        for (const worker of this.workers) worker.stop('shutdown', 'kill');
      }
      return;
    }
    this.beginStop(mode, options.delay ?? true);
  }

  private beginStop(mode: StopMode, delay = false): void {
    this.stopMode = mode;
    this.operations.length = 0;
    const delayMs = mode === 'graceful' && delay && this.workers.size > 0 ? (this.settings.shutdownDelayMs ?? 0) : 0;
    // From here on corral is not ready (/readyz, STOPPING=1), with or without a delay.
    this.emit('stopping', mode);
    if (delayMs > 0) {
      this.log.info(
        { mode, workers: this.workers.size, delay: delayMs / 1000 },
        `stopping gracefully after the shutdown delay: not ready from now on; the workers serve for ${delayMs / 1000} s more, then drain`,
      );
      this.delayTimer = setTimeout(() => {
        this.log.info({ workers: this.workers.size }, 'shutdown delay over: draining the workers');
        this.stopWorkers('graceful');
      }, delayMs);
      return;
    }
    this.log.info({ mode, workers: this.workers.size }, mode === 'graceful' ? 'stopping gracefully' : 'stopping');
    this.stopWorkers(mode);
  }

  /** Stops every worker (ending a shutdown delay); the arbiter finishes once the last has exited. */
  private stopWorkers(mode: StopMode): void {
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.stopMode = mode;
    for (const slot of [...this.respawnTimers.keys()]) this.cancelRespawn(slot);
    for (const worker of this.workers) worker.stop(mode === 'graceful' ? 'shutdown' : 'halt', mode);
    if (this.workers.size === 0) this.finishStop();
  }

  /** Gives up: stops corral quickly, to exit with `code` once every worker has exited. */
  private halt(code: ExitCodeValue, log: ExitLog | undefined): void {
    if (log) this.log[log.level](log.fields, log.message);
    this.exitCode = code;
    if (this.inShutdownDelay) this.stopWorkers('quick');
    else this.beginStop('quick');
  }

  private finishStop(): void {
    clearInterval(this.tickTimer);
    this.finish?.(this.exitCode);
    this.finish = undefined;
  }
}
