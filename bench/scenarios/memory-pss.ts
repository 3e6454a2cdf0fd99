// Total memory of a server's whole process tree (master, fork servers, workers, helpers) as the
// sum of each process's PSS from /proc/PID/smaps_rollup: right after every worker is ready, and
// again after a keep-alive load. RSS counts a page shared by N processes N times; PSS divides it
// among them, so the sum is what the tree uses together, and forked workers that share their
// parent's pages show it.
import { freePort, readSmapsRollup, uss, type SmapsRollup } from '../lib/proc.js';
import { runWrk, socketErrorTotal } from '../load.js';
import { SERVERS, withServer, type RunningServer } from '../servers.js';
import { ConfigRun, MiB, appsFor, logFile, rotate, type Ctx } from './common.js';
import { readyTimeoutMs } from './throughput.js';

export interface TreeMemory extends Record<string, number> {
  totalPssMiB: number;
  masterPssMiB: number;
  /** the workers' PSS, summed */
  workersPssMiB: number;
  /** every other process: corral's fork servers, uvicorn's resource tracker, … */
  otherPssMiB: number;
  /** the workers' mean USS (Private_Clean + Private_Dirty): what one worker's exit would free */
  workerUssMiB: number;
  workers: number;
  processes: number;
}

/** Sums the PSS of a tree. Processes that exited between the listing and the read are left out;
 *  the master must be readable. */
export function summarizeTreeMemory(
  master: number,
  workerPids: readonly number[],
  treePids: readonly number[],
  read: (pid: number) => SmapsRollup | undefined,
): TreeMemory {
  const workerSet = new Set(workerPids);
  const all = new Set([master, ...treePids]);
  let total = 0;
  let masterPss: number | undefined;
  let workersPss = 0;
  let other = 0;
  let ussSum = 0;
  let workers = 0;
  let processes = 0;
  for (const pid of all) {
    const m = read(pid);
    if (!m) continue;
    processes++;
    total += m.pss;
    if (pid === master) masterPss = m.pss;
    else if (workerSet.has(pid)) {
      workers++;
      workersPss += m.pss;
      ussSum += uss(m);
    } else other += m.pss;
  }
  if (masterPss === undefined) throw new Error(`cannot read /proc/${master}/smaps_rollup of the master`);
  return {
    totalPssMiB: total / MiB,
    masterPssMiB: masterPss / MiB,
    workersPssMiB: workersPss / MiB,
    otherPssMiB: other / MiB,
    workerUssMiB: workers ? ussSum / workers / MiB : NaN,
    workers,
    processes,
  };
}

const sample = (srv: RunningServer): TreeMemory => summarizeTreeMemory(srv.pid, srv.workerPids(), srv.treePids(), readSmapsRollup);

export async function memoryPss(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  let seq = 0;
  for (const app of appsFor(ctx, 'memory-pss')) {
    for (const workers of s.pssWorkers) {
      ctx.log(`memory-pss: ${app.name}, ${workers} workers`);
      const afterStart = new ConfigRun(ctx, { scenario: 'memory-pss', app: app.name, workers, variant: 'after start' });
      const afterLoad = new ConfigRun(ctx, { scenario: 'memory-pss', app: app.name, workers, variant: 'after load' });
      for (let round = 0; round < s.pssRounds; round++) {
        for (const server of rotate(ctx.servers, round + seq)) {
          let loaded: Record<string, number> | undefined;
          await afterStart.measure(server, async () => {
            const port = await freePort();
            return withServer(SERVERS[server], { appDir: app.dir, workers, port, accessLog: false }, logFile(ctx, server, 'pss'), async (srv) => {
              await srv.waitAllReady(readyTimeoutMs(workers));
              const first = sample(srv);
              const r = await runWrk({ port, connections: s.wrkConnections, threads: s.wrkThreads, durationS: s.pssLoadS });
              srv.assertAlive();
              loaded = { ...sample(srv), rps: r.requestsPerSec, errors: socketErrorTotal(r) + r.non2xx };
              return first;
            });
          });
          await afterLoad.measure(server, async () => {
            if (!loaded) throw new Error('no sample: the run after start failed');
            return loaded;
          });
        }
      }
      afterStart.finish();
      afterLoad.finish();
      seq++;
    }
  }
}
