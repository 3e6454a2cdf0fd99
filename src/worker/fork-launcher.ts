import type { Logger } from 'pino';
import type { CorralConfig } from '../config/resolve.js';
import { markDeadOnExit } from '../telemetry/prometheus-multiproc.js';
import { ChannelServer } from './channel-server.js';
import { ForkServer, type ForkServerReady } from './fork-server.js';
import { ForkedWorker } from './forked-worker.js';
import type { WorkerLauncher } from './launcher.js';
import type { ForkServerOutput } from './output.js';
import { WORKER_ENTRY } from './python.js';
import { readMemory, type MemoryFigures } from './resources.js';
import { workerEnvironment, workerSettings } from './worker-config.js';
import type { BootError, Worker, WorkerSpawnSpec, WorkerStream } from './worker.js';

export interface ForkLauncherOptions {
  /** The configuration at start; reconfigure() replaces it. */
  config: CorralConfig;
  listenerFds: readonly number[];
  /** -u/-g: the fork servers' (and so the workers') user and group. */
  identity?: { uid: number; gid: number } | undefined;
  log: Logger;
  onOutput(worker: Worker, stream: WorkerStream, line: string, droppedBytes: number): void;
  onServerOutput: ForkServerOutput;
  /** The old way, for a generation that cannot fork. */
  spawn: WorkerLauncher;
  /** The environment the fork servers start from (the master's, read at each start). */
  env?: () => NodeJS.ProcessEnv;
}

/** What a generation's fork server and its workers start with: the configuration when it started. */
interface GenerationStart {
  settings: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  gracefulTimeoutMs: number;
}

/** How a launch may differ from the generation's usual worker (reload mode: src/reload/fork-standby.ts). */
export interface ForkRequestOptions {
  /** Fork from the fork server prepared under this number instead of `spec.generation`'s. */
  forkServer?: number;
  /** Settings on top of the configuration's (reload mode: `standby`, `report_modules`). */
  settings?: Record<string, unknown>;
  /** How to start it instead when the fork server cannot fork (default: the spawn launcher's launch). */
  spawn?: (spec: WorkerSpawnSpec) => Worker;
}

/** A fork server as `corral status` shows it. */
export interface ForkServerStatus {
  generation: number;
  pid: number | null;
  state: 'starting' | 'ready' | 'retiring';
  workers: number;
  startedAt: number;
  /** Modules imported before forking (null until ready). */
  preloaded: number | null;
  preloadSeconds: number | null;
  /** Its own memory from /proc/PID/smaps_rollup at the latest sample (null before one): its PSS is its share of the pages its workers use with it. */
  pssBytes: number | null;
  ussBytes: number | null;
  rssBytes: number | null;
}

/** What `corral status` and the metrics read of the fork servers. */
export interface ForkServerSource {
  status(): ForkServerStatus[];
  /** Samples each live fork server's memory (at most once per call), for the next status(). */
  sample(): Promise<void>;
}

/** One fork server and the requests it owes an answer to. */
class ServerHandle {
  /** Fork requests sent, waiting for their pid. */
  readonly pending = new Map<string, ForkedWorker>();
  /** Its children, by pid, until it reports their exit. */
  readonly children = new Map<number, ForkedWorker>();
  bootError: BootError | undefined;
  closing = false;
  memory: MemoryFigures | undefined;
  /** The generations it forks for: the one it started with, and the newer ones it was refreshed for. */
  readonly generations = new Set<number>();
  /** The generation whose refresh it is running: that generation's fork requests wait for it. */
  refreshing: number | undefined;
  /** A refresh found its preloaded files changed, or it runs threads: no newer generation may use it. */
  stale = false;

  /** `signature`: what its preload depends on (see preloadSignature); a generation with the same one may share it. */
  constructor(
    readonly server: ForkServer,
    readonly signature: string,
  ) {}
}

