// Process-level helpers for the benchmark harness: /proc readers, process-group cleanup, polling
// with deadlines, free ports and a one-shot HTTP GET. Linux only (the harness reads /proc).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

// ---------------------------------------------------------------------------------------------
// Process groups: every server (and every wrk) the harness starts is spawned detached, so it leads
// its own process group; the group is killed with SIGKILL when the measurement ends, and again on
// any exit path of the harness (normal exit, exception, Ctrl-C).

const liveGroups = new Set<number>();
let cleanupInstalled = false;

export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

export function trackGroup(pgid: number): void {
  installCleanup();
  liveGroups.add(pgid);
}

export function releaseGroup(pgid: number): void {
  killGroup(pgid, 'SIGKILL');
  liveGroups.delete(pgid);
}

export function killAllGroups(): void {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  liveGroups.clear();
}

export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllGroups);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAllGroups();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    killAllGroups();
    console.error(err);
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    killAllGroups();
    console.error(err);
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------------
// Polling with deadlines (the harness never sleeps blindly in place of a condition).

export class DeadlineError extends Error {}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const now = (): number => performance.now();

/** Calls `check` every `intervalMs` until it returns a value other than undefined/false, or throws
 *  a DeadlineError after `timeoutMs`. */
export async function pollUntil<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs, intervalMs = 20 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (now() >= deadline) throw new DeadlineError(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${what}`);
    await delay(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// /proc readers

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  utime: number; // clock ticks
  stime: number; // clock ticks
  cutime: number; // clock ticks of reaped children
  cstime: number;
}

export function parseStat(text: string): ProcStat | undefined {
  // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  const rest = text.slice(close + 2).trim().split(/\s+/);
  return {
    pid,
    comm,
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
    cutime: Number(rest[13]),
    cstime: Number(rest[14]),
  };
}

export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Resident set size in bytes (VmRSS), or undefined when the process is gone. */
export function readRss(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The memory figures of /proc/PID/smaps_rollup that the benchmark uses, in bytes. */
export interface SmapsRollup {
  rss: number;
  /** proportional set size: each resident page divided by the number of processes that map it,
   *  so that the PSS of a set of processes sums to the memory they use together */
  pss: number;
  sharedClean: number;
  sharedDirty: number;
  privateClean: number;
  privateDirty: number;
  swapPss: number;
}

/** Parses smaps_rollup ("Pss:  230 kB" lines); undefined when it has no Rss or Pss line. */
export function parseSmapsRollup(text: string): SmapsRollup | undefined {
  const kb = (field: string): number | undefined => {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kb('Rss');
  const pss = kb('Pss');
  if (rss === undefined || pss === undefined) return undefined;
  return {
    rss,
    pss,
    sharedClean: kb('Shared_Clean') ?? 0,
    sharedDirty: kb('Shared_Dirty') ?? 0,
    privateClean: kb('Private_Clean') ?? 0,
    privateDirty: kb('Private_Dirty') ?? 0,
    swapPss: kb('SwapPss') ?? 0,
  };
}

/** /proc/PID/smaps_rollup (Linux 4.14+), or undefined when the process is gone or unreadable. */
export function readSmapsRollup(pid: number): SmapsRollup | undefined {
  try {
    return parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Unique set size: the pages only this process maps (what killing it would free). */
export const uss = (m: SmapsRollup): number => m.privateClean + m.privateDirty;

/** Every live (non-zombie) process on the machine. */
export function listProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st && st.state !== 'Z' && st.state !== 'X') out.push(st);
  }
  return out;
}

/** Live descendants of `root` (not including root), each with its depth below root. */
export function descendants(root: number, procs: ProcStat[] = listProcesses()): Array<ProcStat & { depth: number }> {
  const byParent = new Map<number, ProcStat[]>();
  for (const p of procs) {
    const list = byParent.get(p.ppid) ?? [];
    list.push(p);
    byParent.set(p.ppid, list);
  }
  const out: Array<ProcStat & { depth: number }> = [];
  const walk = (pid: number, depth: number): void => {
    for (const child of byParent.get(pid) ?? []) {
      out.push({ ...child, depth });
      walk(child.pid, depth + 1);
    }
  };
  walk(root, 1);
  return out;
}

export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

let clkTck: number | undefined;
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Busy clock ticks of the whole machine (all CPUs) from the first line of /proc/stat. */
export function machineBusyTicks(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  } catch {
    return NaN;
  }
}

/** CPU ticks of the harness itself plus every child it reaped (wrk, servers that exited). */
export function selfTicks(): number {
  const st = readStat(process.pid);
  return st ? st.utime + st.stime + st.cutime + st.cstime : NaN;
}

/** Measures how much CPU was used during a window by processes that are neither the harness (and
 *  the children it reaped, such as wrk) nor the given processes (the server's tree): the other
 *  load on the machine, which skews a measurement. Start it, and call the returned function at
 *  the end; it gives that other load in % of one core. */
export function foreignCpu(pids: number[]): () => number {
  const ticksOf = (): Map<number, number> => new Map(pids.map((p) => [p, ((s) => (s ? s.utime + s.stime : NaN))(readStat(p))]));
  const t0 = now();
  const busy0 = machineBusyTicks();
  const self0 = selfTicks();
  const tree0 = ticksOf();
  return () => {
    const busy = machineBusyTicks() - busy0;
    const self = selfTicks() - self0;
    let tree = 0;
    for (const [pid, v] of ticksOf()) {
      const before = tree0.get(pid);
      if (before !== undefined && Number.isFinite(before) && Number.isFinite(v)) tree += v - before;
    }
    const seconds = (now() - t0) / 1000;
    return Math.max(0, ((busy - self - tree) / clockTicksPerSecond() / seconds) * 100);
  };
}

/** Before a load measurement: waits until the machine had less than `maxPct`% of a core of other
 *  load over a 1 s window, at most `timeoutMs`. Returns the last window's load (the caller records
 *  it; a busy machine is noted, not hidden). */
export async function waitQuiet(maxPct: number, timeoutMs: number): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const other = foreignCpu([]);
    const t = now();
    await pollUntil('a 1 s load window', () => now() - t >= 1000, { timeoutMs: 2000, intervalMs: 100 });
    const pct = other();
    if (pct < maxPct || now() >= deadline) return pct;
  }
}

// ---------------------------------------------------------------------------------------------
// Network helpers (127.0.0.1 only)

export const HOST = '127.0.0.1';

/** A port that was free a moment ago (bind port 0, read it back, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One GET on a fresh connection (no agent, Connection: close). Rejects on any socket error or
 *  when no complete answer came within timeoutMs. */
export function httpGet(port: number, path = '/', timeoutMs = 1000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, path, method: 'GET', agent: false, headers: { connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error('ETIMEDOUT')), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** GET that returns undefined instead of throwing (for polling). */
export async function tryGet(port: number, path = '/', timeoutMs = 1000): Promise<HttpAnswer | undefined> {
  try {
    return await httpGet(port, path, timeoutMs);
  } catch {
    return undefined;
  }
}

/** Fires a fresh-connection probe every `intervalMs` (each with a long timeout) until one is
 *  answered with an accepted response; resolves with performance.now() of that answer. Unlike
 *  one-probe-at-a-time polling this is not quantised by the probe timeout when some probes land
 *  in a queue that nobody serves (SO_REUSEPORT listeners of stopped workers). */
export function firstAnswer(
  port: number,
  what: string,
  {
    timeoutMs,
    intervalMs = 10,
    probeTimeoutMs = 3000,
    maxOutstanding = 300,
    accept = (r: HttpAnswer) => r.status === 200,
    check,
  }: {
    timeoutMs: number;
    intervalMs?: number;
    probeTimeoutMs?: number;
    maxOutstanding?: number;
    /** whether this answer counts; may throw to abort with that error */
    accept?: (r: HttpAnswer) => boolean;
    /** called before each probe; throw to abort (e.g. the server died) */
    check?: () => void;
  },
): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = false;
    let outstanding = 0;
    const deadline = now() + timeoutMs;
    const finish = (err: Error | undefined, t?: number): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      if (err) reject(err);
      else resolve(t!);
    };
    const tick = (): void => {
      if (done) return;
      try {
        check?.();
      } catch (e) {
        finish(e as Error);
        return;
      }
      if (now() >= deadline) {
        finish(new DeadlineError(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${what}`));
        return;
      }
      if (outstanding >= maxOutstanding) return;
      outstanding++;
      httpGet(port, '/', probeTimeoutMs).then(
        (res) => {
          outstanding--;
          try {
            if (accept(res)) finish(undefined, now());
          } catch (e) {
            finish(e as Error);
          }
        },
        () => {
          outstanding--;
        },
      );
    };
    const timer = setInterval(tick, intervalMs);
    tick();
  });
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
