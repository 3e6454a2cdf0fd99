import type { Arbiter } from '../supervisor/arbiter.js';
import type { RestartLedger } from '../supervisor/restart-ledger.js';
import { formatBytes } from '../worker/resources.js';
import { VERSION } from '../version.js';
import type { WorkerState } from '../worker/worker.js';
import type { ForkServerStatus } from '../worker/fork-launcher.js';

export interface WorkerStatus {
  slot: number;
  pid: number | null;
  state: WorkerState;
  generation: number;
  /** Milliseconds since the epoch. */
  startedAt: number;
  ageSeconds: number;
  requests: number;
  connections: number;
  /** Null until the first resource sample (every --memory-check-interval seconds). */
  cpuPercent: number | null;
  rssBytes: number | null;
  /** Unique memory (USS) of the tree: what --max-memory compares. */
  ussBytes: number | null;
  /** Proportional memory (PSS) of the tree: summed over workers, the memory they take together. */
  pssBytes: number | null;
  /** When the CPU and memory figures were sampled, ms since the epoch; null before the first sample. */
  sampledAt: number | null;
  restarts: number;
}

export interface StatusReport {
  version: string;
  pid: number;
  uptimeSeconds: number;
  workersWanted: number;
  stopping: boolean;
  workers: WorkerStatus[];
  /** The live fork servers, one per code generation still serving (none with --start-method spawn). */
  forkServers: ForkServerStatus[];
}

/** A snapshot of the master and its workers, for `corral status`. */
export function collectStatus(
  arbiter: Pick<Arbiter, 'liveWorkers' | 'wantedWorkers' | 'stopping'>,
  ledger: Pick<RestartLedger, 'restartsOf'>,
  now = Date.now(),
  forkServers: () => ForkServerStatus[] = () => [],
): StatusReport {
  const workers = arbiter
    .liveWorkers()
    .sort((a, b) => a.slot - b.slot || a.startedAt - b.startedAt)
    .map((worker): WorkerStatus => {
      const usage = worker.usage;
      return {
        slot: worker.slot,
        pid: worker.pid ?? null,
        state: worker.state,
        generation: worker.generation,
        startedAt: worker.startedAt,
        ageSeconds: Math.max(0, (now - worker.startedAt) / 1000),
        requests: worker.requests,
        connections: worker.connections,
        cpuPercent: usage ? Math.round(usage.cpuPercent * 10) / 10 : null,
        rssBytes: usage ? usage.rss : null,
        ussBytes: usage ? usage.uss : null,
        pssBytes: usage ? usage.pss : null,
        sampledAt: usage ? usage.sampledAt : null,
        restarts: ledger.restartsOf(worker.slot),
      };
    });
  return {
    version: VERSION,
    pid: process.pid,
    uptimeSeconds: process.uptime(),
    workersWanted: arbiter.wantedWorkers(),
    stopping: arbiter.stopping,
    workers,
    forkServers: forkServers(),
  };
}

/** 42s, 5m07s, 3h04m, 2d03h: two units are enough to tell workers apart. */
export function formatAge(seconds: number): string {
  const whole = Math.floor(seconds);
  const pad = (value: number) => String(value).padStart(2, '0');
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${pad(whole % 60)}s`;
  if (whole < 86400) return `${Math.floor(whole / 3600)}h${pad(Math.floor(whole / 60) % 60)}m`;
  return `${Math.floor(whole / 86400)}d${pad(Math.floor(whole / 3600) % 24)}h`;
}

/**
 * The human table `corral status` prints. Memory is USS (what --max-memory compares) and PSS; RSS,
 * which counts every shared page in every worker, is left to the JSON to keep the table narrow.
 */
export function formatStatusTable(report: StatusReport): string {
  const header = ['SLOT', 'PID', 'STATE', 'AGE', 'REQUESTS', 'CPU %', 'USS', 'PSS', 'RESTARTS'];
  const bytes = (value: number | null) => (value === null ? '-' : formatBytes(value));
  const rows = report.workers.map((worker) => [
    String(worker.slot),
    worker.pid === null ? '-' : String(worker.pid),
    worker.state,
    formatAge(worker.ageSeconds),
    String(worker.requests),
    worker.cpuPercent === null ? '-' : worker.cpuPercent.toFixed(1),
    bytes(worker.ussBytes),
    bytes(worker.pssBytes),
    String(worker.restarts),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  // Numbers are right-aligned so their digits line up; words are left-aligned.
  const rightAligned = new Set([1, 4, 5, 6, 7, 8]);
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  const ready = report.workers.filter((worker) => worker.state === 'ready').length;
  // In the summary line, so every line under the header stays a worker's (scripts read the table so).
  // Absent from a report of an older corral (a client newer than its master).
  const servers = (report.forkServers ?? []).map(
    (server) =>
      `${server.pid ?? '-'} (generation ${server.generation}${server.state === 'ready' ? '' : `, ${server.state}`}` +
      `${server.pssBytes === null ? '' : `, PSS ${formatBytes(server.pssBytes)}`})`,
  );
  const summary =
    `corral ${report.version}, master pid ${report.pid}, up ${formatAge(report.uptimeSeconds)}, ` +
    `${ready} of ${report.workersWanted} workers ready${report.stopping ? ', stopping' : ''}` +
    (servers.length > 0 ? `; fork server${servers.length === 1 ? '' : 's'} ${servers.join(', ')}` : '');
  return [summary, line(header), ...rows.map(line)].join('\n');
}
