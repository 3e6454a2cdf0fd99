// What every scenario shares: settings (quick/full), the context it reports into, alternation of
// the servers between rounds, and the guard that turns a failure into an error row.
import { join } from 'node:path';
import { median } from '../lib/proc.js';
import type { ResultRow, ScenarioId } from '../report.js';
import { LaunchError, SERVERS, type ServerName } from '../servers.js';

/** Thrown by a measurement that found the server lacks the feature: the row says "not supported". */
export class Unsupported extends Error {}

export interface AppDef {
  name: string; // hello | fastapi
  dir: string;
}

export interface Settings {
  rounds: number;
  warmupS: number;
  throughputDurationS: number;
  throughputWorkers: number[];
  wrkThreads: number;
  wrkConnections: number;
  /** before each throughput run, wait up to quietWaitS for other load below quietPct % of a core */
  quietPct: number;
  quietWaitS: number;
  /** all the waiting for quiet in a run together stops after this (a busy machine is then noted) */
  quietBudgetS: number;
  launchRepeats: number;
  launchWorkers: number[];
  killRepeats: number;
  killWorkers: number;
  hupWorkers: number[];
  hupLoads: Array<'fresh' | 'keep-alive'>;
  /** rounds of the HUP scenario for a worker count (a 32-worker granian restart takes 2 min) */
  hupRounds: (workers: number) => number;
  /** the bound of one rolling restart, in s; default 30 s + 15 s per worker (see hup.ts) */
  hupBoundS?: number;
  hupLeadS: number;
  hupTailS: number;
  freshConcurrency: number;
  reloadSaves: number;
  /** a reloader that shows no new code this long after a save is taken as not working */
  reloadTimeoutS: number;
  /** pause between the new code answering and the next save */
  reloadPauseS: number;
  idleWorkers: number;
  idleSettleS: number;
  idleSampleS: number;
  /** memory-pss: worker counts, rounds, and the length of the load between the two samples */
  pssWorkers: number[];
  pssRounds: number;
  pssLoadS: number;
  /** the apps a scenario runs on, when not every app of the run (an explicit --apps overrides) */
  scenarioApps: Partial<Record<ScenarioId, string[]>>;
}

export const FULL: Settings = {
  rounds: 3,
  warmupS: 2,
  throughputDurationS: 10,
  throughputWorkers: [2, 4],
  wrkThreads: 1,
  wrkConnections: 64,
  quietPct: 20,
  quietWaitS: 60,
  quietBudgetS: 600,
  launchRepeats: 5,
  launchWorkers: [2, 4],
  killRepeats: 3,
  killWorkers: 2,
  hupWorkers: [2, 8, 32],
  hupLoads: ['fresh', 'keep-alive'],
  hupRounds: (workers) => (workers >= 32 ? 1 : 2),
  hupLeadS: 1,
  hupTailS: 1,
  freshConcurrency: 8,
  reloadSaves: 7,
  reloadPauseS: 1,
  reloadTimeoutS: 10,
  idleWorkers: 16,
  idleSettleS: 3,
  idleSampleS: 10,
  pssWorkers: [4, 8, 32],
  pssRounds: 1,
  pssLoadS: 5,
  scenarioApps: { 'memory-pss': ['fastapi'] },
};

export const QUICK: Settings = {
  ...FULL,
  rounds: 1,
  warmupS: 1,
  throughputDurationS: 3,
  throughputWorkers: [2],
  quietWaitS: 3,
  quietBudgetS: 6,
  launchRepeats: 2,
  launchWorkers: [2],
  killRepeats: 1,
  hupWorkers: [2],
  hupRounds: () => 1,
  reloadSaves: 5,
  reloadPauseS: 0.5,
  reloadTimeoutS: 5,
  idleSettleS: 1,
  idleSampleS: 3,
  pssWorkers: [2],
  pssLoadS: 2,
  scenarioApps: {},
};

export interface Ctx {
  quick: boolean;
  settings: Settings;
  servers: ServerName[];
  apps: AppDef[];
  workDir: string;
  rows: ResultRow[];
  log(msg: string): void;
}

/** The apps of the run that a scenario measures (settings.scenarioApps), logging when none is left. */
export function appsFor(ctx: Ctx, scenario: ScenarioId): AppDef[] {
  const names = ctx.settings.scenarioApps[scenario];
  if (names === undefined) return ctx.apps;
  const apps = ctx.apps.filter((a) => names.includes(a.name));
  if (apps.length === 0) ctx.log(`${scenario}: skipped: it runs on ${names.join(', ')}, and the run has none of them (--apps)`);
  return apps;
}

