import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBounded } from './bounded-run.js';
import { CorralError, ExitCode } from '../exit-codes.js';
import type { WorkerClassConfig } from './resolve.js';
import { UVICORN_WORKER_CLASSES } from './settings-table.js';

/**
 * gunicorn worker classes (`-k`, `worker_class`) that corral does not know by name: a UvicornWorker
 * subclass is imported once at start by the workers' Python (src/python/corral_runtime/worker_class.py)
 * to check it and read its CONFIG_KWARGS; src/config/config-kwargs.ts applies them.
 */

/** The one-shot Python that reads config files; it checks worker classes in the same run. */
export const DUMP_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'python', 'corral_config_dump.py');

/** What the check imports, and how: the same in the one-shot check and in every worker. */
export interface WorkerClassRequest {
  name: string;
  /** Directories put first on sys.path, in order: --pythonpath, the app directory, --chdir, the config file's. */
  paths: string[];
  /** -e KEY=VALUE, set before the import as gunicorn's master sets them. */
  env: Record<string, string>;
  /** For a class defined in the config file (`__config__.Name`). */
  config_file: string | null;
}

export type WorkerClassResult =
  | {
      base: string;
      h11: boolean;
      /** Present when the user's classes define CONFIG_KWARGS (else the base's apply, as corral's defaults). */
      config_kwargs?: Record<string, unknown>;
      /** CONFIG_KWARGS values JSON cannot hold, with their repr: the workers take them from the class. */
      unreadable?: Record<string, string>;
      /** uvicorn.Config's keywords in the workers' uvicorn. */
      config_params?: string[];
    }
  | { refused: 'not-a-class'; type: string }
  | { refused: 'not-uvicorn'; bases: string[] }
  | { refused: 'overrides'; base: string; methods: string[] }
  | { refused: 'bad-config-kwargs'; repr: string }
  | { import_error: string; traceback: string; missing_gunicorn: boolean };

export interface WorkerClassInspection {
  request: WorkerClassRequest;
  result: WorkerClassResult;
}

/** gunicorn's own worker classes, by the short names its -k takes. */
export const GUNICORN_WORKER_NAMES: ReadonlySet<string> = new Set(['sync', 'gthread', 'gevent', 'gevent_wsgi', 'gevent_pywsgi', 'eventlet', 'tornado']);

/**
 * Whether a worker class needs importing to be judged: not a name corral takes as it is, and not one
 * it refuses by name (gunicorn's own classes, entry points, names without a module).
 */
export function needsInspection(name: string): boolean {
  return !(name in UVICORN_WORKER_CLASSES) && name.includes('.') && !name.startsWith('egg:') && !name.startsWith('gunicorn.workers.');
}

/** The request the workers' sys.path and environment make, from the resolved settings. */
export function workerClassRequest(
  name: string,
  settings: { pythonPath: string[]; appDir: string; rawEnv: Record<string, string>; configFile: string | undefined },
  cwd: string,
): WorkerClassRequest {
  const configFile = settings.configFile ?? null;
  const paths = [
    ...settings.pythonPath.map((dir) => path.resolve(cwd, dir)),
    path.resolve(cwd, settings.appDir),
    cwd,
    ...(configFile && !configFile.startsWith('python:') ? [path.dirname(configFile)] : []),
  ];
  return { name, paths: [...new Set(paths)], env: settings.rawEnv, config_file: configFile };
}

export function sameRequest(a: WorkerClassRequest, b: WorkerClassRequest): boolean {
  const canonical = (request: WorkerClassRequest) =>
    JSON.stringify([request.name, request.paths, Object.entries(request.env).sort(), request.config_file]);
  return canonical(a) === canonical(b);
}

/** Imports the class with the workers' Python: one run, before anything is bound, never blocking the loop (HUP checks again). */
export async function inspectWorkerClass(python: string, request: WorkerClassRequest, env: NodeJS.ProcessEnv): Promise<WorkerClassInspection> {
  const run = await runBounded(python, [DUMP_SCRIPT, '', JSON.stringify({ exact: request })], {
    cwd: process.cwd(),
    env,
    timeoutMs: 60_000,
    maxOutputBytes: 1024 * 1024,
  });
  const cannot = (why: string) => new CorralError(`Python ${JSON.stringify(python)} cannot be run to import the worker class ${request.name}: ${why}`, ExitCode.runtime);
  if (run.outcome === 'failed') throw cannot(run.error.message);
  if (run.outcome === 'timeout') throw cannot('still importing after 60 s');
  if (run.outcome === 'too-much-output') throw cannot(`it printed more than 1 MiB on ${run.stream}`);
  if (run.outcome === 'aborted') throw cannot('corral is stopping');
  try {
    const answer = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as { worker_class?: WorkerClassInspection };
    if (answer.worker_class) return answer.worker_class;
  } catch {
    // Reported below.
  }
  const detail = run.stderr.trim().split('\n').pop() || (run.signal ? `killed by ${run.signal}` : `exit code ${run.code}`);
  throw new CorralError(`importing the worker class ${request.name} with ${python} failed: ${detail}`, ExitCode.runtime);
}

/** The settings the check needs from the resolved configuration (a CorralConfig). */
interface CheckedConfig {
  python: string;
  pythonPath: string[];
  appDir: string;
  rawEnv: Record<string, string>;
  configFile: { path: string } | undefined;
}

/**
 * Checks a worker class for main: the config-file reader's answer when it checked the same request
 * with the same Python, else one run of its own.
 */
export async function checkWorkerClass(
  name: string,
  config: CheckedConfig,
  fromReader: { inspection: WorkerClassInspection | undefined; python: string },
  env: NodeJS.ProcessEnv,
): Promise<WorkerClassInspection> {
  const request = workerClassRequest(name, { ...config, configFile: config.configFile?.path }, process.cwd());
  const { inspection } = fromReader;
  if (inspection && fromReader.python === config.python && sameRequest(inspection.request, request)) return inspection;
  return inspectWorkerClass(config.python, request, { ...env, ...config.rawEnv });
}

/** What a worker needs to import the class itself (src/python/corral_runtime/worker_class.py load_in_worker). */
export function workerClassSettings(workerClass: WorkerClassConfig | undefined): Record<string, unknown> {
  if (!workerClass || workerClass.pending) return {};
  return { worker_class: { name: workerClass.name, paths: workerClass.paths, config_file: workerClass.configFile, passthrough: workerClass.passthrough } };
}