interface Generation {
  readonly number: number;
  handle: ServerHandle | undefined;
  /** Waiting for the generation's fork server to be ready. */
  readonly queue: ForkedWorker[];
  /** The generation's workers are spawned: threads in its fork server, or fork servers that keep dying. */
  spawn: boolean;
  /** Fork servers of this generation that exited before they were ready (and said nothing why). */
  failedStarts: number;
  /** Reload mode: modules its fork server preloads on top of its own choice. */
  preload?: readonly string[];
}

/** The worker's drain is bounded by itself; the master's SIGKILL comes this much later, as a backstop. */
const KILL_BACKSTOP_MS = 500;
/** Fork servers of one generation that die before ready this often: its workers are spawned. */
const MAX_FAILED_STARTS = 2;
/** Fork requests sent to one fork server before its answers: enough to keep it busy, few enough to take back. */
const FORK_WINDOW = 2;
/** How long close() waits for the fork servers to exit. */
const CLOSE_WAIT_MS = 1_000;

let forkedWorkers = 0;

/**
 * The fork-server implementation of the WorkerLauncher seam (`--start-method fork`, the default):
 * prepareGeneration starts the generation's fork server, which preloads while the arbiter goes on;
 * launch forks each worker from it once it is ready (the request waits until then, within the
 * worker's boot timeout); retireGeneration ends it once the last of its workers is gone. A generation
 * whose fork server runs threads, or whose fork servers die before they are ready, is spawned the old
 * way instead, with one warning.
 *
 * Without --preload a fork server never imports the app's own modules, so a new generation (a HUP)
 * whose preload would be the same — same settings and environment — is forked by the running fork
 * server after a refresh: it checks that nothing it preloaded changed on disk and imports what the new
 * code adds; if something changed, the generation gets a fresh fork server. A HUP then waits for no
 * interpreter start, and the generations share their pages.
 */
export class ForkServerLauncher implements WorkerLauncher, ForkServerSource {
  private readonly generations = new Map<number, Generation>();
  /** Each waiting worker's fork request: its settings, and how to spawn it instead. */
  private readonly requests = new WeakMap<ForkedWorker, { settings: Record<string, unknown>; spawn: (spec: WorkerSpawnSpec) => Worker }>();
  private closed = false;
  private sampling: Promise<void> | undefined;
  private readonly sampleTimer: NodeJS.Timeout;
  private config: CorralConfig;
  private settings: Record<string, unknown>;

  private constructor(
    private readonly options: ForkLauncherOptions,
    private readonly channels: ChannelServer,
  ) {
    this.config = options.config;
    this.settings = workerSettings(options.config);
    // As the workers are sampled (--memory-check-interval), so `corral status` has a recent figure.
    this.sampleTimer = setInterval(() => void this.sample(), Math.max(1, options.config.memoryCheckInterval) * 1000);
    this.sampleTimer.unref();
  }

  /** Opens the channel socket forked workers connect back to. */
  static async open(options: ForkLauncherOptions): Promise<ForkServerLauncher> {
    return new ForkServerLauncher(options, await ChannelServer.open(options.identity));
  }

  reconfigure(config: CorralConfig): void {
    this.config = config;
    this.settings = workerSettings(config);
    this.options.spawn.reconfigure(config);
  }

  /**
   * Gives the generation a fork server: the previous generation's, refreshed, when their preload is the
   * same; else a new one, which preloads while the arbiter goes on (nothing to await). Reload mode gives
   * `preload` (src/reload/fork-standby.ts decides when it needs a fork server): always a new one, which
   * also imports these modules (it never imports the app itself).
   */
  prepareGeneration(generationNumber: number, preload?: readonly string[]): undefined {
    const generation = this.generation(generationNumber);
    if (preload) generation.preload = preload;
    if (generation.spawn || this.closed || generation.handle) return undefined;
    const shared = preload ? undefined : this.reusableServer(generation.number);
    if (shared) this.refresh(generation, shared);
    else this.serverFor(generation);
    return undefined;
  }

