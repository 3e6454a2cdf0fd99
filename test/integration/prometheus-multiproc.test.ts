import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { get, isAlive, killAllCorrals, startApp, VENV_PYTHON, waitFor, type Corral } from '../helpers/corral.js';
import { parsePrometheusText, samplesOf } from '../helpers/prometheus.js';

const temporaryDirs: string[] = [];

afterEach(() => {
  killAllCorrals();
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-prom-'));
  temporaryDirs.push(dir);
  return dir;
}

/** What an earlier run leaves: a process (dead now) that counted 1000 requests and set its live gauges. */
function leaveStaleFiles(dir: string): number {
  const code = [
    'import os',
    'from prometheus_client import Counter, Gauge',
    'Counter("app_requests", "x").inc(1000)',
    'Gauge("app_live_workers", "x", multiprocess_mode="livesum").set(1)',
    'Gauge("app_worker_up", "x", multiprocess_mode="liveall").set(1)',
    'print(os.getpid())',
  ].join('\n');
  return Number(execFileSync(VENV_PYTHON, ['-c', code], { env: { ...process.env, PROMETHEUS_MULTIPROC_DIR: dir }, encoding: 'utf8' }).trim());
}

/** The app's own /metrics: every worker's files summed by prometheus_client's MultiProcessCollector. */
async function appMetrics(port: number): Promise<{ requests: number; liveSum: number; livePids: number[] }> {
  const reply = await get({ port }, '/metrics');
  expect(reply.status).toBe(200);
  const families = parsePrometheusText(reply.body);
  return {
    requests: samplesOf(families, 'app_requests_total').reduce((sum, sample) => sum + sample.value, 0),
    liveSum: samplesOf(families, 'app_live_workers').reduce((sum, sample) => sum + sample.value, 0),
    livePids: samplesOf(families, 'app_worker_up').map((sample) => Number(sample.labels.pid)).sort(),
  };
}

/** Every recycle the log announced has ended with its worker's exit, and `count` workers serve. */
async function recyclingSettled(corral: Corral, count: number): Promise<number[]> {
  return waitFor(
    () => {
      const exited = new Set(corral.find((r) => r.msg === 'worker exited').map((r) => r.pid));
      const recycling = corral.find((r) => r.msg === 'recycling worker: starting its replacement').map((r) => r.pid);
      const pids = corral.readyWorkerPids();
      return recycling.every((pid) => exited.has(pid)) && pids.length === count ? pids.sort() : undefined;
    },
    20_000,
    `recycling to settle with ${count} workers; log so far:\n${corral.output.slice(-3000)}`,
  );
}

describe('prometheus_client multiprocess mode ($PROMETHEUS_MULTIPROC_DIR)', () => {
  it('empties the directory at start; counters survive recycling; exited and SIGKILLed workers lose their live gauges', async () => {
    const dir = tempDir();
    const stalePid = leaveStaleFiles(dir);
    expect(fs.existsSync(path.join(dir, `counter_${stalePid}.db`))).toBe(true);
    fs.writeFileSync(path.join(dir, 'README'), 'not a metrics file\n');
    const { corral, port } = await startApp(['-w', '2', '--max-requests', '10'], { app: 'prom_app:app',
      env: { PROMETHEUS_MULTIPROC_DIR: dir },
    });
    const first = await corral.waitForReadyWorkers(2);
    // The earlier run's files went before any worker started; other files stay.
    expect(fs.readdirSync(dir).filter((name) => name.endsWith(`_${stalePid}.db`))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'README'))).toBe(true);

    // 25 requests on two workers that each serve 10: at least one is recycled on the way.
    for (let request = 0; request < 25; request += 1) expect((await get({ port })).status).toBe(200);
    await corral.waitForLog((r) => r.msg === 'worker exited' && r.reason === 'max-requests', 20_000, 'a worker recycled by --max-requests');
    const serving = await recyclingSettled(corral, 2);
    const recycled = first.filter((pid) => !serving.includes(pid));
    expect(recycled.length).toBeGreaterThan(0);

    const afterRecycling = await appMetrics(port);
    // The recycled worker's requests still count (its counter file stays); the stale 1000 do not.
    expect(afterRecycling.requests).toBe(25);
    expect(afterRecycling.liveSum).toBe(2);
    expect(afterRecycling.livePids).toEqual(serving);

    // A worker killed with SIGKILL runs no exit code of its own: the master marks it dead.
    const killed = serving[0]!;
    process.kill(killed, 'SIGKILL');
    await waitFor(() => !isAlive(killed), 10_000, 'the killed worker to be gone');
    const afterKill = await recyclingSettled(corral, 2);
    expect(afterKill).not.toContain(killed);
    const metrics = await appMetrics(port);
    expect(metrics.requests).toBe(25);
    expect(metrics.liveSum).toBe(2);
    expect(metrics.livePids).toEqual(afterKill);
  });
});
