import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { CorralError, ExitCode } from '../exit-codes.js';
import type { Worker } from '../worker/worker.js';

/**
 * prometheus_client's multiprocess mode, managed by the master. Each worker process writes its
 * metrics to `<dir>/<type>_<pid>.db` files and the app's /metrics sums them (MultiProcessCollector).
 * prometheus_client asks for two things of the process manager: that the directory be emptied before
 * the workers start, and that `mark_process_dead(pid)` be called for every worker that exits (its
 * live gauges — `multiprocess_mode` liveall, livesum, livemax, livemin, livemostrecent — are removed;
 * counters and the other gauges of dead workers stay, so totals survive a restart). gunicorn users
 * write `child_exit` hooks for it; corral does it itself, from the master, so a SIGKILLed worker,
 * which runs no code of its own at exit, is marked dead too.
 */

/** The directory the workers' prometheus_client uses, as it reads it: the upper-case name wins. */
export function multiprocDirectory(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env.PROMETHEUS_MULTIPROC_DIR ?? env.prometheus_multiproc_dir;
  // prometheus_client refuses an empty value itself; there is nothing for corral to manage then.
  return dir && dir.trim() !== '' ? path.resolve(dir) : undefined;
}

/** What MultiProcessCollector reads: every `*.db` file (`counter_123.db`, `gauge_livesum_123.db`, …). */
const METRIC_FILE = /\.db$/;

/**
 * Removes every metrics file (`*.db` as prometheus_client names them) left by an earlier run,
 * creating the directory when it is missing (owned by the workers' user when they run as another).
 * Anything else in the directory stays. Returns the number of files removed.
 */
export function emptyMultiprocDirectory(dir: string, owner?: { uid: number; gid: number }): number {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    return 0;
  }
  let removed = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!METRIC_FILE.test(name)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed += 1;
  }
  return removed;
}

/** The gauge modes whose series end with their process (prometheus_client's _LIVE_GAUGE_MULTIPROCESS_MODES). */
const LIVE_MODES = ['liveall', 'livesum', 'livemax', 'livemin', 'livemostrecent'] as const;

/** prometheus_client's `mark_process_dead(pid)`: removes that process's live-gauge files. Returns their names. */
export function markProcessDead(dir: string, pid: number): string[] {
  const live = new RegExp(`^gauge_(?:${LIVE_MODES.join('|')})_${pid}\\.db$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((name) => live.test(name));
  } catch {
    return [];
  }
  for (const name of names) fs.rmSync(path.join(dir, name), { force: true });
  return names;
}

/**
 * At start: empties the directory named in the workers' environment, unless this master takes over
 * from another (USR2) whose workers still write there.
 */
export function prepareMultiprocDirectory(
  workerEnv: NodeJS.ProcessEnv,
  options: { takingOver: boolean; owner?: { uid: number; gid: number }; log: Logger },
): void {
  const dir = multiprocDirectory(workerEnv);
  if (dir === undefined) return;
  if (options.takingOver) {
    options.log.info({ prometheusMultiprocDir: dir }, 'prometheus_client multiprocess directory kept: the previous master\'s workers still write there');
    return;
  }
  let removed: number;
  try {
    removed = emptyMultiprocDirectory(dir, options.owner);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CorralError(`$PROMETHEUS_MULTIPROC_DIR ${dir}: cannot empty it before the workers start: ${code}`, ExitCode.runtime);
  }
  options.log.info(
    { prometheusMultiprocDir: dir, removed },
    `prometheus_client multiprocess directory emptied (${removed} file${removed === 1 ? '' : 's'}); exited workers are marked dead there`,
  );
}

/** Marks the worker dead in its multiprocess directory once it has exited, however it ended. */
export function markDeadOnExit<W extends Worker>(worker: W, workerEnv: NodeJS.ProcessEnv, log: Logger): W {
  const dir = multiprocDirectory(workerEnv);
  if (dir === undefined) return worker;
  worker.once('exit', () => {
    const pid = worker.pid;
    if (pid === undefined) return;
    try {
      const removed = markProcessDead(dir, pid);
      if (removed.length > 0) log.debug({ worker: worker.slot, pid, removed }, 'prometheus_client: worker marked dead');
    } catch (error) {
      log.warn({ err: error, worker: worker.slot, pid, prometheusMultiprocDir: dir }, 'prometheus_client: could not mark the exited worker dead');
    }
  });
  return worker;
}