  /** No worker of the generation is left: its fork server exits (now: it has no child), unless a newer generation uses it. */
  retireGeneration(generationNumber: number): void {
    const generation = this.generations.get(generationNumber);
    if (!generation) return;
    this.generations.delete(generationNumber);
    for (const worker of generation.queue.splice(0)) worker.failSpawn(new Error(`generation ${generationNumber} is retired`));
    const handle = generation.handle;
    handle?.generations.delete(generationNumber);
    if (handle && handle.generations.size > 0) return;
    if (handle?.server.alive) {
      handle.closing = true;
      this.options.log.debug({ forkServer: generationNumber, pid: handle.server.pid }, 'fork server retiring');
      handle.server.retire();
    }
  }

  /** What workers start with now: the live configuration. */
  private start(): GenerationStart {
    const config = this.config;
    return {
      settings: this.settings,
      env: workerEnvironment(this.options.env?.() ?? process.env, config),
      gracefulTimeoutMs: config.gracefulTimeout * 1000 + KILL_BACKSTOP_MS,
    };
  }

  /** A worker of `spec.generation`: forked, or spawned when the generation cannot fork. */
  launch(spec: WorkerSpawnSpec, options: ForkRequestOptions = {}): Worker {
    const generation = this.generation(options.forkServer ?? spec.generation);
    const spawn = options.spawn ?? ((fallback: WorkerSpawnSpec) => this.options.spawn.launch(fallback));
    if (generation.spawn) return spawn(spec);
    const launch = this.start();
    const worker = markDeadOnExit(new ForkedWorker(spec, { gracefulTimeoutMs: launch.gracefulTimeoutMs, onOutput: this.options.onOutput }), launch.env, this.options.log);
    const forget = this.channels.expect(worker.token, (stream, socket) => {
      if (worker.attach(stream, socket) && worker.connected) forget();
    });
    worker.once('exit', forget);
    const settings = { ...launch.settings, ...options.settings, slot: spec.slot, age: ++forkedWorkers, channel_path: this.channels.path, master_pid: process.pid };
    const request = { worker, settings, spawn };
    const handle = this.serverFor(generation);
    worker.cancelRequest = () => {
      const index = generation.queue.indexOf(worker);
      if (index === -1) return false;
      generation.queue.splice(index, 1);
      return true;
    };
    this.requests.set(worker, request);
    generation.queue.push(worker);
    if (handle.server.state === 'ready') this.pump(generation, handle);
    return worker;
  }

  status(): ForkServerStatus[] {
    const rows: ForkServerStatus[] = [];
    for (const handle of this.liveHandles()) {
      const { server } = handle;
      rows.push({
        generation: server.generation,
        pid: server.pid ?? null,
        state: server.retiring ? 'retiring' : server.state === 'ready' ? 'ready' : 'starting',
        workers: handle.children.size,
        startedAt: server.startedAt,
        preloaded: server.info?.preloaded ?? null,
        preloadSeconds: server.info?.seconds ?? null,
        pssBytes: handle.memory?.pss ?? null,
        ussBytes: handle.memory?.uss ?? null,
        rssBytes: handle.memory?.rss ?? null,
      });
    }
    return rows;
  }

