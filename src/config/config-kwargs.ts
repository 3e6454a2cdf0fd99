import { UsageError } from '../exit-codes.js';
import { coerce } from './values.js';
import { SETTINGS, SETTINGS_BY_NAME, type Value } from './settings-table.js';

/**
 * A UvicornWorker subclass's CONFIG_KWARGS, applied as gunicorn + uvicorn-worker apply them: the
 * worker builds `uvicorn.Config(**kwargs)` from gunicorn's settings (keepalive, forwarded_allow_ips,
 * backlog, max_requests, TLS) and then `kwargs.update(CONFIG_KWARGS)`, so a key the class sets wins
 * over every other source. corral keeps that rule for every key, its uvicorn options included, and
 * shows each value in --print-config with the source `worker class NAME`.
 */

/** A resolved value and where it came from (config/resolve.ts's Resolved). */
interface Resolved {
  value: Value;
  source: string;
}

interface Notice {
  level: 'info' | 'warn';
  setting?: string;
  msg: string;
}

/** uvicorn.Config keywords that mean nothing in a corral worker, and why. */
const NO_EFFECT: Readonly<Record<string, string>> = {
  app: 'the APP argument names the app',
  host: 'the master binds the sockets (--bind)',
  port: 'the master binds the sockets (--bind)',
  uds: 'the master binds the sockets (--bind)',
  fd: 'the master binds the sockets (--bind)',
  workers: 'each worker runs one uvicorn server (--workers says how many)',
  reload: 'corral watches files itself (--reload)',
  reload_dirs: 'corral watches files itself (--reload-dir)',
  reload_delay: 'corral watches files itself (--reload-delay)',
  reload_includes: 'corral watches files itself (--reload-include)',
  reload_excludes: 'corral watches files itself (--reload-exclude)',
  backlog: 'the sockets listen before any worker starts, as under gunicorn (--backlog)',
  timeout_notify: "gunicorn's heartbeat; corral's is --timeout",
  callback_notify: "gunicorn's heartbeat; corral's is --timeout",
  timeout_worker_healthcheck: "uvicorn's supervisor setting; corral's heartbeat timeout is --timeout",
};

/** uvicorn.Config keyword → corral setting, for the keywords corral has a setting for. */
const TO_SETTING: ReadonlyMap<string, string> = new Map([
  ...SETTINGS.filter((setting) => setting.uvicornKwarg && setting.uvicornKwarg !== 'log_config').map((setting) => [setting.uvicornKwarg!, setting.name] as const),
  ['limit_max_requests', 'max_requests'],
  ['limit_max_requests_jitter', 'max_requests_jitter'],
  ['timeout_graceful_shutdown', 'graceful_timeout'],
  ['access_log', 'access_log'],
  ['factory', 'factory'],
  ['use_colors', 'use_colors'],
]);
// Not mapped: log_level (uvicorn's loggers in the worker only, as under gunicorn) and any keyword
// corral has no setting for go to uvicorn.Config as the class has them.

/** The source every value taken from a worker class's CONFIG_KWARGS shows. */
export function workerClassSource(name: string): string {
  return `worker class ${name}`;
}

export function isFromWorkerClass(resolved: Resolved): boolean {
  return resolved.source.startsWith('worker class ');
}

/** CONFIG_KWARGS["headers"] is a list of (name, value) pairs; corral's --header takes Name:Value. */
function headerItems(raw: unknown, label: string): unknown {
  if (!Array.isArray(raw)) return raw;
  return raw.map((pair) => {
    if (Array.isArray(pair) && pair.length === 2 && pair.every((part) => typeof part === 'string')) return `${pair[0]}:${pair[1]}`;
    throw new UsageError(`${label} ${JSON.stringify(raw)}: expected a list of (name, value) pairs`);
  });
}

/**
 * Puts each CONFIG_KWARGS value into `settings` with the worker class as its source; returns the
 * keywords the workers take from the class itself (no corral setting, or a value JSON cannot hold).
 */
export function applyConfigKwargs(
  settings: Record<string, Resolved>,
  className: string,
  kwargs: Record<string, unknown>,
  unreadable: Record<string, string>,
  configParams: readonly string[],
  notices: Notice[],
): string[] {
  const source = workerClassSource(className);
  const passthrough: string[] = [];
  const params = new Set(configParams);
  const keys = [...Object.keys(kwargs), ...Object.keys(unreadable)];
  for (const key of keys) {
    const label = `CONFIG_KWARGS["${key}"] of worker class ${className}`;
    if (!params.has(key)) throw new UsageError(`${label}: uvicorn.Config takes no keyword "${key}" (its workers would fail to start)`);
    if (key in NO_EFFECT) {
      notices.push({ level: 'info', msg: `${label} has no effect under corral: ${NO_EFFECT[key]}` });
      continue;
    }
    if (key in unreadable) {
      passthrough.push(key);
      continue;
    }
    const raw = kwargs[key];
    if (key === 'log_config') {
      applyLogConfig(settings, raw, label, source);
      continue;
    }
    const name = TO_SETTING.get(key);
    if (name === undefined) {
      passthrough.push(key);
      continue;
    }
    const setting = SETTINGS_BY_NAME.get(name)!;
    // None is uvicorn's "not set" (pings off, no limit): passed on as it is where uvicorn reads it.
    if (raw === null && !setting.uvicornKwarg) {
      notices.push({ level: 'info', msg: `${label} = None has no effect under corral: it keeps ${name} = ${JSON.stringify(settings[name]!.value)}` });
      continue;
    }
    const value = coerce(setting, key === 'headers' ? headerItems(raw, label) : raw, label);
    const previous = settings[name]!;
    if (previous.source !== 'default' && JSON.stringify(previous.value) !== JSON.stringify(value)) {
      notices.push({
        level: 'warn',
        setting: name,
        msg: `${label} = ${JSON.stringify(raw)} overrides ${name} = ${JSON.stringify(previous.value)} (${previous.source}): a worker class's CONFIG_KWARGS win, as under gunicorn`,
      });
    }
    settings[name] = { value, source };
  }
  return passthrough;
}

/** log_config is a dictConfig dict or a file name: one replaces the others, as one uvicorn keyword. */
function applyLogConfig(settings: Record<string, Resolved>, raw: unknown, label: string, source: string): void {
  const [name, other] = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? ['logconfig_dict', 'logconfig'] : ['logconfig', 'logconfig_dict'];
  settings[name] = { value: coerce(SETTINGS_BY_NAME.get(name)!, raw, label), source };
  settings[other] = { value: null, source };
  settings.logconfig_json = { value: null, source };
}
