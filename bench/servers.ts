// How to launch each server the benchmark compares, how to tell its workers from its helper
// processes, and how to tell that a worker is ready. One RunningServer per launch; it owns a
// process group that is always killed with SIGKILL at the end.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HOST,
  descendants,
  isAlive,
  listProcesses,
  now,
  pollUntil,
  readCmdline,
  releaseGroup,
  trackGroup,
  tryGet,
} from './lib/proc.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
export const VENV_BIN = join(ROOT, '.venv', 'bin');

/** Every server the harness can measure, in the order of the tables. */
export const SERVER_NAMES = ['uvicorn', 'corral', 'corral-spawn', 'gunicorn', 'granian'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];
/** What a run measures when --servers does not say: extra corral columns (corral-spawn) are asked
 *  for by name, so that the full run's duration does not grow with each of them. */
export const DEFAULT_SERVERS: readonly ServerName[] = ['uvicorn', 'corral', 'gunicorn', 'granian'];
/** The baseline every ratio is taken against. */
export const BASELINE: ServerName = 'uvicorn';

export const SERVER_LABELS: Record<ServerName, string> = {
  uvicorn: 'uvicorn --workers',
  corral: 'corral',
  'corral-spawn': 'corral (spawn)',
  gunicorn: 'gunicorn + UvicornWorker',
  granian: 'granian',
};

/** The program behind a server entry: several entries may run one program with other options. */
export type ServerFamily = 'uvicorn' | 'corral' | 'gunicorn' | 'granian';

/** A process below a server's master, as isWorker sees it. */
export interface TreeProcess {
  cmd: string;
  /** 1 = a child of the master */
  depth: number;
  /** the command line of its parent */
  parentCmd: string;
}

export interface LaunchOptions {
  appDir: string;
  workers: number;
  port: number;
  accessLog: boolean;
  /** dev mode: watch the app directory and restart on change */
  reload?: boolean;
}

export interface Command {
  cmd: string;
  args: string[];
}

export interface ServerSpec {
  name: ServerName;
  family: ServerFamily;
  /** options added to the family's command line (corral-spawn: --start-method spawn) */
  extraArgs: string[];
  command(o: LaunchOptions): Command;
  /** null when the server has the feature, otherwise why it cannot be measured */
  unsupported: { reload?: string; hup?: string; respawn?: string };
  /** Is this descendant of the master a worker (as opposed to a helper process, a fork server)? */
  isWorker(p: TreeProcess): boolean;
  /** A log line that one worker writes once it is ready to serve (after lifespan start-up). */
  readyLine?: RegExp;
  /** How it replaces its workers on HUP (read in its source, seen in its logs). */
  hupStrategy: string;
  /** Why the server cannot be launched at all on this machine, if it cannot. */
  missing(): string | undefined;
  /** Why this entry does not apply to the measured build (an option its --help does not list):
   *  the run then leaves the server out with that message instead of filling rows with errors. */
  skip?(): string | undefined;
}

const venv = (exe: string): string => join(VENV_BIN, exe);

/** The corral checkout whose bin/corral.js is measured: this one unless --corral DIR says another
 *  (to compare a branch's worktree against the same anchors). */
let corralRoot = ROOT;
export function setCorralRoot(dir: string): void {
  corralRoot = dir;
}
export const getCorralRoot = (): string => corralRoot;
const missingExe = (exe: string) => (): string | undefined =>
  existsSync(venv(exe)) ? undefined : `${venv(exe)} not found (run node scripts/bench-setup.mjs)`;

/** The long options (--name) of a command line. */
export const longOptions = (args: readonly string[]): string[] =>
  args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!);

/** The options of `want` that a --help text does not list (as a word of its own). */
export function unlistedOptions(help: string, want: readonly string[]): string[] {
  const words = new Set(help.split(/[\s,=[\]{}]+/));
  return want.filter((o) => !words.has(o));
}

