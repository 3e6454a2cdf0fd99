// HUP (rolling restart) under load: failed requests, socket errors, and the time until every
// worker pid was replaced by a ready one. Two loads: a fresh connection per request (Node loop,
// Connection: close) and keep-alive (wrk).
import { DeadlineError, clockTicksPerSecond, freePort, now, pollUntil, readStat } from '../lib/proc.js';
import { socketErrorTotal, startFreshLoad, startWrk } from '../load.js';
import { SERVERS, withServer, type RunningServer } from '../servers.js';
import { ConfigRun, appsFor, logFile, rotate, type Ctx, type Settings } from './common.js';
import { readyTimeoutMs } from './throughput.js';

/** Upper bound for one rolling restart: granian sleeps 3.5 s per worker by design, and uvicorn
 *  replacing 32 FastAPI workers one by one under keep-alive load took more than 286 s here. A
 *  restart that is not done by then is reported as "> bound", with the load's figures. A run may
 *  set a fixed bound (settings.hupBoundS) to keep the slow rolling restarts from taking its time. */
export const replaceTimeoutMs = (s: Pick<Settings, 'hupBoundS'>, workers: number): number =>
  s.hupBoundS !== undefined ? s.hupBoundS * 1000 : 30_000 + workers * 15_000;
export const hupBoundText = (s: Pick<Settings, 'hupBoundS'>): string =>
  s.hupBoundS !== undefined ? `${s.hupBoundS} s` : '30 s + 15 s per worker';

async function waitReplaced(srv: RunningServer, old: number[], since: number, workers: number, boundMs: number): Promise<number> {
  return pollUntil(
    `${srv.name}: every worker replaced after HUP`,
    () => {
      srv.assertAlive();
      const { ready, pids } = srv.readyWorkers(since);
      if (pids.some((p) => old.includes(p))) return undefined;
      return pids.length >= workers && ready >= workers ? now() : undefined;
    },
    { timeoutMs: boundMs, intervalMs: 20 },
  );
}

/** Sends SIGHUP and waits until every worker was replaced; also measures the master's CPU time
 *  over the restart. */
async function hupAndWait(srv: RunningServer, old: number[], workers: number, boundMs: number): Promise<Record<string, number>> {
  const ticks = (): number => {
    const st = readStat(srv.pid);
    return st ? st.utime + st.stime : NaN;
  };
  const m0 = ticks();
  const t0 = now();
  srv.signal('SIGHUP');
  let t1: number;
  let exceeded = 0;
  try {
    t1 = await waitReplaced(srv, old, t0, workers, boundMs);
  } catch (e) {
    if (!(e instanceof DeadlineError)) throw e;
    t1 = now();
    exceeded = 1;
  }
  return {
    replacedS: (t1 - t0) / 1000,
    ...(exceeded ? { replacedSExceeded: 1 } : {}),
    masterCpuS: (ticks() - m0) / clockTicksPerSecond(),
  };
}

export async function hup(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  let seq = 0;
  for (const app of appsFor(ctx, 'hup')) {
    for (const workers of s.hupWorkers) {
      const boundMs = replaceTimeoutMs(s, workers);
      for (const load of s.hupLoads) {
        const variant = load === 'fresh' ? 'fresh connections' : 'keep-alive';
        ctx.log(`hup: ${app.name}, ${workers} workers, ${variant}`);
        // failure counts are summed over the rounds (a median would hide a failing round)
        const run = new ConfigRun(ctx, { scenario: 'hup', app: app.name, workers, variant }, (k) =>
          ['failed', 'socketErrors', 'non2xx', 'requests', 'clientErrors'].includes(k) || k.startsWith('err_') || k.endsWith('Exceeded'),
        );
        for (const server of ctx.servers) {
          const why = SERVERS[server].unsupported.hup;
          if (why) run.markUnsupported(server, why);
          run.info.set(server, { strategy: SERVERS[server].hupStrategy });
        }
        for (let round = 0; round < s.hupRounds(workers); round++) {
          for (const server of rotate(ctx.servers, round + seq)) {
            await run.measure(server, async (): Promise<Record<string, number>> => {
              const port = await freePort();
              return withServer(SERVERS[server], { appDir: app.dir, workers, port, accessLog: false }, logFile(ctx, server, 'hup'), async (srv): Promise<Record<string, number>> => {
                await srv.waitAllReady(readyTimeoutMs(workers));
                const old = srv.workerPids();
                const maxS = s.hupLeadS + boundMs / 1000 + s.hupTailS + 5;
                const lead = async (progress: () => number): Promise<void> => {
                  const t = now();
                  await pollUntil('load to run for the lead time', () => progress() > 0 && now() - t >= s.hupLeadS * 1000, {
                    timeoutMs: s.hupLeadS * 1000 + 10_000,
                  });
                };
                const tail = async (): Promise<void> => {
                  const t = now();
                  await pollUntil('tail of the load', () => now() - t >= s.hupTailS * 1000, { timeoutMs: s.hupTailS * 1000 + 1000 });
                };
                if (load === 'fresh') {
                  const gen = startFreshLoad({ port, concurrency: s.freshConcurrency, maxDurationS: maxS });
                  try {
                    await lead(gen.progress);
                    const restart = await hupAndWait(srv, old, workers, boundMs);
                    await tail();
                    gen.stop();
                    const r = await gen.done;
                    const socketErrors = Object.values(r.socketErrors).reduce((a, b) => a + b, 0);
                    return {
                      ...restart,
                      rps: r.requests / r.durationS,
                      failed: socketErrors + r.non2xx,
                      socketErrors,
                      non2xx: r.non2xx,
                      requests: r.requests,
                      ...Object.fromEntries(Object.entries(r.socketErrors).map(([k, v]) => [`err_${k}`, v])),
                      clientErrors: Object.values(r.clientErrors).reduce((a, b) => a + b, 0),
                    };
                  } finally {
                    gen.stop();
                    await gen.done.catch(() => undefined);
                  }
                }
                const wrk = startWrk({ port, connections: s.wrkConnections, threads: s.wrkThreads, durationS: Math.ceil(maxS) });
                try {
                  await lead(() => 1);
                  const restart = await hupAndWait(srv, old, workers, boundMs);
                  await tail();
                  wrk.stop();
                  const r = await wrk.done;
                  return {
                    ...restart,
                    rps: r.requests / r.durationS,
                    failed: socketErrorTotal(r) + r.non2xx,
                    socketErrors: socketErrorTotal(r),
                    non2xx: r.non2xx,
                    requests: r.requests,
                    err_connect: r.socketErrors.connect,
                    err_read: r.socketErrors.read,
                    err_write: r.socketErrors.write,
                    err_timeout: r.socketErrors.timeout,
                  };
                } finally {
                  wrk.stop();
                  await wrk.done.catch(() => undefined);
                }
              });
            });
          }
        }
        run.finish();
        seq++;
      }
    }
  }
}
