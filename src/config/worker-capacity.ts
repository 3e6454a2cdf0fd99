import fs from 'node:fs';
import os from 'node:os';
import { UsageError } from '../exit-codes.js';

/** What bounds the number of workers one master can run on this machine; a limit not found is undefined. */
export interface MachineLimits {
  /** The master's open-file limit (RLIMIT_NOFILE, soft; Node raises it to the hard limit at start). */
  openFiles?: number;
  /** kernel.pid_max: every thread of every process takes one. */
  pidMax?: number;
  /** The user's process limit (RLIMIT_NPROC, soft); the kernel does not apply it to root. */
  userProcesses?: number;
  /** MemTotal + SwapTotal, in bytes. */
  memoryBytes?: number;
  cpus: number;
}

/** Descriptors each worker holds in the master: its stdout, its stderr and the control channel. */
const FDS_PER_WORKER = 3;
/** What the master holds besides its workers: Node itself, listen sockets, logs, endpoints and their clients. */
const MASTER_OWN_FDS = 64;
/** Threads each worker has at least: its event loop and the one that watches for the master's exit. */
const TASKS_PER_WORKER = 2;
/** Memory a uvicorn worker cannot do without (its private memory is about 19 MiB with a trivial app). */
const MIN_WORKER_BYTES = 8 * 1024 * 1024;
/** Beyond this many workers per CPU, more cost memory, start time and context switches, not throughput. */
const WORKERS_PER_CPU_WARNING = 8;

function limitFromProcLimits(text: string, name: string): number | undefined {
  const line = text.split('\n').find((row) => row.startsWith(name));
  const soft = line?.slice(name.length).trim().split(/\s+/)[0];
  return soft === undefined || soft === 'unlimited' ? undefined : Number(soft) || undefined;
}

/** MemTotal + SwapTotal from /proc/meminfo, in bytes. */
export function memoryFromMeminfo(text: string): number | undefined {
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  const total = (kib('MemTotal') + kib('SwapTotal')) * 1024;
  return total > 0 ? total : undefined;
}

function readNumber(file: string): number | undefined {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** Reads this machine's limits once, at start (/proc; a limit that cannot be read does not apply). */
export function readMachineLimits(): MachineLimits {
  let limits = '';
  try {
    limits = fs.readFileSync('/proc/self/limits', 'utf8');
  } catch {
    // Not Linux: no limit found.
  }
  const openFiles = limitFromProcLimits(limits, 'Max open files');
  const pidMax = readNumber('/proc/sys/kernel/pid_max');
  const userProcesses = process.getuid?.() === 0 ? undefined : limitFromProcLimits(limits, 'Max processes');
  let memoryBytes: number | undefined;
  try {
    memoryBytes = memoryFromMeminfo(fs.readFileSync('/proc/meminfo', 'utf8'));
  } catch {
    // Not Linux: no limit found.
  }
  return {
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    ...(openFiles !== undefined ? { openFiles } : {}),
    ...(pidMax !== undefined ? { pidMax } : {}),
    ...(userProcesses !== undefined ? { userProcesses } : {}),
    cpus: os.availableParallelism(),
  };
}

interface Bound {
  most: number;
  what: string;
  fix: string;
}

/**
 * The most workers these limits allow, with what sets it. `perWorker` counts the processes of one
 * slot (2 in reload mode, where each worker has a warm standby).
 */
function tightestBound(limits: MachineLimits, perWorker: number): Bound | undefined {
  const bounds: Bound[] = [];
  if (limits.openFiles !== undefined) {
    const cost = FDS_PER_WORKER * perWorker;
    bounds.push({
      most: Math.max(0, Math.floor((limits.openFiles - MASTER_OWN_FDS) / cost)),
      what: `the master's open-file limit (ulimit -n ${limits.openFiles}, ${cost} per worker)`,
      fix: 'raise ulimit -n (LimitNOFILE= under systemd)',
    });
  }
  if (limits.userProcesses !== undefined) {
    const cost = TASKS_PER_WORKER * perWorker;
    bounds.push({
      most: Math.floor(limits.userProcesses / cost),
      what: `the user's process limit (ulimit -u ${limits.userProcesses}, ${cost} threads per worker)`,
      fix: 'raise ulimit -u (LimitNPROC= under systemd)',
    });
  }
  if (limits.pidMax !== undefined) {
    const cost = TASKS_PER_WORKER * perWorker;
    bounds.push({
      most: Math.floor(limits.pidMax / cost),
      what: `the kernel's process limit (kernel.pid_max ${limits.pidMax}, ${cost} threads per worker)`,
      fix: 'raise kernel.pid_max',
    });
  }
  if (limits.memoryBytes !== undefined) {
    const cost = MIN_WORKER_BYTES * perWorker;
    const gib = (limits.memoryBytes / 1024 ** 3).toFixed(1);
    bounds.push({
      most: Math.floor(limits.memoryBytes / cost),
      what: `the machine's memory (${gib} GiB with swap, ${cost / 1024 ** 2} MiB at the very least per worker)`,
      fix: 'give it more memory',
    });
  }
  return bounds.sort((a, b) => a.most - b.most)[0];
}

/**
 * Refuses a worker count the machine cannot run (a usage error naming the limit and the fix), and
 * returns a warning for one far above the CPUs. Without this `-w 100000` starts spawning until the
 * master runs out of descriptors.
 */
export function checkWorkerCount(workers: number, limits: MachineLimits, reload = false): string | undefined {
  const bound = tightestBound(limits, reload ? 2 : 1);
  if (bound && workers > bound.most) {
    throw new UsageError(
      `--workers ${workers}: more than this machine can run: ${bound.what} allows at most ${bound.most} workers; lower --workers or ${bound.fix}`,
    );
  }
  if (workers > WORKERS_PER_CPU_WARNING * limits.cpus) {
    const cpus = `${limits.cpus} CPU${limits.cpus === 1 ? '' : 's'}`;
    return `--workers ${workers} is ${Math.round(workers / limits.cpus)} per CPU (${cpus}): a uvicorn worker is an event loop that can keep a CPU busy; past ${WORKERS_PER_CPU_WARNING} per CPU more workers cost memory, start time and context switches, not throughput`;
  }
  return undefined;
}
