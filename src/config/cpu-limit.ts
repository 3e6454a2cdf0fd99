import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What `--workers auto` found: a CPU count and where it came from, for the log. */
export interface CpuLimit {
  cpus: number;
  /** e.g. "cgroup v2 cpu.max 150000 100000 (/sys/fs/cgroup/cpu.max)" or "no cgroup CPU limit; 8 CPUs available". */
  found: string;
}

/**
 * The worker count for `--workers auto`: one uvicorn worker per CPU the cgroup lets us use,
 * rounded down, at least one. gunicorn's 2×CPUs+1 is advice for sync workers that block on I/O;
 * an async uvicorn worker keeps a CPU busy by itself, so more workers than CPUs only adds memory
 * and context switches, and rounding a fractional quota up would get the workers throttled.
 */
export function workersForCpus(cpus: number): number {
  return Math.max(1, Math.floor(cpus + 1e-9));
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The cgroup paths of this process: v2's unified path and v1's per-controller paths. */
export function parseProcCgroup(text: string): { unified?: string; cpu?: string } {
  const result: { unified?: string; cpu?: string } = {};
  for (const line of text.split('\n')) {
    const [id, controllers, cgroupPath] = line.split(':', 3) as [string, string | undefined, string | undefined];
    if (cgroupPath === undefined) continue;
    if (id === '0' && controllers === '') result.unified = cgroupPath;
    else if (controllers?.split(',').includes('cpu')) result.cpu = cgroupPath;
  }
  return result;
}

/** Directories from the process's own cgroup up to the root; a limit anywhere on the way applies. */
function ancestry(root: string, cgroupPath: string | undefined): string[] {
  const dirs: string[] = [];
  let relative = path.posix.normalize(`/${cgroupPath ?? ''}`);
  for (;;) {
    dirs.push(path.join(root, relative));
    if (relative === '/') break;
    relative = path.posix.dirname(relative);
  }
  return dirs;
}

/** Parses v2 `cpu.max` ("max 100000" or "150000 100000") into CPUs, or undefined for no limit. */
export function cpusFromCpuMax(text: string): number | undefined {
  const [quota, period] = text.split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period ?? 100000);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** Parses v1 quota and period (quota -1 means no limit). */
export function cpusFromV1(quotaText: string, periodText: string): number | undefined {
  const quota = Number(quotaText);
  const period = Number(periodText);
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/**
 * Reads the CPU limit of this process's cgroup under `root` (v2 cpu.max, else v1
 * cpu.cfs_quota_us/cpu.cfs_period_us), capped by the CPUs this process may run on.
 * `procCgroup` is /proc/self/cgroup's text; both are injectable for tests.
 */
export function readCpuLimit(
  root: string,
  procCgroup: string = readText('/proc/self/cgroup') ?? '',
  available: number = os.availableParallelism(),
): CpuLimit {
  const own = parseProcCgroup(procCgroup);
  let best: { cpus: number; found: string } | undefined;
  const consider = (cpus: number | undefined, found: string) => {
    if (cpus !== undefined && (best === undefined || cpus < best.cpus)) best = { cpus, found };
  };
  for (const dir of ancestry(root, own.unified)) {
    const file = path.join(dir, 'cpu.max');
    const text = readText(file);
    if (text !== undefined) consider(cpusFromCpuMax(text), `cgroup v2 cpu.max "${text}" (${file})`);
  }
  if (best === undefined) {
    for (const controllerDir of ['cpu,cpuacct', 'cpu', 'cpuacct,cpu']) {
      const base = path.join(root, controllerDir);
      if (!fs.existsSync(base)) continue;
      for (const dir of ancestry(base, own.cpu)) {
        const quota = readText(path.join(dir, 'cpu.cfs_quota_us'));
        const period = readText(path.join(dir, 'cpu.cfs_period_us'));
        if (quota !== undefined && period !== undefined) {
          consider(cpusFromV1(quota, period), `cgroup v1 cpu.cfs_quota_us ${quota} / cpu.cfs_period_us ${period} (${dir})`);
        }
      }
      break;
    }
  }
  if (best !== undefined) {
    const found = `${best.found}: ${formatCpus(best.cpus)} CPUs`;
    if (best.cpus <= available) return { cpus: best.cpus, found };
    return { cpus: available, found: `${found}, but only ${available} available to this process` };
  }
  return { cpus: available, found: `no cgroup CPU limit under ${root}; ${available} CPUs available to this process` };
}

function formatCpus(cpus: number): string {
  return Number.isInteger(cpus) ? String(cpus) : cpus.toFixed(2).replace(/0+$/, '');
}