  sample(): Promise<void> {
    this.sampling ??= (async () => {
      const handles = this.liveHandles();
      await Promise.all(
        handles.map(async (handle) => {
          const pid = handle.server.pid;
          if (pid === undefined) return;
          const read = await readMemory(pid);
          if (typeof read === 'object' && !('unreadable' in read)) handle.memory = read;
        }),
      );
    })().finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  /** For a crash handler: the channel socket's directory goes; the fork servers die with the master. */
  removeFiles(): void {
    this.channels.removeFiles();
  }

  /** Ends every fork server (their workers have exited, or end with the master); waits a moment for them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sampleTimer);
    try {
      await this.stopServers();
    } finally {
      this.channels.close();
    }
  }

  private async stopServers(): Promise<void> {
    const servers = this.liveHandles();
    for (const handle of servers) {
      handle.closing = true;
      handle.server.retire();
    }
    const exited = (handle: ServerHandle) =>
      new Promise<void>((resolve) => (handle.server.alive ? handle.server.once('exit', () => resolve()) : resolve()));
    const all = Promise.all(servers.map(exited));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    for (const handle of servers) handle.server.kill();
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  // ---- generations --------------------------------------------------------------------------

  /** Each live fork server once (a shared one serves several generations), oldest first. */
  private liveHandles(): ServerHandle[] {
    const handles = new Set<ServerHandle>();
    for (const generation of [...this.generations.values()].sort((a, b) => a.number - b.number)) {
      if (generation.handle?.server.alive) handles.add(generation.handle);
    }
    return [...handles];
  }

  /** What a fork server's preload depends on: equal for two generations, one fork server can serve both. */
  private preloadSignature(start: GenerationStart): string {
    return JSON.stringify([this.config.python, start.settings, start.env]);
  }

  /**
   * The newest older generation's fork server, if it can serve this generation as well: ready, not
   * retiring nor stale nor busy with another refresh, and with the same preload. Never with --preload:
   * that fork server has imported the app's old code.
   */
  private reusableServer(number: number): ServerHandle | undefined {
    if (this.config.preloadApp) return undefined;
    const older = [...this.generations.values()].filter((generation) => generation.number < number && !generation.spawn).sort((a, b) => b.number - a.number);
    const handle = older[0]?.handle;
    if (!handle || handle.stale || handle.refreshing !== undefined) return undefined;
    const { server } = handle;
    if (server.state !== 'ready' || server.retiring || handle.closing) return undefined;
    return handle.signature === this.preloadSignature(this.start()) ? handle : undefined;
  }

  /** The generation is forked by `handle` once it has checked its preload and imported the new code's imports. */
  private refresh(generation: Generation, handle: ServerHandle): void {
    const start = this.start();
    handle.generations.add(generation.number);
    handle.refreshing = generation.number;
    generation.handle = handle;
    handle.server.generation = generation.number;
    this.options.log.debug({ forkServer: generation.number, pid: handle.server.pid }, 'fork server refreshing for a new generation');
    if (!handle.server.refresh({ ...start.settings, generation: generation.number })) this.refreshFailed(generation, handle);
  }

  private onRefreshed(handle: ServerHandle, info: ForkServerReady): void {
    const number = handle.refreshing;
    handle.refreshing = undefined;
    const generation = number === undefined ? undefined : this.generations.get(number);
    if (!generation || generation.handle !== handle) return;
    this.options.log.info(
      { forkServer: generation.number, pid: handle.server.pid, modules: info.modules, preloaded: info.preloaded, seconds: info.seconds },
      'fork server refreshed for the new generation',
    );
    if (info.threads.length > 0) this.refuseForking(generation, handle, info.threads);
    else this.pump(generation, handle);
  }

  /** The refresh cannot be used (files changed on disk, or the fork server is gone): the generation gets a fresh fork server. */
  private refreshFailed(generation: Generation, handle: ServerHandle, changed?: { count: number; files: string[] }): void {
    if (handle.refreshing === generation.number) handle.refreshing = undefined;
    handle.stale = true;
    handle.generations.delete(generation.number);
    if (generation.handle === handle) generation.handle = undefined;
    if (changed) {
      this.options.log.info(
        { forkServer: generation.number, pid: handle.server.pid, changed: changed.count, files: changed.files },
        `${changed.count} file(s) preloaded by the running fork server changed on disk (${changed.files.join(', ')}${changed.count > changed.files.length ? ', …' : ''}): ` +
          'the new generation gets a fresh fork server',
      );
    }
    if (!this.closed && this.generations.has(generation.number) && !generation.spawn) this.serverFor(generation);
  }

  private generation(number: number): Generation {
    let generation = this.generations.get(number);
    if (!generation) {
      generation = { number, handle: undefined, queue: [], spawn: false, failedStarts: 0 };
      this.generations.set(number, generation);
    }
    return generation;
  }

  /** The generation's live fork server, started (from the live configuration) when it has none, or only a retiring one. */
  private serverFor(generation: Generation): ServerHandle {
    const current = generation.handle;
    if (current && current.server.alive && !current.server.retiring) return current;
    if (current) current.generations.delete(generation.number);
    const { options } = this;
    const start = this.start();
    const server = new ForkServer({
      generation: generation.number,
      python: this.config.python,
      entry: WORKER_ENTRY,
      listenerFds: options.listenerFds,
      env: start.env,
      settings: generation.preload ? { ...start.settings, reload: true } : start.settings,
      onOutput: options.onServerOutput,
      ...(options.identity ? { uid: options.identity.uid, gid: options.identity.gid } : {}),
    });
    const handle = new ServerHandle(server, this.preloadSignature(start));
    handle.generations.add(generation.number);
    generation.handle = handle;
    if (generation.preload) server.preload(generation.preload);
    options.log.debug({ forkServer: generation.number, pid: server.pid }, 'fork server starting');
    server.on('ready', (info) => this.onReady(generation, handle, info));
    server.on('refreshed', (info) => this.onRefreshed(handle, info));
    server.on('stale', (count, files) => {
      const refreshing = handle.refreshing === undefined ? undefined : this.generations.get(handle.refreshing);
      if (refreshing) this.refreshFailed(refreshing, handle, { count, files });
    });
    server.on('unsafe', (token, threads) => {
      const worker = this.takePending(handle, token);
      const of = (worker && this.generations.get(worker.generation)) ?? generation;
      this.refuseForking(of, handle, threads);
      if (worker) this.spawnInstead(worker);
    });
    server.on('forked', (token, pid) => {
      const worker = this.takePending(handle, token);
      this.pumpAll(handle);
      if (!worker || worker.state === 'exited') {
        // Stopped meanwhile: the child has no one waiting for it.
        server.signal(pid, 'SIGKILL');
        return;
      }
      handle.children.set(pid, worker);
      worker.forked(server, pid);
    });
    server.on('fork-failed', (token, error) => {
      this.takePending(handle, token)?.failSpawn(new Error(`fork failed: ${error}`));
      this.pumpAll(handle);
    });
    server.on('child-exit', (pid, exit) => {
      const worker = handle.children.get(pid);
      handle.children.delete(pid);
      worker?.childExited(exit);
    });
    server.on('boot-error', (error) => (handle.bootError = error));
    server.on('exit', (exit, error) => this.onServerExit(handle, exit, error));
    return handle;
  }

  private takePending(handle: ServerHandle, token: string): ForkedWorker | undefined {
    const worker = handle.pending.get(token);
    handle.pending.delete(token);
    return worker;
  }

  /**
   * Sends the queued fork requests, a few at a time: the next goes when an answer comes, so a big start
   * is paced by the master's loop, and a stop meanwhile takes back what has not been sent.
   */
  private pump(generation: Generation, handle: ServerHandle): void {
    if (handle.server.state !== 'ready' || generation.handle !== handle || generation.spawn || handle.refreshing === generation.number) return;
    while (handle.pending.size < FORK_WINDOW && generation.queue.length > 0) {
      const worker = generation.queue.shift()!;
      const request = this.requests.get(worker);
      if (!request || worker.state === 'exited') continue;
      worker.cancelRequest = undefined;
      handle.pending.set(worker.token, worker);
      if (!handle.server.fork(worker.token, request.settings)) {
        handle.pending.delete(worker.token);
        worker.failSpawn(new Error(`the fork server of generation ${generation.number} is gone`));
      }
    }
  }

  /** The queued requests of every generation the fork server serves, the newest first. */
  private pumpAll(handle: ServerHandle): void {
    for (const number of [...handle.generations].sort((a, b) => b - a)) {
      const generation = this.generations.get(number);
      if (generation) this.pump(generation, handle);
    }
  }

  private spawnInstead(worker: ForkedWorker): void {
    const request = this.requests.get(worker);
    if (request) worker.spawnInstead(request.spawn);
  }

  private onReady(generation: Generation, handle: ServerHandle, info: ForkServerReady): void {
    const { log } = this.options;
    log.info(
      { forkServer: generation.number, pid: handle.server.pid, modules: info.modules, preloaded: info.preloaded, seconds: info.seconds },
      'fork server ready',
    );
    void this.sample();
    if (info.threads.length > 0) this.refuseForking(generation, handle, info.threads);
    else this.pumpAll(handle);
  }

  /** Threads in the fork server: this generation's workers are spawned (one warning). */
  private refuseForking(generation: Generation, handle: ServerHandle, threads: string[]): void {
    if (generation.spawn) return;
    generation.spawn = true;
    this.options.log.warn(
      { forkServer: generation.number, pid: handle.server.pid, threads },
      `the preloaded code started ${threads.length === 1 ? 'a thread' : `${threads.length} threads`} (${threads.join(', ')}): ` +
        'forking would copy locks held by them and risk deadlocked workers, so this generation\'s workers are spawned instead; ' +
        'start threads after the fork (a post_fork hook, or lazily) to get forked workers',
    );
    for (const worker of generation.queue.splice(0)) this.spawnInstead(worker);
    // Older generations it serves find the threads at their next fork request; no newer one refreshes it.
    handle.stale = true;
    handle.generations.delete(generation.number);
    if (handle.generations.size === 0) handle.server.retire();
  }

  private onServerExit(handle: ServerHandle, exit: { code: number | null; signal: NodeJS.Signals | null }, error: unknown): void {
    const { log } = this.options;
    const { server } = handle;
    const generations = [...handle.generations].flatMap((number) => this.generations.get(number) ?? []);
    const refreshing = handle.refreshing;
    handle.refreshing = undefined;
    const waiting = [...handle.pending.values()];
    for (const generation of generations) {
      if (generation.handle !== handle) continue;
      generation.handle = undefined;
      // A generation waiting for this fork server's refresh gets a fresh one; the others' waiting workers fail (and are respawned).
      if (generation.number === refreshing && !this.closed && !handle.closing) this.serverFor(generation);
      else waiting.push(...generation.queue.splice(0));
    }
    handle.pending.clear();
    const orphans = [...handle.children.values()];
    handle.children.clear();
    const expected = handle.closing || this.closed || (server.retiring && orphans.length === 0);
    if (handle.bootError) {
      // --preload and an app that does not import: each worker waiting for it fails as the app's import would.
      for (const worker of waiting) worker.failSpawn(undefined, handle.bootError, exit);
    } else {
      const how = error !== undefined ? `could not be started: ${error instanceof Error ? error.message : String(error)}` : `exited (${exit.signal ?? `code ${exit.code}`})`;
      if (!expected) {
        log.warn(
          { forkServer: server.generation, pid: server.pid, code: exit.code, signal: exit.signal, workers: orphans.length },
          `the fork server ${how}; ${orphans.length > 0 ? 'its workers keep serving; ' : ''}the next worker starts a new one`,
        );
      }
      if (server.readyAt === undefined && !this.closed) {
        // Only the generation it was started for: it served no other before it was ready.
        for (const generation of generations) {
          generation.failedStarts += 1;
          if (generation.failedStarts >= MAX_FAILED_STARTS && !generation.spawn) {
            generation.spawn = true;
            log.warn({ forkServer: generation.number }, `the fork servers of generation ${generation.number} keep failing before they are ready; its workers are spawned instead`);
          }
        }
      }
      for (const worker of waiting) worker.failSpawn(error ?? new Error(`the fork server ${how} before forking this worker`));
    }
    for (const worker of orphans) worker.serverLost();
  }
}
