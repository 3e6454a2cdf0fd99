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

  constructor(readonly server: ForkServer) {}
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

  /** Starts the generation's fork server, so it preloads while the arbiter goes on (nothing to await). */
  prepareGeneration(generationNumber: number): undefined {
    const generation = this.generation(generationNumber);
    if (!generation.spawn && !this.closed) this.serverFor(generation);
    return undefined;
  }

  /** No worker of the generation is left: its fork server exits (now: it has no child). */
  retireGeneration(generationNumber: number): void {
    const generation = this.generations.get(generationNumber);
    if (!generation) return;
    this.generations.delete(generationNumber);
    for (const worker of generation.queue.splice(0)) worker.failSpawn(new Error(`generation ${generationNumber} is retired`));
    const handle = generation.handle;
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
  launch(spec: WorkerSpawnSpec): Worker {
    const generation = this.generation(spec.generation);
    if (generation.spawn) return this.options.spawn.launch(spec);
    const launch = this.start();
    const worker = markDeadOnExit(new ForkedWorker(spec, { gracefulTimeoutMs: launch.gracefulTimeoutMs, onOutput: this.options.onOutput }), launch.env, this.options.log);
    const forget = this.channels.expect(worker.token, (stream, socket) => {
      if (worker.attach(stream, socket) && worker.connected) forget();
    });
    worker.once('exit', forget);
    const settings = { ...launch.settings, slot: spec.slot, age: ++forkedWorkers, channel_path: this.channels.path, master_pid: process.pid };
    const request = { worker, settings, spawn: (fallback: WorkerSpawnSpec) => this.options.spawn.launch(fallback) };
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
    for (const generation of [...this.generations.values()].sort((a, b) => a.number - b.number)) {
      const handle = generation.handle;
      if (!handle || !handle.server.alive) continue;
      const { server } = handle;
      rows.push({
        generation: generation.number,
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
      const handles = [...this.generations.values()].flatMap((generation) => (generation.handle?.server.alive ? [generation.handle] : []));
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
    const servers = [...this.generations.values()].flatMap((generation) => (generation.handle?.server.alive ? [generation.handle] : []));
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
    const { options } = this;
    const start = this.start();
    const server = new ForkServer({
      generation: generation.number,
      python: this.config.python,
      entry: WORKER_ENTRY,
      listenerFds: options.listenerFds,
      env: start.env,
      settings: start.settings,
      onOutput: options.onServerOutput,
      ...(options.identity ? { uid: options.identity.uid, gid: options.identity.gid } : {}),
    });
    const handle = new ServerHandle(server);
    generation.handle = handle;
    options.log.debug({ forkServer: generation.number, pid: server.pid }, 'fork server starting');
    server.on('ready', (info) => this.onReady(generation, handle, info));
    server.on('unsafe', (token, threads) => {
      const worker = this.takePending(handle, token);
      this.refuseForking(generation, handle, threads);
      if (worker) this.spawnInstead(worker);
    });
    server.on('forked', (token, pid) => {
      const worker = this.takePending(handle, token);
      this.pump(generation, handle);
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
      this.pump(generation, handle);
    });
    server.on('child-exit', (pid, exit) => {
      const worker = handle.children.get(pid);
      handle.children.delete(pid);
      worker?.childExited(exit);
    });
    server.on('boot-error', (error) => (handle.bootError = error));
    server.on('exit', (exit, error) => this.onServerExit(generation, handle, exit, error));
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
    if (handle.server.state !== 'ready' || generation.handle !== handle || generation.spawn) return;
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
    else this.pump(generation, handle);
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
    handle.server.retire();
  }

  private onServerExit(generation: Generation, handle: ServerHandle, exit: { code: number | null; signal: NodeJS.Signals | null }, error: unknown): void {
    const { log } = this.options;
    const { server } = handle;
    if (generation.handle === handle) generation.handle = undefined;
    const waiting = [...handle.pending.values(), ...(generation.handle === undefined ? generation.queue.splice(0) : [])];
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
          { forkServer: generation.number, pid: server.pid, code: exit.code, signal: exit.signal, workers: orphans.length },
          `the fork server ${how}; ${orphans.length > 0 ? 'its workers keep serving; ' : ''}the next worker starts a new one`,
        );
      }
      if (server.readyAt === undefined && !this.closed) {
        generation.failedStarts += 1;
        if (generation.failedStarts >= MAX_FAILED_STARTS && !generation.spawn) {
          generation.spawn = true;
          log.warn({ forkServer: generation.number }, `the fork servers of generation ${generation.number} keep failing before they are ready; its workers are spawned instead`);
        }
      }
      for (const worker of waiting) worker.failSpawn(error ?? new Error(`the fork server ${how} before forking this worker`));
    }
    for (const worker of orphans) worker.serverLost();
  }
}