let logSeq = 0;
export function logFile(ctx: Ctx, server: ServerName, what: string): string {
  return join(ctx.workDir, `${String(++logSeq).padStart(3, '0')}-${what}-${server}.log`);
}

/** The servers in a different order each round, so that drift over time hits each alike. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const n = items.length;
  if (n === 0) return [];
  const k = ((round % n) + n) % n;
  return [...items.slice(k), ...items.slice(0, k)];
}

export interface Config {
  scenario: ScenarioId;
  app: string;
  workers: number;
  variant: string;
}

/** Collects each server's samples for one configuration over the rounds, then emits one row per
 *  server with the medians (or the first error). */
export class ConfigRun {
  private readonly samples = new Map<ServerName, Record<string, number[]>>();
  private readonly errors = new Map<ServerName, string>();
  private readonly unsupported = new Map<ServerName, string>();

  /** text figures per server, copied into the rows */
  readonly info = new Map<ServerName, Record<string, string>>();

  constructor(
    private readonly ctx: Ctx,
    readonly config: Config,
    /** metrics that are summed over the rounds instead of taking the median */
    private readonly summed: (key: string) => boolean = () => false,
  ) {}

  markUnsupported(server: ServerName, why: string): void {
    this.unsupported.set(server, why);
  }

  isOut(server: ServerName): boolean {
    return this.errors.has(server) || this.unsupported.has(server);
  }

  /** Runs one measurement; its metrics are added as samples. A failure is logged and recorded. */
  async measure(server: ServerName, fn: () => Promise<Record<string, number>>): Promise<void> {
    if (this.isOut(server)) return;
    const { scenario, app, workers, variant } = this.config;
    const what = `${scenario} ${app} ${workers}w ${variant} ${server}`.replace(/\s+/g, ' ');
    const missing = SERVERS[server].missing();
    if (missing) {
      this.errors.set(server, missing);
      this.ctx.log(`  ${what}: skipped (${missing})`);
      return;
    }
    const t0 = performance.now();
    try {
      const metrics = await fn();
      const rec = this.samples.get(server) ?? {};
      for (const [k, v] of Object.entries(metrics)) (rec[k] ??= []).push(v);
      this.samples.set(server, rec);
      const shown = Object.entries(metrics)
        .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`)
        .join(' ');
      this.ctx.log(`  ${what}: ${shown} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      if (e instanceof Unsupported) {
        this.unsupported.set(server, e.message);
        this.ctx.log(`  ${what}: not supported: ${e.message}`);
        return;
      }
      const msg = e instanceof LaunchError || e instanceof Error ? e.message : String(e);
      this.errors.set(server, msg);
      this.ctx.log(`  ${what}: ERROR ${msg}`);
    }
  }

  finish(): void {
    for (const server of this.ctx.servers) {
      const base = { ...this.config, server };
      const unsupported = this.unsupported.get(server);
      const error = this.errors.get(server);
      const samples = this.samples.get(server);
      if (unsupported !== undefined) this.ctx.rows.push({ ...base, status: 'unsupported', metrics: {}, note: unsupported });
      else if (error !== undefined) this.ctx.rows.push({ ...base, status: 'error', metrics: {}, note: firstLine(error) });
      else if (samples) {
        const metrics: Record<string, number> = {};
        for (const [k, vs] of Object.entries(samples)) metrics[k] = this.summed(k) ? vs.reduce((a, b) => a + b, 0) : median(vs);
        const info = this.info.get(server);
        this.ctx.rows.push({ ...base, status: 'ok', metrics, samples, ...(info ? { info } : {}) });
      }
    }
  }
}

/** A one-line summary of an error message that may carry a log tail or a traceback: its first
 *  line and the last line that names an error. */
export const firstLine = (s: string): string => {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  const telling = [...lines].reverse().find((l) => /(Error|Exception|error:|fatal)/.test(l));
  const last = telling ?? (lines.length > 1 ? lines[lines.length - 1] : undefined);
  return last && last !== lines[0] ? `${lines[0]} … ${last}` : (lines[0] ?? s);
};

export const MiB = 1024 * 1024;
