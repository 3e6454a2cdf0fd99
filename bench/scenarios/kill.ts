// kill -9 of one worker → a replacement pid appears under the master → the replacement answers.
// To know that a 200 came from the replacement without changing the app, the surviving old workers
// are SIGSTOPped as soon as the new pid is seen (and SIGCONTed afterwards): from then on only the
// replacement can accept.
import { firstAnswer, freePort, now, pollUntil } from '../lib/proc.js';
import { SERVERS, withServer } from '../servers.js';
import { ConfigRun, appsFor, logFile, rotate, type Ctx } from './common.js';
import { readyTimeoutMs } from './throughput.js';

const signalAll = (pids: number[], sig: NodeJS.Signals): void => {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }
};

/** The pid in a JSON answer such as the FastAPI example's {"pid": 123}, if any. */
export function answeringPid(body: string): number | undefined {
  try {
    const v = (JSON.parse(body) as { pid?: unknown }).pid;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

export async function kill(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  const workers = s.killWorkers;
  let seq = 0;
  for (const app of appsFor(ctx, 'kill')) {
    ctx.log(`kill: ${app.name}, ${workers} workers`);
    const run = new ConfigRun(ctx, { scenario: 'kill', app: app.name, workers, variant: '' });
    for (let round = 0; round < s.killRepeats; round++) {
      for (const server of rotate(ctx.servers, round + seq)) {
        await run.measure(server, async () => {
          const port = await freePort();
          return withServer(SERVERS[server], { appDir: app.dir, workers, port, accessLog: false }, logFile(ctx, server, 'kill'), async (srv) => {
            await srv.waitAllReady(readyTimeoutMs(workers));
            const old = srv.workerPids();
            const victim = old[0]!;
            const survivors = old.slice(1);
            const t0 = now();
            process.kill(victim, 'SIGKILL');
            let stopped: number[] = [];
            try {
              const fresh = await pollUntil(
                `${server}: a new worker pid`,
                () => {
                  srv.assertAlive();
                  const pids = srv.workerPids().filter((p) => !old.includes(p));
                  return pids.length ? pids : undefined;
                },
                { timeoutMs: 30_000, intervalMs: 5 },
              );
              const tPid = now();
              stopped = survivors;
              signalAll(stopped, 'SIGSTOP');
              const tAnswer = await firstAnswer(port, `${server}: an answer from the replacement ${fresh.join(',')}`, {
                timeoutMs: 30_000,
                check: () => srv.assertAlive(),
                // the FastAPI example says which pid answered: a stopped survivor must never answer
                accept: (res) => {
                  if (res.status !== 200) return false;
                  const pid = answeringPid(res.body);
                  if (pid !== undefined && survivors.includes(pid)) throw new Error(`stopped worker ${pid} answered`);
                  return true;
                },
              });
              return { respawnS: (tPid - t0) / 1000, answerS: (tAnswer - t0) / 1000 };
            } finally {
              signalAll(stopped, 'SIGCONT');
            }
          });
        });
      }
    }
    run.finish();
    seq++;
  }
}
