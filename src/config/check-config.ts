import { spawnSync } from 'node:child_process';
import type { CorralConfig } from './resolve.js';
import { WORKER_ENTRY } from '../worker/python.js';
import { workerEnvironment } from '../worker/worker-config.js';

export interface CheckResult {
  ok: boolean;
  output: string;
}

/**
 * --check-config: imports the app with the configured Python and environment, through the worker
 * entry's `--check-app` (corral_runtime/main.py check_app): the workers' own loader (app dir,
 * --pythonpath, env file, factory or factory call), so a broken import shows up before deployment
 * rather than as a boot failure.
 */
export function checkAppImports(config: CorralConfig, env: NodeJS.ProcessEnv): CheckResult {
  const settings = { app: config.app, app_dir: config.appDir, factory: config.factory, uvicorn: { env_file: config.uvicorn.env_file ?? null } };
  // The environment a worker gets (-e, --pythonpath before the app's own directories).
  const childEnv: NodeJS.ProcessEnv = { ...workerEnvironment(env, config), CORRAL_WORKER_CONFIG: JSON.stringify(settings) };
  const run = spawnSync(config.python, ['-u', WORKER_ENTRY, '--check-app'], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
  if (run.error) return { ok: false, output: `cannot run Python ${JSON.stringify(config.python)}: ${run.error.message}` };
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}`.trim() };
}
