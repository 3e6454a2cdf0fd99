// Load generators: wrk for keep-alive load (parsed from its text output) and a small Node loop that
// opens a fresh connection per request (Connection: close). Both are bounded in time and target
// 127.0.0.1 only.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { HOST, now, releaseGroup, trackGroup } from './lib/proc.js';

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  /** latency percentiles in milliseconds (present with --latency) */
  p50Ms?: number;
  p75Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  avgLatencyMs?: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1.23ms" → 1.23, "512.00us" → 0.512, "1.5s" → 1500 */
export function parseDurationMs(text: string): number {
  const m = /^([\d.]+)\s*(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`cannot parse wrk duration "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Parses wrk 4.x's standard report (with or without --latency). Pure; throws on output that
 *  does not contain the summary lines. */
export function parseWrkOutput(out: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+\w+),/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!total || !rps) throw new Error(`wrk output has no summary:\n${out.slice(0, 500)}`);
  const result: WrkResult = {
    requests: Number(total[1]),
    durationS: parseDurationMs(total[2]!) / 1000,
    requestsPerSec: Number(rps[1]),
    socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: 0,
  };
  const lat = /^\s*Latency\s+([\d.]+\w+)\s/m.exec(out);
  if (lat) result.avgLatencyMs = parseDurationMs(lat[1]!);
  // "Latency Distribution" block of --latency: "     50%    3.79ms"
  for (const m of out.matchAll(/^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+[a-z]+)\s*$/gm)) {
    const ms = parseDurationMs(m[2]!);
    if (m[1] === '50') result.p50Ms = ms;
    else if (m[1] === '75') result.p75Ms = ms;
    else if (m[1] === '90') result.p90Ms = ms;
    else result.p99Ms = ms;
  }
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (se) {
    result.socketErrors = { connect: Number(se[1]), read: Number(se[2]), write: Number(se[3]), timeout: Number(se[4]) };
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) result.non2xx = Number(non2xx[1]);
  return result;
}

export function socketErrorTotal(r: WrkResult): number {
  const s = r.socketErrors;
  return s.connect + s.read + s.write + s.timeout;
}

export interface WrkOptions {
  port: number;
  durationS: number;
  connections: number;
  threads: number;
  path?: string;
  latency?: boolean;
  timeoutS?: number;
}

export interface WrkRun {
  /** resolves with the parsed report once wrk exits (by itself after -d, or after stop()) */
  done: Promise<WrkResult>;
  /** ask wrk to stop early: it prints its report for the time it ran (wrk handles SIGINT so) */
  stop(): void;
}

/** Starts wrk against 127.0.0.1:port. wrk runs in its own process group, killed in any case. */
export function startWrk(o: WrkOptions): WrkRun {
  const args = [
    '-t', String(o.threads), '-c', String(o.connections), '-d', `${o.durationS}s`,
    '--timeout', `${o.timeoutS ?? 5}s`,
    ...(o.latency ? ['--latency'] : []),
    `http://${HOST}:${o.port}${o.path ?? '/'}`,
  ];
  const child = spawn('wrk', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid !== undefined) trackGroup(pid);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // hard bound: wrk gets its own duration plus 15 s to report, then it is killed
  const hardStop = setTimeout(() => pid !== undefined && releaseGroup(pid), (o.durationS + 15) * 1000);
  const done = new Promise<WrkResult>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot run wrk: ${e.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(hardStop);
      if (pid !== undefined) releaseGroup(pid);
      try {
        resolve(parseWrkOutput(out));
      } catch (e) {
        reject(new Error(`wrk exited (${signal ?? code}): ${(e as Error).message}\n${err}`));
      }
    });
  });
  return {
    done,
    stop: () => {
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGINT');
        } catch {
          // already gone
        }
      }
    },
  };
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  return startWrk(o).done;
}

// ---------------------------------------------------------------------------------------------
// Fresh-connection load: `concurrency` loops, each one GET per new TCP connection.

/** Errors of the load generator's own side (out of ports or descriptors): not the server's fault. */
export const CLIENT_SIDE_ERRORS = new Set(['EADDRNOTAVAIL', 'EMFILE', 'ENFILE', 'ENOBUFS']);

export interface FreshResult {
  requests: number; // completed with any status
  ok: number; // 2xx
  non2xx: number;
  socketErrors: Record<string, number>; // by error code (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...)
  clientErrors: Record<string, number>; // CLIENT_SIDE_ERRORS, kept apart
  durationS: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface FreshRun {
  done: Promise<FreshResult>;
  stop(): void;
  /** requests completed so far (any outcome) */
  progress(): number;
}

export function startFreshLoad(o: { port: number; concurrency: number; maxDurationS: number; timeoutMs?: number }): FreshRun {
  const start = now();
  const deadline = start + o.maxDurationS * 1000;
  let stopped = false;
  let ok = 0;
  let non2xx = 0;
  let completed = 0;
  const errors: Record<string, number> = {};
  const clientErrors: Record<string, number> = {};
  const latencies: number[] = [];
  const timeoutMs = o.timeoutMs ?? 5000;

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = now();
      let settled = false;
      const finish = (status: number | undefined, code?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        completed++;
        if (code !== undefined && CLIENT_SIDE_ERRORS.has(code)) clientErrors[code] = (clientErrors[code] ?? 0) + 1;
        else if (code !== undefined) errors[code] = (errors[code] ?? 0) + 1;
        else if (status !== undefined && status >= 200 && status < 300) {
          ok++;
          latencies.push(now() - t0);
        } else non2xx++;
        resolve();
      };
      const req = http.request(
        { host: HOST, port: o.port, path: '/', method: 'GET', agent: false, headers: { connection: 'close' } },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => finish(res.statusCode));
          res.on('error', (e: NodeJS.ErrnoException) => finish(undefined, e.code ?? e.message));
        },
      );
      const timer = setTimeout(() => {
        finish(undefined, 'ETIMEDOUT');
        req.destroy();
      }, timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish(undefined, e.code ?? e.message));
      req.end();
    });

  const loop = async (): Promise<void> => {
    while (!stopped && now() < deadline) await one();
  };

  const done = Promise.all(Array.from({ length: o.concurrency }, loop)).then((): FreshResult => {
    const durationS = (now() - start) / 1000;
    const sorted = latencies.sort((a, b) => a - b);
    const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
    return {
      requests: completed,
      ok,
      non2xx,
      socketErrors: errors,
      clientErrors,
      durationS,
      requestsPerSec: completed / durationS,
      p50Ms: pct(50),
      p99Ms: pct(99),
    };
  });
  return {
    done,
    stop: () => {
      stopped = true;
    },
    progress: () => completed,
  };
}
