import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CORRAL = path.join(ROOT, 'bin', 'corral.js');
export const VENV_PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
export const TEST_APPS = path.join(ROOT, 'test', 'apps');

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<Awaited<T>>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Reads `read()` until `done(value)` holds or the deadline passes, and returns the last value read
 * either way: the caller asserts on it with expect(), so a failure shows what was there, not a timeout.
 */
export async function pollUntil<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A port that was free a moment ago on this address. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** SIGKILLs the whole process group `pgid` (a process started detached, and all it started); a group already gone is no error. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Whether the process exists and is not a zombie (an orphan's zombie may wait long for its reaper). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export type LogRecord = Record<string, unknown> & { msg?: string; level?: number };

export interface CorralOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A command line put before `node bin/corral.js …`. */
  wrapper?: readonly string[];
  /** An fd for the master's stdout (a file, a pipe the test holds) instead of the pipe the helper reads. */
  stdout?: number;
}

const running = new Set<Corral>();

/** A real corral master (bin/corral.js) in its own process group, with its log collected. */
export class Corral {
  readonly child: ChildProcess;
  readonly records: LogRecord[] = [];
  readonly stdoutLines: string[] = [];
  stderr = '';
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;

  constructor(args: readonly string[], options: CorralOptions = {}) {
    // A wrapper (systemd-socket-activate, unshare) runs first and execs or forks the master.
    const [command, ...commandArgs] = [...(options.wrapper ?? []), process.execPath, CORRAL, ...args];
    this.child = spawn(command!, commandArgs, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
      detached: true,
    });
    running.add(this);
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.stdoutLines.push(line);
        try {
          this.records.push(JSON.parse(line) as LogRecord);
        } catch {
          // Not JSON: kept in stdoutLines only.
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get output(): string {
    return `${this.stdoutLines.join('\n')}\n${this.stderr}`;
  }

  find(predicate: (record: LogRecord) => boolean): LogRecord[] {
    return this.records.filter(predicate);
  }

  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs = 15_000, what = 'a log record'): Promise<LogRecord> {
    return waitFor(() => this.records.find(predicate), timeoutMs, `${what}; log so far:\n${this.output.slice(-3000)}`);
  }

  /** The pids of the workers the master reports ready and that are still alive. */
  readyWorkerPids(): number[] {
    const exited = new Set(this.find((r) => typeof r.msg === 'string' && /^worker (exited|died)/.test(r.msg)).map((r) => r.pid));
    const ready = this.find((r) => r.msg === 'worker ready').map((r) => r.pid as number);
    return [...new Set(ready)].filter((pid) => !exited.has(pid) && isAlive(pid));
  }

  async waitForReadyWorkers(count: number, timeoutMs = 20_000): Promise<number[]> {
    return waitFor(
      () => {
        const pids = this.readyWorkerPids();
        return pids.length >= count ? pids : undefined;
      },
      timeoutMs,
      `${count} ready workers; log so far:\n${this.output.slice(-3000)}`,
    );
  }

  /** The ready workers once `count` of them are ready besides `gone` (a worker killed or aborted), within `timeoutMs` (the machine's speed). */
  async waitForReplacement(gone: number, count: number, timeoutMs = 20_000): Promise<number[]> {
    return waitFor(
      () => {
        const pids = this.readyWorkerPids().filter((pid) => pid !== gone);
        return pids.length >= count ? pids : undefined;
      },
      timeoutMs,
      `${count} ready workers besides ${gone}; log so far:\n${this.output.slice(-3000)}`,
    );
  }

  signal(signal: NodeJS.Signals): void {
    process.kill(this.pid, signal);
  }

  async waitForExit(timeoutMs = 20_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`corral did not exit within ${timeoutMs} ms; log:\n${this.output.slice(-3000)}`)), timeoutMs);
    });
    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.exitCode ?? null;
  }

  /** Kills the whole process group: the master and every worker. */
  killGroup(): void {
    killGroup(this.pid);
    running.delete(this);
  }
}

/** Starts corral with the test virtualenv's Python. */
export function startCorral(args: readonly string[], options: CorralOptions = {}): Corral {
  return new Corral(['--python', VENV_PYTHON, '--log-format', 'json', ...args], options);
}

export interface AppOptions extends CorralOptions {
  /** The app, a module of test/apps (app:app by default). */
  app?: string;
}

/** corral serving a test app (test/apps) on a free loopback port, with `args` before the bind; it is not waited for. */
export async function startApp(args: readonly string[] = [], options: AppOptions = {}): Promise<{ corral: Corral; port: number }> {
  const port = await freePort();
  const { app = 'app:app', ...corralOptions } = options;
  const corral = startCorral([...args, '-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, app], corralOptions);
  return { corral, port };
}

/** Kills every corral this test file started; call it from afterEach. */
export function killAllCorrals(): void {
  for (const corral of [...running]) corral.killGroup();
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One HTTP GET on a fresh connection. */
export function get(
  target: { port: number; host?: string } | { socketPath: string },
  urlPath = '/',
  timeoutMs = 10_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { ...target, path: urlPath, agent: false, timeout: timeoutMs, headers: { connection: 'close' } },
      (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** Every pid in the process group `pgid` that is still alive. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const members: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state, fields[2] the process group; zombies are already dead.
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return members;
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin/corral.js ARGS` to completion (a client command such as `corral status`, --print-config,
 * --check-config) in its own process group, killed with it after `timeoutMs`; `env` is added to this
 * process's environment.
 */
export function runCorralCommand(args: readonly string[], timeoutMs = 30_000, options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CORRAL, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => killGroup(child.pid!), timeoutMs);
    // 'close', not 'exit': the output is all read only once the pipes have closed.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON records in a log file written so far (a missing file has none). */
export function readRecords(file: string): LogRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogRecord);
}
