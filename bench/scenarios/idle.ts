// Master CPU at idle with many workers: utime+stime of the master from /proc/PID/stat over a
// sampling window, after every worker is ready and a short settling window.
import { clockTicksPerSecond, freePort, now, pollUntil, readRss, readStat } from '../lib/proc.js';
import { SERVERS, withServer } from '../servers.js';
import { ConfigRun, MiB, appsFor, logFile, rotate, type Ctx } from './common.js';
import { readyTimeoutMs } from './throughput.js';

const ticks = (pid: number): number => {
  const st = readStat(pid);
  return st ? st.utime + st.stime : NaN;
};

/** CPU of the master's children that exited and were reaped (short-lived helpers it runs). */
const reapedTicks = (pid: number): number => {
  const st = readStat(pid);
  return st ? st.cutime + st.cstime : NaN;
};

/** Waits (polling) until `ms` have passed; the window itself is the measurement. */
const window = (what: string, ms: number): Promise<boolean> => {
  const t = now();
  return pollUntil(what, () => now() - t >= ms, { timeoutMs: ms + 1000, intervalMs: 50 });
};

export async function idle(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  const workers = s.idleWorkers;
  const app = appsFor(ctx, 'idle')[0];
  if (!app) return;
  ctx.log(`idle: ${app.name}, ${workers} workers`);
  const run = new ConfigRun(ctx, { scenario: 'idle', app: app.name, workers, variant: '' });
  for (const server of rotate(ctx.servers, 0)) {
    await run.measure(server, async () => {
      const port = await freePort();
      return withServer(SERVERS[server], { appDir: app.dir, workers, port, accessLog: false }, logFile(ctx, server, 'idle'), async (srv) => {
        await srv.waitAllReady(readyTimeoutMs(workers));
        await window('settling', s.idleSettleS * 1000);
        const workerPids = srv.workerPids();
        const hz = clockTicksPerSecond();
        const t0 = now();
        const m0 = ticks(srv.pid);
        const c0 = reapedTicks(srv.pid);
        const w0 = workerPids.map(ticks);
        await window('idle sample', s.idleSampleS * 1000);
        srv.assertAlive();
        const m1 = ticks(srv.pid);
        const c1 = reapedTicks(srv.pid);
        const w1 = workerPids.map(ticks);
        const elapsedS = (now() - t0) / 1000;
        const workerTicks = w1.reduce((sum, v, i) => sum + (Number.isFinite(v) && Number.isFinite(w0[i]!) ? v - w0[i]! : 0), 0);
        return {
          masterCpuPct: ((m1 - m0) / hz / elapsedS) * 100,
          reapedChildrenCpuPct: ((c1 - c0) / hz / elapsedS) * 100,
          workersCpuPct: (workerTicks / hz / elapsedS) * 100,
          masterRssMiB: (readRss(srv.pid) ?? NaN) / MiB,
          workers: workerPids.length,
        };
      });
    });
  }
  run.finish();
}
