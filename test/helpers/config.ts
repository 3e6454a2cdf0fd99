import { expect } from 'vitest';
import type { ConfigFileContents } from '../../src/config/config-file.js';
import { parseCommandLine, type CorralConfig, type ParseContext } from '../../src/config/resolve.js';
import type { WorkerClassResult } from '../../src/config/worker-class.js';

/** What readConfigFile would return for /srv/gunicorn.conf.py holding `file` (nothing, by default). */
export function configFileContents(file: Partial<ConfigFileContents>): ConfigFileContents {
  return { given: 'gunicorn.conf.py', path: '/srv/gunicorn.conf.py', settings: {}, functions: {}, unreadable: {}, ...file };
}

/** The configuration parseCommandLine resolves for `argv` with `context`; the test fails if it is an action (help, print-config) instead. */
export function resolveConfig(argv: readonly string[], env: NodeJS.ProcessEnv = {}, context: ParseContext = {}): CorralConfig {
  const parsed = parseCommandLine(argv, env, context);
  if (!('config' in parsed)) return expect.fail(`expected a configuration, got ${parsed.kind}`);
  return parsed.config;
}

/** The worker class every resolveChecked() names. */
export const CHECKED_CLASS = 'app.workers.W';

/** The keywords uvicorn.Config takes, as far as these tests use them. */
const CONFIG_PARAMS = ['loop', 'http', 'headers', 'server_header', 'timeout_keep_alive', 'forwarded_allow_ips', 'proxy_headers', 'ws_ping_interval', 'log_level', 'host', 'limit_max_requests', 'log_config', 'ssl_context_factory'];

/** `-k CHECKED_CLASS` resolved once the workers' Python has checked the class and found `result`. */
export function resolveChecked(argv: string[], result: WorkerClassResult, file?: Partial<ConfigFileContents>): CorralConfig {
  const request = { name: CHECKED_CLASS, paths: ['/srv/app'], env: {}, config_file: null };
  return resolveConfig([...argv, 'app:app'], {}, { configFile: file ? configFileContents(file) : undefined, workerClass: { request, result } });
}

/** A UvicornWorker subclass's check result: its CONFIG_KWARGS, and those JSON cannot hold (`unreadable`). */
export function withConfigKwargs(config_kwargs: Record<string, unknown>, unreadable: Record<string, string> = {}): WorkerClassResult {
  return { base: 'uvicorn.workers.UvicornWorker', h11: false, config_kwargs, unreadable, config_params: CONFIG_PARAMS };
}