const helpCache = new Map<string, string>();
/** `node bin/corral.js --help` of the measured checkout (once per checkout). */
function corralHelp(): string {
  const root = corralRoot;
  let text = helpCache.get(root);
  if (text === undefined) {
    try {
      text = execFileSync(process.execPath, [join(root, 'bin', 'corral.js'), '--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    } catch (e) {
      text = String((e as { stdout?: unknown }).stdout ?? '');
    }
    helpCache.set(root, text);
  }
  return text;
}

/** corral's fork server: `python … corral_worker.py --fork-server` (its forked workers inherit
 *  that command line; they are told apart by their depth). */
export const isForkServerCmd = (cmd: string): boolean => /fork[-_]server/i.test(cmd);

/** corral's workers: Python children of the master (spawned, or a fork server's fallback), or the
 *  children of a fork server (forked). Not workers: the fork servers, one-shot `python -c` helpers,
 *  and anything a worker starts itself. */
export function isCorralWorker(p: TreeProcess): boolean {
  const python = /python/.test(p.cmd) && !/ -c /.test(p.cmd);
  if (p.depth === 1) return python && !isForkServerCmd(p.cmd);
  return p.depth === 2 && isForkServerCmd(p.parentCmd) && !/ -c /.test(p.cmd);
}

/** A corral column: corral as the worktree (or --corral/--snapshot) has it, plus `extraArgs`. */
function corralSpec(name: ServerName, extraArgs: string[]): ServerSpec {
  return {
    name,
    family: 'corral',
    extraArgs,
    command: (o) => ({
      cmd: process.execPath,
      args: [
        join(corralRoot, 'bin', 'corral.js'),
        '-w', String(o.workers), '-b', `${HOST}:${o.port}`, '--app-dir', o.appDir,
        o.accessLog ? '--access-log' : '--no-access-log',
        ...(o.reload ? ['--reload'] : []),
        ...extraArgs,
        'app:app',
      ],
    }),
    unsupported: {},
    isWorker: isCorralWorker,
    hupStrategy: 'new workers (--max-surge at a time) ready, then the old ones drained',
    missing: () => {
      if (!existsSync(join(corralRoot, 'bin', 'corral.js'))) return `${join(corralRoot, 'bin', 'corral.js')} does not exist yet`;
      if (!existsSync(join(corralRoot, 'dist'))) return `${join(corralRoot, 'dist')} does not exist (npm run build)`;
      return undefined;
    },
    skip: () => {
      const want = longOptions(extraArgs);
      if (want.length === 0) return undefined;
      const absent = unlistedOptions(corralHelp(), want);
      return absent.length ? `\`node ${join(corralRoot, 'bin', 'corral.js')} --help\` does not list ${absent.join(', ')}` : undefined;
    },
  };
}

export const SERVERS: Record<ServerName, ServerSpec> = {
  uvicorn: {
    name: 'uvicorn',
    family: 'uvicorn',
    extraArgs: [],
    command: (o) => ({
      cmd: venv('uvicorn'),
      args: [
        ...(o.reload ? ['--reload', '--reload-dir', o.appDir] : ['--workers', String(o.workers)]),
        '--host', HOST, '--port', String(o.port), '--app-dir', o.appDir,
        ...(o.accessLog ? [] : ['--no-access-log']),
        'app:app',
      ],
    }),
    unsupported: {},
    // multiprocessing spawn children; the resource tracker is a helper
    isWorker: (p) => p.depth === 1 && p.cmd.includes('spawn_main'),
    readyLine: /Application startup complete/,
    hupStrategy: 'one at a time: new worker ready, then the old one terminated',
    missing: missingExe('uvicorn'),
  },
  gunicorn: {
    name: 'gunicorn',
    family: 'gunicorn',
    extraArgs: [],
    command: (o) => ({
      cmd: venv('gunicorn'),
      args: [
        '-k', 'uvicorn_worker.UvicornWorker', '-w', String(o.workers),
        '-b', `${HOST}:${o.port}`, '--chdir', o.appDir,
        // gunicorn 24+ opens a control socket at a fixed path shared by every instance: off, so
        // that two gunicorns (the bench's and a developer's) never fight over it
        '--no-control-socket',
        ...(o.accessLog ? ['--access-logfile', '-'] : []),
        ...(o.reload ? ['--reload'] : []),
        'app:app',
      ],
    }),
    unsupported: {},
    isWorker: (p) => p.depth === 1 && p.cmd.includes('gunicorn'),
    readyLine: /Application startup complete/,
    hupStrategy: 'all new workers forked, all old ones stopped at once: no readiness wait',
    missing: missingExe('gunicorn'),
  },
  granian: {
    name: 'granian',
    family: 'granian',
    extraArgs: [],
    command: (o) => ({
      cmd: venv('granian'),
      args: [
        '--interface', 'asgi', '--workers', String(o.workers),
        '--host', HOST, '--port', String(o.port), '--working-dir', o.appDir,
        // without it granian stops as a whole when one worker dies
        '--respawn-failed-workers',
        o.accessLog ? '--access-log' : '--no-access-log',
        ...(o.reload ? ['--reload', '--reload-paths', o.appDir] : []),
        'app:app',
      ],
    }),
    unsupported: {},
    isWorker: (p) => p.depth === 1,
    readyLine: /Started worker-\d+/,
    hupStrategy: 'one at a time: new worker started, 3.5 s sleep (--respawn-interval), old one stopped; readiness wait not supported',
    missing: missingExe('granian'),
  },
  corral: corralSpec('corral', []),
  // today's way of starting workers (a fresh interpreter each), once the fork server is the default
  'corral-spawn': corralSpec('corral-spawn', ['--start-method', 'spawn']),
};

export interface ReadyEvent {
  t: number; // performance.now() when the harness saw it
  pid?: number;
  worker?: number;
}

/** Reads a growing log file incrementally and collects worker-ready events. */
class LogTail {
  private offset = 0;
  private partial = '';
  readonly ready: ReadyEvent[] = [];
  readonly lines: string[] = []; // the last few lines, for error messages
  lineCount = 0;

  constructor(
    private readonly path: string,
    private readonly spec: ServerSpec,
  ) {}

  poll(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return;
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return;
      // never read more than 4 MiB per poll: access-log runs write a lot and need no parsing
      const len = Math.min(size - this.offset, 4 << 20);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, this.offset);
      this.offset += len;
      const text = this.partial + buf.toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      const t = now();
      for (const line of parts) this.onLine(line, t);
    } finally {
      closeSync(fd);
    }
  }

  private onLine(line: string, t: number): void {
    this.lineCount++;
    this.lines.push(line);
    if (this.lines.length > 40) this.lines.shift();
    if (this.spec.family === 'corral') {
      const ev = parseCorralReady(line);
      if (ev) this.ready.push({ ...ev, t });
    } else if (this.spec.readyLine?.test(line)) {
      this.ready.push({ t });
    }
  }
}

