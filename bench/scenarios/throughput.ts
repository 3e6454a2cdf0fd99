// Throughput and p50/p99 latency under a keep-alive load (wrk), access log off and on; the
// resident memory of master and workers is sampled right after each run.
import { foreignCpu, freePort, readRss, waitQuiet } from '../lib/proc.js';
import { runWrk, socketErrorTotal } from '../load.js';
import { SERVERS, withServer } from '../servers.js';
import { ConfigRun, MiB, appsFor, logFile, rotate, type Ctx } from './common.js';

export const readyTimeoutMs = (workers: number): number => 30_000 + workers * 3_000;

export async function throughput(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  let seq = 0;
  let quietLeftS = s.quietBudgetS;
  for (const app of appsFor(ctx, 'throughput')) {
    for (const workers of s.throughputWorkers) {
      for (const accessLog of [false, true]) {
        const variant = accessLog ? 'access log on' : 'access log off';
        ctx.log(`throughput: ${app.name}, ${workers} workers, ${variant}`);
        const tp = new ConfigRun(ctx, { scenario: 'throughput', app: app.name, workers, variant });
        const mem = new ConfigRun(ctx, { scenario: 'memory', app: app.name, workers, variant });
        for (let round = 0; round < s.rounds; round++) {
          for (const server of rotate(ctx.servers, round + seq)) {
            let memory: Record<string, number> | undefined;
            await tp.measure(server, async () => {
              const t = performance.now();
              await waitQuiet(s.quietPct, Math.min(s.quietWaitS, quietLeftS) * 1000);
              quietLeftS = Math.max(0, quietLeftS - (performance.now() - t) / 1000);
              const port = await freePort();
              return withServer(SERVERS[server], { appDir: app.dir, workers, port, accessLog }, logFile(ctx, server, 'tp'), async (srv) => {
                await srv.waitAllReady(readyTimeoutMs(workers));
                const wrk = { port, connections: s.wrkConnections, threads: s.wrkThreads };
                await runWrk({ ...wrk, durationS: s.warmupS });
                const other = foreignCpu(srv.treePids());
                const r = await runWrk({ ...wrk, durationS: s.throughputDurationS, latency: true });
                const otherLoadPct = other();
                srv.assertAlive();
                const workerPids = srv.workerPids();
                const workerRss = workerPids.map(readRss).filter((x): x is number => x !== undefined);
                const total = srv.treePids().map(readRss).reduce<number>((a, b) => a + (b ?? 0), 0);
                memory = {
                  masterRssMiB: (readRss(srv.pid) ?? NaN) / MiB,
                  workerRssMiB: workerRss.reduce((a, b) => a + b, 0) / Math.max(1, workerRss.length) / MiB,
                  workerRssMaxMiB: Math.max(...workerRss) / MiB,
                  totalRssMiB: total / MiB,
                  workers: workerPids.length,
                };
                return {
                  rps: r.requestsPerSec,
                  p50Ms: r.p50Ms ?? NaN,
                  p99Ms: r.p99Ms ?? NaN,
                  errors: socketErrorTotal(r) + r.non2xx,
                  requests: r.requests,
                  otherLoadPct,
                };
              });
            });
            await mem.measure(server, async () => {
              if (!memory) throw new Error('no sample: the throughput run failed');
              return memory;
            });
          }
        }
        tp.finish();
        mem.finish();
        seq++;
      }
    }
  }
}
