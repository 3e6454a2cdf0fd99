import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from './exit-codes.js';
import { DUMP_SCRIPT, type WorkerClassInspection } from './worker-class.js';

/** gunicorn's default config file, read when present and no -c is given. */
export const DEFAULT_CONFIG_FILE = './gunicorn.conf.py';

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
  /** The check of a worker class made in the same run (src/worker-class.ts), when the file and `aboveFile` settled it. */
  workerClass?: WorkerClassInspection;
}

/** What the reader needs to check a worker class in the same run: the values set above the file, and the class names corral knows. */
export interface WorkerClassHint {
  upper: Record<string, unknown>;
  known: string[];
}

/**
 * Reads a config file: a `.py` file or `python:module` by running `python` to dump its settings
 * as JSON (the file is Python code and may compute its values), a `.json` file directly.
 * A missing or failing file is a configuration error.
 */
export function readConfigFile(given: string, python: string, cwd = process.cwd(), hint?: WorkerClassHint): ConfigFileContents {
  const isModule = given.startsWith('python:');
  const absolute = isModule ? '' : path.resolve(cwd, given);
  if (!isModule && !fs.existsSync(absolute)) {
    throw new UsageError(`--config ${JSON.stringify(given)}: no such file`);
  }
  if (absolute.endsWith('.json')) {
    let settings: unknown;
    try {
      settings = JSON.parse(fs.readFileSync(absolute, 'utf8'));
    } catch (error) {
      throw new UsageError(`--config ${JSON.stringify(given)}: not valid JSON: ${(error as Error).message}`);
    }
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new UsageError(`--config ${JSON.stringify(given)}: expected a JSON object keyed by setting name`);
    }
    return { given, path: absolute, settings: settings as Record<string, unknown>, functions: {}, unreadable: {} };
  }
  const args = [DUMP_SCRIPT, isModule ? given : absolute, ...(hint ? [JSON.stringify({ speculate: hint })] : [])];
  const run = spawnSync(python, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (run.error) {
    throw new UsageError(`--config ${JSON.stringify(given)}: cannot run Python ${JSON.stringify(python)} to read it: ${run.error.message}`);
  }
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
    throw new UsageError(`--config ${JSON.stringify(given)}: reading it with ${python} failed: ${run.stderr.trim().split('\n').pop() ?? `exit code ${run.status}`}`);
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
