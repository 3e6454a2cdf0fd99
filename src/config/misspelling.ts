/**
 * Names in gunicorn config files that gunicorn silently ignores, mapped to the setting meant. All seen
 * in public repositories; the edit-distance check below catches the rest.
 */
export const KNOWN_MISSPELLINGS: Readonly<Record<string, string>> = {
  preload: 'preload_app',
  keep_alive: 'keepalive',
  keepalive_timeout: 'keepalive',
  work_class: 'worker_class',
  workers_class: 'worker_class',
  workerclass: 'worker_class',
  worker_type: 'worker_class',
  num_workers: 'workers',
  worker: 'workers',
  threads_per_worker: 'threads',
  pid: 'pidfile',
  pid_file: 'pidfile',
  access_logfile: 'accesslog',
  access_log_file: 'accesslog',
  accesslogfile: 'accesslog',
  error_log: 'errorlog',
  error_logfile: 'errorlog',
  error_log_file: 'errorlog',
  errorlogfile: 'errorlog',
  log_file: 'errorlog',
  logfile: 'errorlog',
  access_logformat: 'access_log_format',
  accesslog_format: 'access_log_format',
  max_request: 'max_requests',
  max_request_jitter: 'max_requests_jitter',
  max_requests_jiter: 'max_requests_jitter',
  graceful_shutdown_timeout: 'graceful_timeout',
  worker_timeout: 'timeout',
  forwarded_allow_ip: 'forwarded_allow_ips',
  forward_allow_ips: 'forwarded_allow_ips',
  daemonize: 'daemon',
  limit_request_fieldsize: 'limit_request_field_size',
  capture_stdout: 'capture_output',
  reload_extra_file: 'reload_extra_files',
  reload_extrafiles: 'reload_extra_files',
  post_worker_initialize: 'post_worker_init',
  on_worker_exit: 'worker_exit',
};

/** Levenshtein distance, small strings only. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The known name `name` most likely means, or undefined. Short names need a closer match, so
 * helper variables such as `host` or `cores` in a config file are not taken for settings.
 */
export function suggestName(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  const table = KNOWN_MISSPELLINGS[lower];
  const candidates = [...known];
  if (table && candidates.includes(table)) return table;
  const allowed = lower.length <= 4 ? 0 : lower.length <= 7 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === name) return undefined;
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= allowed ? best : undefined;
}