/** corral's master logs one JSON line per ready worker: msg contains "ready", with worker and pid. */
export function parseCorralReady(line: string): { pid: number; worker?: number } | undefined {
  if (!line.startsWith('{') || !line.includes('ready')) return undefined;
  try {
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (typeof rec.msg !== 'string' || !/\bready\b/i.test(rec.msg)) return undefined;
    if (typeof rec.pid !== 'number') return undefined;
    // pino puts the master's own pid in `pid` too; a worker line carries `worker`
    if (rec.worker === undefined) return undefined;
    return { pid: rec.pid, worker: typeof rec.worker === 'number' ? rec.worker : undefined };
  } catch {
    return undefined;
  }
}

export class LaunchError extends Error {}

export class RunningServer {
  readonly startedAt: number;
  private readonly tail: LogTail;
  private exitCode: number | null = null;
  private exitSignal: NodeJS.Signals | null = null;
  private exited = false;

  private constructor(
    readonly spec: ServerSpec,
    readonly opts: LaunchOptions,
    readonly pid: number,
    readonly logPath: string,
    startedAt: number,
    child: import('node:child_process').ChildProcess,
  ) {
    this.startedAt = startedAt;
    this.tail = new LogTail(logPath, spec);
    child.on('exit', (code, signal) => {
      this.exited = true;
      this.exitCode = code;
      this.exitSignal = signal;
    });
  }

