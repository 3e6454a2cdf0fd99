import fs from 'node:fs';
import path from 'node:path';
import { runBounded, type BoundedRunResult } from './bounded-run.js';
import { UsageError } from '../exit-codes.js';
import { DUMP_SCRIPT, type WorkerClassInspection } from './worker-class.js';

/** gunicorn's default config file, read when present and no -c is given. */
export const DEFAULT_CONFIG_FILE = './gunicorn.conf.py';

/** How long a config file may run, and how much it may print (the JSON of its settings included). */
export interface ConfigFileLimits {
  timeoutMs: number;
  maxOutputBytes: number;
}

export const CONFIG_FILE_LIMITS: ConfigFileLimits = { timeoutMs: 30_000, maxOutputBytes: 1024 * 1024 };

export interface ReadConfigFileOptions {
  limits?: ConfigFileLimits;
  /** Aborting stops the run (the master is stopping); the read then rejects. */
  signal?: AbortSignal;
  /** A worker class to check in the same run (src/config/worker-class.ts). */
  workerClassHint?: WorkerClassHint;
}

/** What the reader needs to check a worker class in the same run: the values set above the file, and the class names corral knows. */
export interface WorkerClassHint {
  upper: Record<string, unknown>;
  known: string[];
}

function describeBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

/** The one line that says why running the file gave no settings. */
function runFailure(given: string, python: string, run: Exclude<BoundedRunResult, { outcome: 'exited' }>, limits: ConfigFileLimits): string {
  const file = `--config ${JSON.stringify(given)}`;
  switch (run.outcome) {
    case 'too-much-output':
      return run.stream === 'stderr'
        ? `${file}: printed more than ${describeBytes(limits.maxOutputBytes)} while it ran; a config file should set values, not print`
        : `${file}: its settings take more than ${describeBytes(limits.maxOutputBytes)} as JSON`;
    case 'timeout':
      return `${file}: still running after ${limits.timeoutMs / 1000} s, the time corral gives a config file; make it finish sooner`;
    case 'aborted':
      return `${file}: reading it was abandoned (corral is stopping)`;
    case 'failed':
      return `${file}: cannot run Python ${JSON.stringify(python)} to read it: ${run.error.message}`;
  }
}

/** A config file's contents as corral sees them: plain values, and the functions it defines. */
export interface ConfigFileContents {
  /** As given (-c value) and as an absolute path ("" for python:module). */
  given: string;
  path: string;
  settings: Record<string, unknown>;
  /** Every module-level function, by name, with its number of parameters. */
  functions: Record<string, { arity: number }>;
  /** Values JSON cannot hold, with their repr. */
  unreadable: Record<string, string>;
  /** What running the file printed (gunicorn shows it once, at start). */
  printed?: string;
  /** The check of a worker class made in the same run (src/config/worker-class.ts), when the file and `aboveFile` settled it. */
  workerClass?: WorkerClassInspection;
}

/**
 * Reads a config file: a `.py` file or `python:module` by running `python` to dump its settings
 * as JSON (the file is Python code and may compute its values), a `.json` file directly.
 * A missing or failing file is a configuration error. The file runs in a child process that never
 * blocks the master's event loop (HUP re-reads it while workers are served), bounded in time and output.
 */
export async function readConfigFile(given: string, python: string, cwd = process.cwd(), options: ReadConfigFileOptions = {}): Promise<ConfigFileContents> {
  const limits = options.limits ?? CONFIG_FILE_LIMITS;
  const isModule = given.startsWith('python:');
  const absolute = isModule ? '' : path.resolve(cwd, given);
  if (!isModule && !(await fs.promises.stat(absolute).then(() => true, () => false))) {
    throw new UsageError(`--config ${JSON.stringify(given)}: no such file`);
  }
  if (absolute.endsWith('.json')) {
    let settings: unknown;
    try {
      settings = JSON.parse(await fs.promises.readFile(absolute, 'utf8'));
    } catch (error) {
      throw new UsageError(`--config ${JSON.stringify(given)}: not valid JSON: ${(error as Error).message}`);
    }
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new UsageError(`--config ${JSON.stringify(given)}: expected a JSON object keyed by setting name`);
    }
    return { given, path: absolute, settings: settings as Record<string, unknown>, functions: {}, unreadable: {} };
  }
  const hint = options.workerClassHint;
  const args = [DUMP_SCRIPT, isModule ? given : absolute, ...(hint ? [JSON.stringify({ speculate: hint })] : [])];
  const run = await runBounded(python, args, { cwd, ...limits, ...(options.signal ? { signal: options.signal } : {}) });
  if (run.outcome !== 'exited') throw new UsageError(runFailure(given, python, run, limits));
  let answer: {
    error?: string;
    settings?: Record<string, unknown>;
    functions?: Record<string, { arity: number }>;
    unreadable?: Record<string, string>;
    worker_class?: WorkerClassInspection;
  };
  try {
    answer = JSON.parse(run.stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new UsageError(`--config ${JSON.stringify(given)}: reading it with ${python} failed: ${run.stderr.trim().split('\n').pop() || (run.signal ? `killed by ${run.signal}` : `exit code ${run.code}`)}`);
  }
  if (answer.error !== undefined) throw new UsageError(`--config ${JSON.stringify(given)}: the file failed to run: ${answer.error}`);
  return {
    given,
    path: absolute,
    settings: answer.settings ?? {},
    functions: answer.functions ?? {},
    unreadable: answer.unreadable ?? {},
    printed: run.stderr,
    ...(answer.worker_class ? { workerClass: answer.worker_class } : {}),
  };
}
