import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CorralConfig } from './resolve.js';

/** The worker runtime's directory: the check loads the app with the workers' own code. */
const RUNTIME_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'python');

// Imports the app once the way a worker does (app dir, pythonpath, env file, factory or factory call),
// so a broken import shows up before deployment rather than as a boot failure.
const CHECK_SCRIPT = `
import json, os, sys, traceback
settings = json.loads(sys.argv[1])
sys.path.append(settings["runtime"])
for directory in reversed(settings["path"]):
    sys.path.insert(0, os.path.abspath(directory))
if settings["env_file"]:
    from dotenv import load_dotenv
    load_dotenv(settings["env_file"])
try:
    from corral_runtime.app_target import load_app_target
    app = load_app_target(settings["app"], settings["factory"])
except BaseException as exc:
    traceback.print_exc()
    print(f"cannot import the app {settings['app']!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
`;
export interface CheckResult {
  ok: boolean;
  output: string;
}

/** --check-config: imports the app with the configured Python and environment. */
export function checkAppImports(config: CorralConfig, env: NodeJS.ProcessEnv): CheckResult {
  const settings = {
    app: config.app,
    factory: config.factory,
    path: [config.appDir, ...config.pythonPath],
    env_file: config.uvicorn.env_file ?? null,
    runtime: RUNTIME_DIR,
  };
  const run = spawnSync(config.python, ['-c', CHECK_SCRIPT, JSON.stringify(settings)], {
    env: { ...env, ...config.rawEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (run.error) return { ok: false, output: `cannot run Python ${JSON.stringify(config.python)}: ${run.error.message}` };
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}`.trim() };
}