  static launch(spec: ServerSpec, opts: LaunchOptions, logPath: string): RunningServer {
    const why = spec.missing();
    if (why) throw new LaunchError(why);
    const { cmd, args } = spec.command(opts);
    const out = openSync(logPath, 'w');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${VENV_BIN}:${process.env.PATH ?? ''}`,
      VIRTUAL_ENV: join(ROOT, '.venv'),
      // granian logs to stdout: without this its "Started worker" lines would sit in a buffer
      PYTHONUNBUFFERED: '1',
      // no config from the developer's environment leaks into a measurement
      WEB_CONCURRENCY: undefined,
      PORT: undefined,
    };
    for (const k of Object.keys(env)) if (env[k] === undefined || /^(CORRAL_|GRANIAN_|UVICORN_)/.test(k)) delete env[k];
    const startedAt = now();
    const child = spawn(cmd, args, { cwd: opts.appDir, env, detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    if (child.pid === undefined) throw new LaunchError(`could not spawn ${cmd}`);
    trackGroup(child.pid);
    child.on('error', () => undefined);
    return new RunningServer(spec, opts, child.pid, logPath, startedAt, child);
  }

  get name(): ServerName {
    return this.spec.name;
  }

  get port(): number {
    return this.opts.port;
  }

  get alive(): boolean {
    return !this.exited && isAlive(this.pid);
  }

  /** Reads new log output; returns the ready events so far. */
  readyEvents(): ReadyEvent[] {
    this.tail.poll();
    return this.tail.ready;
  }

  /** How many log lines the server wrote so far. */
  logLineCount(): number {
    this.tail.poll();
    return this.tail.lineCount;
  }

  logTail(n = 15): string {
    this.tail.poll();
    return this.tail.lines.slice(-n).join('\n');
  }

  /** Throws when the master is gone (so that a poll does not wait for its whole deadline). */
  assertAlive(): void {
    if (!this.alive) {
      const how = this.exitSignal ? ` (signal ${this.exitSignal})` : this.exitCode !== null ? ` (code ${this.exitCode})` : '';
      throw new LaunchError(`${this.name}'s master exited${how}; last log lines:\n${this.logTail()}`);
    }
  }

  /** Current worker pids, sorted. */
  workerPids(): number[] {
    const tree = descendants(this.pid, listProcesses());
    const cmds = new Map<number, string>();
    const cmdOf = (pid: number): string => {
      let c = cmds.get(pid);
      if (c === undefined) cmds.set(pid, (c = readCmdline(pid)));
      return c;
    };
    return tree
      .filter((p) => this.spec.isWorker({ cmd: cmdOf(p.pid), depth: p.depth, parentCmd: cmdOf(p.ppid) }))
      .map((p) => p.pid)
      .sort((a, b) => a - b);
  }

  /** Every process of the server: master, workers and helpers. */
  treePids(): number[] {
    return [this.pid, ...descendants(this.pid).map((p) => p.pid)];
  }

  /** Worker pids that are known to be ready: for corral exactly (pid in a ready line); for the
   *  others, the newest `count(ready lines)` workers are taken as ready. */
  readyWorkers(since = 0): { ready: number; pids: number[] } {
    const events = this.readyEvents().filter((e) => e.t >= since);
    const pids = this.workerPids();
    if (this.spec.family === 'corral') {
      const readyPids = new Set(events.map((e) => e.pid));
      return { ready: pids.filter((p) => readyPids.has(p)).length, pids };
    }
    return { ready: Math.min(events.length, pids.length), pids };
  }

  /** Waits until `workers` workers are up and ready and GET / answers 200. */
  async waitAllReady(timeoutMs: number): Promise<number> {
    const n = this.opts.workers;
    await pollUntil(
      `${this.name}: ${n} ready workers`,
      async () => {
        this.assertAlive();
        const { ready, pids } = this.readyWorkers();
        if (ready < n || pids.length < n) return false;
        const res = await tryGet(this.port, '/', 1000);
        return res?.status === 200 ? true : false;
      },
      { timeoutMs, intervalMs: 25 },
    );
    return now() - this.startedAt;
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  /** Kill the whole process group; idempotent. */
  stop(): void {
    releaseGroup(this.pid);
  }
}

/** Launch, run `body`, and always kill the process group afterwards. */
export async function withServer<T>(
  spec: ServerSpec,
  opts: LaunchOptions,
  logPath: string,
  body: (s: RunningServer) => Promise<T>,
): Promise<T> {
  const server = RunningServer.launch(spec, opts, logPath);
  try {
    return await body(server);
  } finally {
    server.stop();
    // wait for the group to be gone so that the next measurement starts on a quiet machine
    await pollUntil(
      `${spec.name} process group to exit`,
      () => !listProcesses().some((p) => p.pgrp === server.pid),
      { timeoutMs: 10_000, intervalMs: 20 },
    ).catch(() => undefined);
  }
}
