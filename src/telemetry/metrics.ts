import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Arbiter } from '../supervisor/arbiter.js';
import type { LogOutput } from './logger.js';
import type { RestartLedger } from '../supervisor/restart-ledger.js';
import type { Worker, WorkerState } from '../worker/worker.js';
import type { ForkServerSource } from '../worker/fork-launcher.js';

export const METRIC_PREFIX = 'corral_';

const WORKER_STATES: readonly Exclude<WorkerState, 'exited'>[] = ['booting', 'ready', 'draining'];

/** Labels that tell live workers apart: during a rolling restart two workers share a slot. */
function workerLabels(worker: Worker): { worker: string; pid: string } {
  return { worker: String(worker.slot), pid: String(worker.pid ?? '') };
}

/**
 * corral's Prometheus registry. Worker figures are read from the arbiter's live workers at scrape
 * time (requests from heartbeats, CPU and memory from the resource sampler), so nothing runs
 * between scrapes; events (restarts, boots, reloads) are counted as they happen.
 */
export class CorralMetrics {
  readonly registry = new Registry();

  constructor(arbiter: Arbiter, ledger: RestartLedger, logs?: Pick<LogOutput, 'dropped'>, forkServers?: ForkServerSource) {
    const registers = [this.registry];
    const live = () => arbiter.liveWorkers().filter((worker) => worker.state !== 'exited');

    /** A family with one label, its series read at scrape time. */
    const byLabel = (kind: 'gauge' | 'counter', name: string, help: string, label: string, read: () => [string, number][]) => {
      const collect = function (this: Gauge<string> | Counter<string>): void {
        this.reset();
        for (const [labelValue, figure] of read()) {
          if (this instanceof Gauge) this.set({ [label]: labelValue }, figure);
          else this.inc({ [label]: labelValue }, figure);
        }
      };
      const options = { name: `${METRIC_PREFIX}${name}`, help, labelNames: [label], registers, collect };
      if (kind === 'gauge') new Gauge(options);
      else new Counter(options);
    };
    byLabel('gauge', 'workers', 'Live worker processes by state', 'state', () => {
      const workers = live();
      return WORKER_STATES.map((state) => [state, workers.filter((worker) => worker.state === state).length]);
    });
    new Gauge({
      name: `${METRIC_PREFIX}workers_wanted`,
      help: 'Workers corral keeps running (--workers, changed by TTIN/TTOU and corral scale)',
      registers,
      collect() {
        this.set(arbiter.wantedWorkers());
      },
    });

    const restarts = new Counter({
      name: `${METRIC_PREFIX}worker_restarts_total`,
      help: 'Workers that exited while corral kept running, by reason (crash, signal, timeout, restart, max-requests, ...)',
      labelNames: ['reason'] as const,
      registers,
    });
    ledger.onRestart((reason) => restarts.inc({ reason }));

    /** A family with one series per live worker, its value read at scrape time (undefined: no series). */
    const perWorker = (kind: 'gauge' | 'counter', name: string, help: string, value: (worker: Worker) => number | undefined) => {
      const collect = function (this: Gauge<'worker' | 'pid'> | Counter<'worker' | 'pid'>): void {
        this.reset();
        for (const worker of live()) {
          const figure = value(worker);
          if (figure === undefined) continue;
          if (this instanceof Gauge) this.set(workerLabels(worker), figure);
          else this.inc(workerLabels(worker), figure);
        }
      };
      const options = { name: `${METRIC_PREFIX}${name}`, help, labelNames: ['worker', 'pid'] as const, registers, collect };
      if (kind === 'gauge') new Gauge(options);
      else new Counter(options);
    };
    const sampled = "of each live worker's process tree, from the latest resource sample";
    const perWorkerFamilies: [kind: 'gauge' | 'counter', name: string, help: string, value: (worker: Worker) => number | undefined][] = [
      ['gauge', 'worker_start_time_seconds', 'When each live worker was started, seconds since the epoch', (worker) => worker.startedAt / 1000],
      ['counter', 'worker_requests_total', 'Requests served by each live worker, from its latest heartbeat', (worker) => worker.requests],
      ['gauge', 'worker_connections', 'Open connections of each live worker, from its latest heartbeat', (worker) => worker.connections],
      ['counter', 'worker_cpu_seconds_total', `CPU time ${sampled}`, (worker) => worker.usage?.cpuSeconds],
      ['gauge', 'worker_resident_memory_bytes', `Resident memory (RSS, shared pages counted in every process) ${sampled}`, (worker) => worker.usage?.rss],
      ['gauge', 'worker_unique_memory_bytes', `Unique memory (USS: pages no other process maps, what --max-memory compares) ${sampled}`, (worker) => worker.usage?.uss],
      ['gauge', 'worker_proportional_memory_bytes', `Proportional memory (PSS: shared pages divided among their sharers) ${sampled}`, (worker) => worker.usage?.pss],
    ];
    for (const family of perWorkerFamilies) perWorker(...family);

    const bootSeconds = new Histogram({
      name: `${METRIC_PREFIX}worker_boot_seconds`,
      help: 'Time from spawning a worker to its ready report (app import and lifespan start-up)',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    arbiter.on('worker-ready', (worker) => bootSeconds.observe(((worker.readyAt ?? Date.now()) - worker.startedAt) / 1000));

    const reloads = new Counter({
      name: `${METRIC_PREFIX}reloads_total`,
      help: 'Rolling restarts (HUP, corral reload) by trigger and result (ok, aborted)',
      labelNames: ['reason', 'result'] as const,
      registers,
    });
    const reloadSeconds = new Histogram({
      name: `${METRIC_PREFIX}reload_duration_seconds`,
      help: 'Duration of rolling restarts, from the first new worker to the exit of the last old one',
      labelNames: ['reason'] as const,
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    const reloading = new Gauge({
      name: `${METRIC_PREFIX}reload_in_progress`,
      help: '1 while a rolling restart runs, until its old workers have exited',
      registers,
    });
    reloading.set(0);
    arbiter.on('restart-begin', () => reloading.set(1));
    arbiter.on('restart-end', (reason, ok, seconds) => {
      reloading.set(0);
      reloads.inc({ reason, result: ok ? 'ok' : 'aborted' });
      reloadSeconds.observe({ reason }, seconds);
    });

    if (logs) {
      // Counted by the log sinks themselves (prom-client loads only with --metrics-bind); read at scrape time.
      byLabel(
        'counter',
        'log_records_dropped_total',
        'Log records dropped because their sink (stdout, stderr, a log file) failed to write or did not keep up',
        'sink',
        () => logs.dropped().map(({ sink, records }) => [sink, records]),
      );
    }

    if (forkServers) {
      // One series per live fork server (--start-method fork), sampled at the scrape.
      const memory = new Gauge({
        name: `${METRIC_PREFIX}fork_server_memory_bytes`,
        help: 'Memory of each live fork server (one per code generation still serving), from /proc/PID/smaps_rollup: kind = pss (its share of the pages its workers use with it), uss, rss',
        labelNames: ['generation', 'pid', 'kind'] as const,
        registers,
        async collect() {
          await forkServers.sample();
          this.reset();
          for (const server of forkServers.status()) {
            const labels = { generation: String(server.generation), pid: String(server.pid ?? '') };
            if (server.pssBytes !== null) this.set({ ...labels, kind: 'pss' }, server.pssBytes);
            if (server.ussBytes !== null) this.set({ ...labels, kind: 'uss' }, server.ussBytes);
            if (server.rssBytes !== null) this.set({ ...labels, kind: 'rss' }, server.rssBytes);
          }
        },
      });
      void memory;
    }

    // The master's own CPU, memory, file descriptors, event loop lag, …
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
