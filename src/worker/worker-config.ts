import path from 'node:path';
import type { CorralConfig } from '../config/resolve.js';
import { workerClassSettings } from '../config/worker-class.js';
import { INHERITED_LISTENERS, UPGRADE_FD, UPGRADE_FROM } from '../platform/upgrade.js';

/**
 * What a worker is told at its start: its environment, and its settings, which travel as JSON in
 * CORRAL_WORKER_CONFIG (read by src/python/corral_runtime). Both follow the live configuration, so a
 * HUP's re-read reaches every worker started after it.
 */

/** Variables that belong to the master alone (systemd's, a USR2 hand-over's), never to a worker. */
const MASTER_ONLY_ENV = [
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'NOTIFY_SOCKET',
  'WATCHDOG_USEC',
  'WATCHDOG_PID',
  UPGRADE_FROM,
  UPGRADE_FD,
  INHERITED_LISTENERS,
];

export function workerEnvironment(env: NodeJS.ProcessEnv, config: CorralConfig): NodeJS.ProcessEnv {
  const copy = { ...env, ...config.rawEnv };
  for (const name of MASTER_ONLY_ENV) delete copy[name];
  // gunicorn's --pythonpath: directories searched before the app's own.
  if (config.pythonPath.length > 0) {
    const dirs = config.pythonPath.map((dir) => path.resolve(dir));
    copy.PYTHONPATH = [...dirs, ...(copy.PYTHONPATH ? [copy.PYTHONPATH] : [])].join(path.delimiter);
  }
  return copy;
}

/** What the worker entry needs to run a config file's worker-side hooks. */
function hookSettings(config: CorralConfig): Record<string, unknown> {
  if (!config.configFile || config.configFile.workerHooks.length === 0) return {};
  const cfg: Record<string, unknown> = {};
  for (const [name, resolved] of Object.entries(config.settings)) cfg[name] = resolved.value;
  return { hooks: { file: config.configFile.path, names: config.configFile.workerHooks, cfg, master_pid: process.pid } };
}

/** How often a worker reports: six beats per timeout, and no more than one each 5 s (the master's idle CPU). */
export function heartbeatInterval(timeoutSeconds: number): number {
  if (timeoutSeconds <= 0) return 5;
  return Math.min(5, Math.max(0.1, timeoutSeconds / 6));
}

/** The worker's settings from the configuration; the ProcessWorker adds its slot and descriptors. */
export function workerSettings(config: CorralConfig): Record<string, unknown> {
  return {
    app: config.app,
    app_dir: config.appDir,
    factory: config.factory,
    log_level: config.logLevel,
    access_log: config.accessLog,
    graceful_timeout: config.gracefulTimeout,
    heartbeat_interval: heartbeatInterval(config.timeout),
    max_requests: config.maxRequests,
    max_requests_jitter: config.maxRequestsJitter,
    // Read by a fork server only (--start-method fork): it imports the app itself, not only its imports.
    preload_app: config.preloadApp,
    uvicorn: config.uvicorn,
    proc_name: config.procName ?? null,
    ...hookSettings(config),
    ...workerClassSettings(config.workerClass),
  };
}
