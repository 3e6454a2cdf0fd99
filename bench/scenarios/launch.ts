// Launch → first 200: from spawning the master to the first HTTP 200 on a fresh connection, and
// until every worker reported ready.
import { freePort, now, pollUntil, tryGet } from '../lib/proc.js';
import { SERVERS, withServer } from '../servers.js';
import { ConfigRun, appsFor, logFile, rotate, type Ctx } from './common.js';
import { readyTimeoutMs } from './throughput.js';

export async function launch(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  let seq = 0;
  for (const app of appsFor(ctx, 'launch')) {
    for (const workers of s.launchWorkers) {
      ctx.log(`launch: ${app.name}, ${workers} workers`);
      const run = new ConfigRun(ctx, { scenario: 'launch', app: app.name, workers, variant: '' });
      for (let round = 0; round < s.launchRepeats; round++) {
        for (const server of rotate(ctx.servers, round + seq)) {
          await run.measure(server, async () => {
            const port = await freePort();
            return withServer(SERVERS[server], { appDir: app.dir, workers, port, accessLog: false }, logFile(ctx, server, 'launch'), async (srv) => {
              const t200 = await pollUntil(
                `${server}: first 200`,
                async () => {
                  srv.assertAlive();
                  const res = await tryGet(port, '/', 2000);
                  return res?.status === 200 ? now() : undefined;
                },
                { timeoutMs: readyTimeoutMs(workers), intervalMs: 5 },
              );
              const all = await srv.waitAllReady(readyTimeoutMs(workers));
              return { first200S: (t200 - srv.startedAt) / 1000, allReadyS: all / 1000 };
            });
          });
        }
      }
      run.finish();
      seq++;
    }
  }
}
