// Dev reload: a file saved → the new code answering. The app is copied to a temp dir; each save
// rewrites app.py as the original plus a wrapper that adds an `x-bench-revision` header (the
// app's own answer is unchanged), atomically (write + rename, as many editors do).
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeadlineError, freePort, median, now, pollUntil, tryGet } from '../lib/proc.js';
import { SERVERS, withServer } from '../servers.js';
import { ConfigRun, Unsupported, appsFor, logFile, rotate, type Ctx } from './common.js';

export function revisedSource(original: string, rev: number): string {
  return `${original.trimEnd()}


# --- added by corral's benchmark: revision ${rev} ---
_bench_inner_app_${rev} = app


async def app(scope, receive, send):
    if scope["type"] != "http":
        return await _bench_inner_app_${rev}(scope, receive, send)

    async def send_with_revision(message):
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers", [])) + [(b"x-bench-revision", b"${rev}")]
        await send(message)

    return await _bench_inner_app_${rev}(scope, receive, send_with_revision)
`;
}

function save(file: string, text: string): void {
  const tmp = join(file, '..', '.app.py.bench-tmp');
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export async function reload(ctx: Ctx): Promise<void> {
  const s = ctx.settings;
  let seq = 0;
  for (const app of appsFor(ctx, 'reload')) {
    ctx.log(`reload: ${app.name}`);
    const run = new ConfigRun(ctx, { scenario: 'reload', app: app.name, workers: 1, variant: '' });
    for (const server of ctx.servers) {
      const why = SERVERS[server].unsupported.reload;
      if (why) run.markUnsupported(server, why);
    }
    for (const server of rotate(ctx.servers, seq)) {
      await run.measure(server, async () => {
        const dir = mkdtempSync(join(ctx.workDir, `reload-${server}-`));
        try {
          cpSync(app.dir, dir, { recursive: true, filter: (p) => !p.includes('__pycache__') });
          const file = join(dir, 'app.py');
          const original = readFileSync(file, 'utf8');
          const port = await freePort();
          return await withServer(SERVERS[server], { appDir: dir, workers: 1, port, accessLog: false, reload: true }, logFile(ctx, server, 'reload'), async (srv) => {
            await pollUntil(`${server}: first 200`, async () => {
              srv.assertAlive();
              return (await tryGet(port, '/', 1000))?.status === 200;
            }, { timeoutMs: 30_000, intervalMs: 20 });
            const saveAndWait = async (rev: number, resaveMs?: number): Promise<number> => {
              const t0 = now();
              let lastSave = t0;
              let linesAtSave = srv.logLineCount();
              save(file, revisedSource(original, rev));
              const t1 = await pollUntil(`${server}: revision ${rev} answering`, async () => {
                srv.assertAlive();
                const res = await tryGet(port, '/', 1000);
                if (res?.status === 200 && res.headers['x-bench-revision'] === String(rev)) return now();
                // saved again only while the server shows no reaction (no log line since the last
                // save): a save during a restart would restart it again, and an app that imports
                // for longer than resaveMs (FastAPI on a busy machine) would never answer
                if (resaveMs !== undefined && now() - lastSave >= resaveMs && srv.logLineCount() === linesAtSave) {
                  lastSave = now();
                  linesAtSave = srv.logLineCount();
                  save(file, revisedSource(original, rev));
                }
                return undefined;
              }, { timeoutMs: s.reloadTimeoutS * 1000, intervalMs: 10 });
              return (t1 - t0) / 1000;
            };
            // An untimed first save, repeated each second until the server reacts: a reloader may arm
            // its watcher only after the app already answers (uvicorn does), or take its baseline late.
            try {
              await saveAndWait(0, 1000);
            } catch (e) {
              if (e instanceof DeadlineError && SERVERS[server].family !== 'corral') {
                throw new Unsupported(`no new code answered within ${s.reloadTimeoutS} s of saves (${srv.logTail(1).trim().slice(0, 100)})`);
              }
              throw e;
            }
            const times: number[] = [];
            for (let rev = 1; rev <= s.reloadSaves; rev++) {
              // a developer looks at the result before saving again: saves are paced, not back to back
              const t = now();
              await pollUntil('the pause between saves', () => now() - t >= s.reloadPauseS * 1000, {
                timeoutMs: s.reloadPauseS * 1000 + 1000,
                intervalMs: 50,
              });
              times.push(await saveAndWait(rev));
            }
            return { medianS: median(times), maxS: Math.max(...times), saves: times.length };
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
    run.finish();
    seq++;
  }
}
