import { expect } from 'vitest';
import { pollUntil, runCorralCommand } from './corral.js';

/** What `corral status --json` prints (the fields the tests read). */
export interface StatusJson {
  pid: number;
  workersWanted: number;
  workers: { slot: number; pid: number; state: string; requests: number; cpuPercent: number | null; rssBytes: number | null; ussBytes: number | null; pssBytes: number | null; restarts: number }[];
}

/** `corral status --json` against a master's control socket: expects exit 0 and nothing on stderr, and returns the report. */
export async function statusJson(controlSocket: string, timeoutMs = 30_000): Promise<StatusJson> {
  const result = await runCorralCommand(['status', '--json', '--control-socket', controlSocket], timeoutMs);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as StatusJson;
}

/** The pids of the workers a status report shows ready, sorted as `[...pids].sort()` sorts them. */
export function readyPids(status: StatusJson): number[] {
  return status.workers
    .filter((worker) => worker.state === 'ready')
    .map((worker) => worker.pid)
    .sort();
}

/**
 * Polls `corral status --json` until it lists exactly `count` workers, all ready, or until `timeoutMs`
 * (the machine's speed); expects that, and returns the report.
 */
export async function expectReadyInStatus(controlSocket: string, count: number, timeoutMs: number): Promise<StatusJson> {
  const status = await pollUntil(
    () => statusJson(controlSocket),
    (current) => current.workers.length === count && readyPids(current).length === count,
    timeoutMs,
  );
  expect(status.workers.map((worker) => worker.state)).toEqual(Array.from({ length: count }, () => 'ready'));
  return status;
}
