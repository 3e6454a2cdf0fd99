import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isControlCommand } from '../control/commands.js';

/**
 * corral as PID 1 of a container with no init (CMD ["corral", …] and no tini). Node cannot reap the
 * orphans that the app's subprocesses leave behind (libuv waits only for its own children), so here
 * corral puts its own init, src/python/corral_init.py, in front of the real master: that process
 * runs no app code, reaps every orphan, forwards the operator's signals and exits with the master's code.
 *
 * - Where Node has process.execve (22.15+, 24), this process becomes the init: PID 1 is a small
 *   Python, the master its child.
 * - On Node 20 this Node process must stay PID 1 (its exit would end the container): it starts the
 *   init as its child, a child subreaper, and relays signals to it; the orphans of everything below
 *   go to that subreaper. So it does on any Node when systemd passed sockets (LISTEN_FDS) to PID 1.
 *
 * This module is loaded by bin/corral.js before the rest of corral, so the Node that stays PID 1
 * holds as little as it can.
 */

/** The init's process name, which the master reads from /proc/PPID/comm. */
export const INIT_NAME = 'corral-init';
export const INIT_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'python', 'corral_init.py');

/**
 * gunicorn's signals, relayed to the init (which relays them to the master). The master's signal table
 * (src/master.ts) is typed by this list, so the two cannot drift apart.
 */
export const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const satisfies readonly NodeJS.Signals[];

/** Why this corral runs as PID 1 without its init, when it tried and could not start it. */
let unavailable: string | undefined;
export function initUnavailableReason(): string | undefined {
  return unavailable;
}

/** The interpreters the init may run on, best first: any Python 3 will do, it uses the standard library only. */
export function initInterpreterCandidates(configured: string | undefined): string[] {
  return [...new Set([...(configured ? [configured] : []), 'python3'])];
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** A command name resolved as execvp would (PATH for a bare name), or undefined when nothing runs. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv, isExecutable: (file: string) => boolean = isExecutableFile): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? path.resolve(name) : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The init's argv: Python in isolated mode without site (no app's sitecustomize, less memory), then the master's command. */
export function initArgv(python: string, master: readonly string[]): string[] {
  return [python, '-I', '-S', INIT_ENTRY, ...master];
}

/** A child's end as a shell reports it: its code, or 128 + the signal's number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

/** The interpreter the init runs on: --python as the master will read it (command line, CMD_ARGS, CORRAL_PYTHON), else python3. */
async function initPython(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<{ python?: string; tried: string[] }> {
  let configured: string | undefined;
  try {
    configured = (await import('../config/resolve.js')).preliminarySettings(argv, env).python;
  } catch {
    // A usage error: the master will report it; the init runs on python3.
  }
  const tried = initInterpreterCandidates(configured);
  for (const candidate of tried) {
    const python = findExecutable(candidate, env);
    if (python) return { python, tried };
  }
  return { tried };
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Node 20: this process stays PID 1, with the init as its child; resolves with the init's exit code.
 * systemd's sockets (LISTEN_FDS, meant for this process) go down to the init, which hands them on.
 */
function relayThroughInit(argv: string[], listenFds: readonly number[]): Promise<number | undefined> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['inherit', 'inherit', 'inherit', ...listenFds] });
    const relay = (signal: NodeJS.Signals) => {
      try {
        child.kill(signal);
      } catch {
        // The init has gone; its exit ends this process.
      }
    };
    // Not the master's signal handlers (those are src/master.ts's table): this Node stays PID 1 in front
    // of the init and only passes the operator's signals down to it.
    for (const signal of FORWARDED_SIGNALS) process.on(signal, relay);
    const stopRelaying = () => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, relay);
    };
    child.once('error', (error) => {
      stopRelaying();
      unavailable = `${argv[0]}: ${error.message}`;
      resolve(undefined);
    });
    child.once('exit', (code, signal) => {
      stopRelaying();
      resolve(exitCodeOf(code, signal));
    });
  });
}

/**
 * When this process is PID 1 and about to run the server: runs corral behind its init. Resolves with
 * the exit code to end with (Node 20), never returns (execve), or resolves undefined when corral
 * should run here as it is — not PID 1, a client subcommand, or no init could start (then
 * initUnavailableReason() says why, and the master warns).
 */
export async function runBehindInitIfPidOne(args: readonly string[], pid = process.pid): Promise<number | undefined> {
  if (pid !== 1 || isControlCommand(args[0])) return undefined;
  const { python, tried } = await initPython(args, process.env);
  if (!python) {
    unavailable = `no Python to run it: ${tried.join(', ')} not found`;
    return undefined;
  }
  const argv = initArgv(python, [process.execPath, ...process.execArgv, process.argv[1]!, ...args]);
  const listenFds = (await import('./sockets.js')).systemdListenFds(process.env);
  const execve = (process as unknown as { execve?: Execve }).execve;
  // Node marks inherited descriptors close-on-exec: systemd's sockets survive only a spawn, which passes them.
  if (typeof execve === 'function' && listenFds.length === 0) {
    try {
      execve.call(process, argv[0]!, argv, process.env);
    } catch {
      // execve returns only on failure: the init runs as a child instead.
    }
  }
  return relayThroughInit(argv, listenFds);
}
