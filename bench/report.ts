// Results model and the three outputs: JSON, a Markdown table with each figure's ratio to
// `uvicorn --workers`, and an SVG chart written by hand. Everything here but writeReport() is pure.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASELINE, SERVERS, SERVER_LABELS, SERVER_NAMES, type ServerName } from './servers.js';

export const SCENARIO_IDS = ['throughput', 'memory', 'memory-pss', 'launch', 'kill', 'hup', 'reload', 'idle'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export type RowStatus = 'ok' | 'error' | 'unsupported';

export interface ResultRow {
  scenario: ScenarioId;
  app: string;
  workers: number;
  /** what else distinguishes the configuration: "access log off", "fresh connections", ... */
  variant: string;
  server: ServerName;
  status: RowStatus;
  /** medians over the rounds */
  metrics: Record<string, number>;
  /** text figures (e.g. how the server restarts), shown by text metrics */
  info?: Record<string, string>;
  /** every round's value, for the JSON */
  samples?: Record<string, number[]>;
  /** error message, or why the feature is not supported */
  note?: string;
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  kernel: string;
  node: string;
  python: string;
  versions: Record<string, string>;
  commit: string;
  date: string;
}

export interface BenchReport {
  mode: 'quick' | 'full' | 'partial';
  machine: MachineInfo;
  settings: Record<string, unknown>;
  durationS: number;
  rows: ResultRow[];
}

export interface MetricDef {
  key: string;
  label: string;
  /** which direction is better; ratios are shown only for metrics that have one */
  better?: 'higher' | 'lower';
  digits: number;
  /** a text column read from row.info */
  text?: boolean;
}

export const SCENARIO_TITLES: Record<ScenarioId, string> = {
  throughput: 'Throughput and latency (wrk, keep-alive)',
  memory: 'Resident memory after the throughput run',
  'memory-pss': 'Total PSS of every process (master, fork servers, workers)',
  launch: 'Launch → first 200 and → all workers ready',
  kill: 'kill -9 of a worker → its replacement answering',
  hup: 'HUP (rolling restart) under load',
  reload: 'Dev reload: file saved → new code answering',
  idle: 'Master CPU at idle',
};

export const METRICS: Record<ScenarioId, MetricDef[]> = {
  throughput: [
    { key: 'rps', label: 'req/s', better: 'higher', digits: 0 },
    { key: 'p50Ms', label: 'p50 ms', better: 'lower', digits: 2 },
    { key: 'p99Ms', label: 'p99 ms', better: 'lower', digits: 2 },
    { key: 'errors', label: 'errors', digits: 0 },
    { key: 'otherLoadPct', label: 'other load %', digits: 0 },
  ],
  memory: [
    { key: 'masterRssMiB', label: 'master MiB', better: 'lower', digits: 1 },
    { key: 'workerRssMiB', label: 'per worker MiB', better: 'lower', digits: 1 },
    { key: 'totalRssMiB', label: 'total MiB', better: 'lower', digits: 1 },
  ],
  'memory-pss': [
    { key: 'totalPssMiB', label: 'total PSS MiB', better: 'lower', digits: 1 },
    { key: 'masterPssMiB', label: 'master MiB', better: 'lower', digits: 1 },
    { key: 'workersPssMiB', label: 'workers MiB (sum)', better: 'lower', digits: 1 },
    { key: 'otherPssMiB', label: 'other processes MiB', digits: 1 },
    { key: 'workerUssMiB', label: 'USS per worker MiB', better: 'lower', digits: 1 },
    { key: 'workers', label: 'workers', digits: 0 },
    { key: 'processes', label: 'processes', digits: 0 },
  ],
  launch: [
    { key: 'first200S', label: 'first 200 s', better: 'lower', digits: 3 },
    { key: 'allReadyS', label: 'all workers ready s', better: 'lower', digits: 3 },
  ],
  kill: [
    { key: 'respawnS', label: 'new worker pid s', better: 'lower', digits: 3 },
    { key: 'answerS', label: 'replacement answering s', better: 'lower', digits: 3 },
  ],
  hup: [
    { key: 'replacedS', label: 'all workers replaced s', better: 'lower', digits: 2 },
    { key: 'rps', label: 'req/s meanwhile', better: 'higher', digits: 0 },
    { key: 'masterCpuS', label: 'master CPU s', better: 'lower', digits: 2 },
    { key: 'failed', label: 'failed requests', digits: 0 },
    { key: 'socketErrors', label: 'socket errors', digits: 0 },
    { key: 'non2xx', label: 'non-2xx', digits: 0 },
    { key: 'requests', label: 'requests', digits: 0 },
    { key: 'strategy', label: 'how the server restarts', digits: 0, text: true },
  ],
  reload: [
    { key: 'medianS', label: 'median s', better: 'lower', digits: 3 },
    { key: 'maxS', label: 'max s', better: 'lower', digits: 3 },
    { key: 'saves', label: 'saves', digits: 0 },
  ],
  idle: [
    { key: 'masterCpuPct', label: 'master CPU % of a core', better: 'lower', digits: 2 },
    { key: 'workersCpuPct', label: 'workers CPU % (sum)', better: 'lower', digits: 2 },
    { key: 'masterRssMiB', label: 'master MiB', better: 'lower', digits: 1 },
  ],
};

// ---------------------------------------------------------------------------------------------
// Formatting

export function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** value / base as "0.98×"; undefined when there is no meaningful ratio. */
export function ratio(value: number | undefined, base: number | undefined): number | undefined {
  // (callers that know a figure is only a lower bound do not ask for its ratio)
  if (value === undefined || base === undefined || !Number.isFinite(value) || !Number.isFinite(base)) return undefined;
  if (base === 0) return undefined;
  return value / base;
}

export function formatRatio(r: number | undefined): string {
  if (r === undefined) return '';
  return `${r.toFixed(2)}×`;
}

export const configKey = (r: Pick<ResultRow, 'scenario' | 'app' | 'workers' | 'variant'>): string =>
  `${r.scenario}|${r.app}|${r.workers}|${r.variant}`;

/** The baseline (uvicorn --workers) row of the same configuration, if it ran fine. */
export function baselineOf(row: ResultRow, rows: ResultRow[]): ResultRow | undefined {
  const key = configKey(row);
  return rows.find((r) => r.server === BASELINE && r.status === 'ok' && configKey(r) === key);
}

/** One table cell: "12,345 (0.98×)", the baseline's own value without a ratio. */
export function formatCell(row: ResultRow, metric: MetricDef, rows: ResultRow[]): string {
  if (metric.text) return row.info?.[metric.key] ?? '—';
  const v = row.metrics[metric.key];
  if (v === undefined) return '—';
  // a measurement that hit its bound: the figure is a lower bound, and no ratio is given
  if (row.metrics[`${metric.key}Exceeded`]) return `> ${formatNumber(v, metric.digits)}`;
  const text = formatNumber(v, metric.digits);
  if (!metric.better || row.server === BASELINE) return text;
  const base = baselineOf(row, rows);
  const r = ratio(v, base?.metrics[metric.key]);
  if (r === undefined) return text;
  // the baseline's figure is only a lower bound: the true ratio is below this one
  return base?.metrics[`${metric.key}Exceeded`] ? `${text} (< ${formatRatio(r)})` : `${text} (${formatRatio(r)})`;
}

const escapeCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

const truncate = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function orderRows(rows: ResultRow[]): ResultRow[] {
  // keep the configurations in the order they were first produced, servers in a fixed order
  const order = new Map<string, number>();
  for (const r of rows) if (!order.has(configKey(r))) order.set(configKey(r), order.size);
  return [...rows].sort(
    (a, b) =>
      order.get(configKey(a))! - order.get(configKey(b))! ||
      SERVER_NAMES.indexOf(a.server) - SERVER_NAMES.indexOf(b.server),
  );
}

/** How a server is named in a scenario's table (the reload rows run each server in dev mode). */
export function serverLabel(scenario: ScenarioId, server: ServerName): string {
  if (scenario === 'reload') {
    const spec = SERVERS[server];
    if (spec.family === 'gunicorn') return 'gunicorn --reload + UvicornWorker';
    return [spec.family, '--reload', ...spec.extraArgs].join(' ');
  }
  return SERVER_LABELS[server];
}

export function scenarioTable(scenario: ScenarioId, rows: ResultRow[]): string {
  const mine = orderRows(rows.filter((r) => r.scenario === scenario));
  if (mine.length === 0) return '';
  const metrics = METRICS[scenario];
  const withVariant = mine.some((r) => r.variant !== '');
  const keys = ['app', 'workers', ...(withVariant ? ['variant'] : []), 'server'];
  const head = [...keys, ...metrics.map((m) => m.label)];
  const align = [...keys.map(() => '---'), ...metrics.map((m) => (m.text ? '---' : '---:'))];
  const lines = [`| ${head.join(' | ')} |`, `|${align.join('|')}|`];
  for (const r of mine) {
    let cells: string[];
    if (r.status === 'ok') cells = metrics.map((m) => formatCell(r, m, rows));
    else {
      const what = r.status === 'unsupported' ? `not supported${r.note ? `: ${r.note}` : ''}` : `error: ${r.note ?? '?'}`;
      cells = [truncate(what, 120), ...metrics.slice(1).map(() => '')];
    }
    const row = [r.app, String(r.workers), ...(withVariant ? [r.variant] : []), serverLabel(scenario, r.server), ...cells].map(escapeCell);
    lines.push(`| ${row.join(' | ')} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Goals (issue 7): where corral misses one, the report says so.

export interface GoalCheck {
  goal: string;
  status: 'met' | 'missed' | 'not measured';
  detail: string;
}

/** The row of another server for the same configuration, if it ran fine. */
export function counterpartOf(row: ResultRow, rows: ResultRow[], server: ServerName): ResultRow | undefined {
  const key = configKey(row);
  return rows.find((r) => r.server === server && r.status === 'ok' && configKey(r) === key);
}

/** The workers and apps of issue 12's HUP goal. */
const HUP_GOAL = { app: 'fastapi', workers: [8, 32] };
/** The worker count of the total-PSS goal. */
const PSS_GOAL_WORKERS = 8;

export function checkGoals(rows: ResultRow[]): GoalCheck[] {
  const corral = (s: ScenarioId): ResultRow[] => rows.filter((r) => r.server === 'corral' && r.scenario === s);
  const out: GoalCheck[] = [];
  const describe = (r: ResultRow): string => `${r.app} ${r.workers}w ${r.variant}`.trim();

  /** corral's figure over `ref`'s (the baseline unless said), per configuration; every measured
   *  configuration must pass, and one where corral did not run fine is a miss. */
  const ratioGoal = (
    goal: string,
    s: ScenarioId,
    key: string,
    ok: (r: number) => boolean,
    { ref = BASELINE, where = () => true }: { ref?: ServerName; where?: (r: ResultRow) => boolean } = {},
  ): void => {
    const rs = corral(s)
      .filter(where)
      .map((row) => ({ row, r: row.status === 'ok' ? ratio(row.metrics[key], counterpartOf(row, rows, ref)?.metrics[key]) : undefined }));
    const measured = rs.filter((x) => x.r !== undefined) as Array<{ row: ResultRow; r: number }>;
    if (measured.length === 0) {
      const failed = rs.filter((x) => x.row.status === 'error');
      out.push({ goal, status: 'not measured', detail: failed.length ? `corral: error (${truncate(failed[0]!.row.note ?? '', 80)})` : `no corral/${ref} pair` });
      return;
    }
    const missed = measured.filter((x) => !ok(x.r));
    const of = ref === BASELINE ? '' : ` ${ref}'s`;
    const detail = measured.map((x) => `${describe(x.row)}: ${formatRatio(x.r)}${of}`).join('; ');
    out.push({ goal, status: missed.length || measured.length < rs.length ? 'missed' : 'met', detail });
  };

  ratioGoal('throughput ≥ 0.98× uvicorn --workers (same workers)', 'throughput', 'rps', (r) => r >= 0.98);

  const tp = geomeanRatio(rows, 'corral', 'throughput', 'rps');
  const p99 = geomeanRatio(rows, 'corral', 'throughput', 'p99Ms');
  out.push(
    tp.r === undefined
      ? { goal: 'throughput geomean ≥ 0.98× uvicorn --workers', status: 'not measured', detail: '' }
      : {
          goal: 'throughput geomean ≥ 0.98× uvicorn --workers',
          status: tp.r >= 0.98 ? 'met' : 'missed',
          detail: `req/s ${formatRatio(tp.r)} over ${tp.n} configurations; p99 ${p99.r === undefined ? '—' : formatRatio(p99.r)}`,
        },
  );

  ratioGoal('launch → first 200 no slower than uvicorn (≤ 1.00×)', 'launch', 'first200S', (r) => r <= 1.0);
  ratioGoal('kill -9 → replacement answering ≤ 0.50× gunicorn + UvicornWorker\'s time', 'kill', 'answerS', (r) => r <= 0.5, { ref: 'gunicorn' });

  const hup = corral('hup');
  if (hup.length === 0) out.push({ goal: 'HUP with zero failed requests', status: 'not measured', detail: '' });
  else {
    const bad = hup.filter((r) => r.status !== 'ok' || (r.metrics.failed ?? 0) > 0);
    out.push({
      goal: 'HUP with zero failed requests',
      status: bad.length ? 'missed' : 'met',
      detail: hup
        .map((r) => `${describe(r)}: ${r.status === 'ok' ? `${r.metrics.failed} failed` : r.status}`)
        .join('; '),
    });
  }
  out.push(hupVsGunicorn(rows, corral('hup'), describe));

  ratioGoal(
    `total PSS ≤ 0.70× uvicorn --workers at ${PSS_GOAL_WORKERS} workers`,
    'memory-pss',
    'totalPssMiB',
    (r) => r <= 0.7,
    { where: (r) => r.workers === PSS_GOAL_WORKERS },
  );

  const threshold = (goal: string, s: ScenarioId, key: string, limit: number, unit: string): void => {
    const rs = corral(s).filter((r) => r.status === 'ok' && r.metrics[key] !== undefined);
    if (rs.length === 0) {
      out.push({ goal, status: 'not measured', detail: corral(s).length ? `corral: ${corral(s)[0]!.status}` : '' });
      return;
    }
    const worst = Math.max(...rs.map((r) => r.metrics[key]!));
    out.push({ goal, status: worst <= limit ? 'met' : 'missed', detail: `worst ${formatNumber(worst, 2)} ${unit}` });
  };
  threshold('master RSS ≤ 50 MiB', 'memory', 'masterRssMiB', 50, 'MiB');
  threshold('master CPU at idle with 16 workers < 1% of a core', 'idle', 'masterCpuPct', 1, '% of a core');
  return out;
}

/** HUP of 8 and 32 FastAPI workers: every worker replaced no later than gunicorn's (≤ 1.00× its
 *  time), with 0 failed requests and 0 socket errors, under each load. A restart that hit the
 *  harness's bound is a miss for corral, and no longer than any finished one for gunicorn. */
function hupVsGunicorn(rows: ResultRow[], corralHup: ResultRow[], describe: (r: ResultRow) => string): GoalCheck {
  const goal =
    `HUP of ${HUP_GOAL.workers.join(' and ')} ${HUP_GOAL.app === 'fastapi' ? 'FastAPI' : HUP_GOAL.app} workers: all replaced ≤ 1.00× ` +
    "gunicorn + UvicornWorker's time, 0 failed requests, 0 socket errors";
  const mine = corralHup.filter((r) => r.app === HUP_GOAL.app && HUP_GOAL.workers.includes(r.workers));
  if (mine.length === 0) return { goal, status: 'not measured', detail: '' };
  let missed = false;
  let paired = 0;
  const details = mine.map((r) => {
    if (r.status !== 'ok') {
      missed = true;
      return `${describe(r)}: ${r.status}`;
    }
    const failed = r.metrics.failed ?? NaN;
    const socketErrors = r.metrics.socketErrors ?? NaN;
    if (!(failed === 0 && socketErrors === 0)) missed = true;
    const counts = `${formatNumber(failed, 0)} failed, ${formatNumber(socketErrors, 0)} socket errors`;
    const g = counterpartOf(r, rows, 'gunicorn');
    const mineBound = Boolean(r.metrics.replacedSExceeded);
    if (g === undefined) return `${describe(r)}: no gunicorn row; ${counts}`;
    paired++;
    const theirsBound = Boolean(g.metrics.replacedSExceeded);
    const q = ratio(r.metrics.replacedS, g.metrics.replacedS);
    let time: string;
    if (mineBound) {
      missed = true;
      time = `> ${formatNumber(r.metrics.replacedS ?? NaN, 1)} s (bound)`;
    } else if (theirsBound) time = `${formatNumber(r.metrics.replacedS ?? NaN, 1)} s, gunicorn > bound`;
    else {
      if (q === undefined || q > 1) missed = true;
      time = `${formatRatio(q)} gunicorn's`;
    }
    return `${describe(r)}: ${time}, ${counts}`;
  });
  const status: GoalCheck['status'] = missed ? 'missed' : paired === 0 ? 'not measured' : 'met';
  return { goal, status, detail: details.join('; ') };
}

// ---------------------------------------------------------------------------------------------
// Markdown

export function machineLine(m: MachineInfo): string {
  const v = Object.entries(m.versions).map(([k, val]) => `${k} ${val}`).join(', ');
  return `${m.nproc} × ${m.cpuModel}, ${m.memTotalGiB.toFixed(0)} GiB RAM, Linux ${m.kernel}; Node ${m.node}, Python ${m.python}; ${v}`;
}

// ---------------------------------------------------------------------------------------------
// One-table summary (for the README): one row per server.

const geomean = (xs: number[]): number | undefined =>
  xs.length ? Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length) : undefined;

/** Geometric mean over every configuration of a scenario of the server's ratio to the baseline. */
export function geomeanRatio(rows: ResultRow[], server: ServerName, scenario: ScenarioId, key: string): { r?: number; n: number } {
  const rs = rows
    .filter((row) => row.server === server && row.scenario === scenario && row.status === 'ok')
    .map((row) => ratio(row.metrics[key], baselineOf(row, rows)?.metrics[key]))
    .filter((x): x is number => x !== undefined && x > 0);
  return { r: geomean(rs), n: rs.length };
}

export function summaryTable(rows: ResultRow[]): string {
  const servers = SERVER_NAMES.filter((s) => rows.some((r) => r.server === s));
  const find = (server: ServerName, scenario: ScenarioId, pred: (r: ResultRow) => boolean): ResultRow | undefined =>
    rows.find((r) => r.server === server && r.scenario === scenario && pred(r));
  const cell = (row: ResultRow | undefined, key: string, digits: number, unit = ''): string => {
    if (!row) return '—';
    if (row.status === 'unsupported') return 'not supported';
    if (row.status === 'error') return 'error';
    const v = row.metrics[key];
    return v === undefined ? '—' : `${formatNumber(v, digits)}${unit}`;
  };
  const first = (scenario: ScenarioId): ResultRow | undefined => rows.find((r) => r.scenario === scenario);
  const ref = (scenario: ScenarioId): string => {
    const r = first(scenario);
    return r ? `${r.app}, ${r.workers}w` : '';
  };
  const same = (scenario: ScenarioId) => (r: ResultRow): boolean => {
    const f = first(scenario);
    return f !== undefined && r.app === f.app && r.workers === f.workers && r.variant === f.variant;
  };
  // the total-PSS column shows the goal's configuration (8 workers, after start) when it was measured
  const pssRef =
    rows.find((r) => r.scenario === 'memory-pss' && r.workers === PSS_GOAL_WORKERS && r.variant === 'after start') ??
    rows.find((r) => r.scenario === 'memory-pss');
  const samePss = (r: ResultRow): boolean => pssRef !== undefined && configKey(r) === configKey(pssRef);
  const tpN = geomeanRatio(rows, BASELINE, 'throughput', 'rps').n;
  const head = [
    'server',
    `req/s vs uvicorn (geomean of ${tpN})`,
    'p99 vs uvicorn (geomean)',
    `launch → 200 (${ref('launch')})`,
    `kill -9 → answer (${ref('kill')})`,
    'HUP: failed requests (all runs)',
    'HUP: slowest replacement',
    `reload (${ref('reload')})`,
    `master RSS (${ref('memory')})`,
    `master CPU idle (${ref('idle')})`,
    // (reports from before the memory-pss scenario keep their columns)
    ...(pssRef ? [`total PSS (${pssRef.app}, ${pssRef.workers}w, ${pssRef.variant})`] : []),
  ];
  const lines = [`| ${head.join(' | ')} |`, `|---|${head.slice(1).map(() => '---:').join('|')}|`];
  for (const s of servers) {
    const tp = geomeanRatio(rows, s, 'throughput', 'rps');
    const p99 = geomeanRatio(rows, s, 'throughput', 'p99Ms');
    const hups = rows.filter((r) => r.server === s && r.scenario === 'hup');
    const hupOk = hups.filter((r) => r.status === 'ok');
    const failed = hupOk.reduce((a, r) => a + (r.metrics.failed ?? 0), 0);
    const slowest = hupOk.length ? Math.max(...hupOk.map((r) => r.metrics.replacedS ?? 0)) : undefined;
    const bad = hups.length - hupOk.length;
    const hupText = (v: string): string =>
      hups.length === 0
        ? '—'
        : hupOk.length === 0
          ? hups[0]!.status === 'unsupported'
            ? 'not supported'
            : 'error'
          : `${v}${bad ? ` (+ ${bad} ${bad === 1 ? 'run' : 'runs'} in error)` : ''}`;
    const slowRow = hupOk.find((r) => r.metrics.replacedS === slowest);
    lines.push(
      `| ${[
        s === BASELINE ? `${SERVER_LABELS[s]} (baseline)` : SERVER_LABELS[s],
        s === BASELINE ? '1.00×' : tp.r === undefined ? '—' : formatRatio(tp.r),
        s === BASELINE ? '1.00×' : p99.r === undefined ? '—' : formatRatio(p99.r),
        cell(find(s, 'launch', same('launch')), 'first200S', 2, ' s'),
        cell(find(s, 'kill', same('kill')), 'answerS', 2, ' s'),
        hupText(formatNumber(failed, 0)),
        hupText(
          slowest === undefined
            ? '—'
            : `${slowRow?.metrics.replacedSExceeded ? '> ' : ''}${formatNumber(slowest, 1)} s${slowRow ? ` (${slowRow.app} ${slowRow.workers}w)` : ''}`,
        ),
        cell(find(s, 'reload', same('reload')), 'medianS', 2, ' s'),
        cell(find(s, 'memory', same('memory')), 'masterRssMiB', 0, ' MiB'),
        cell(find(s, 'idle', same('idle')), 'masterCpuPct', 2, ' %'),
        ...(pssRef ? [cell(find(s, 'memory-pss', samePss), 'totalPssMiB', 0, ' MiB')] : []),
      ]
        .map(escapeCell)
        .join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

export const README_START = '<!-- bench:start (written by npm run bench; edits between these markers are replaced) -->';
export const README_END = '<!-- bench:end -->';

/** The README's benchmark block: machine, goals, the one-table summary and the chart. */
export function renderReadmeSection(rep: BenchReport, resultsPath = 'bench/results'): string {
  const goals = checkGoals(rep.rows);
  return [
    README_START,
    `Latest full run: ${rep.machine.date}, corral at \`${rep.machine.commit}\`, on ${machineLine(rep.machine)}. ` +
      `Every table with every ratio: [${resultsPath}/latest.md](${resultsPath}/latest.md); how it is measured: ` +
      `[bench/README.md](bench/README.md).`,
    '',
    summaryTable(rep.rows),
    '',
    '| goal (corral) | status | detail |',
    '|---|---|---|',
    ...goals.map((g) => `| ${escapeCell(g.goal)} | ${g.status === 'missed' ? '**missed**' : g.status} | ${escapeCell(g.detail)} |`),
    '',
    `![benchmark chart](${resultsPath}/latest.svg)`,
    README_END,
  ].join('\n');
}

/** Replaces the block between the markers; undefined when the README has no markers. */
export function replaceReadmeSection(readme: string, section: string): string | undefined {
  const a = readme.indexOf(README_START);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) return undefined;
  return readme.slice(0, a) + section + readme.slice(b + README_END.length);
}

export function renderMarkdown(rep: BenchReport): string {
  const parts: string[] = [];
  parts.push(`# corral benchmark (${rep.mode} run)`);
  parts.push('');
  parts.push(`Taken ${rep.machine.date} at commit \`${rep.machine.commit}\` on ${machineLine(rep.machine)}. ` +
    `The whole run took ${formatNumber(rep.durationS / 60, 1)} min. Ratios are against \`uvicorn --workers\` ` +
    `with the same app and worker count; the load generator runs on the same cores as the servers.`);
  parts.push('');
  const merged = Array.isArray(rep.settings.merged) ? (rep.settings.merged as Array<MergeNote & { changedSettings?: Record<string, unknown> }>) : [];
  for (const m of merged) {
    const changed = Object.entries(m.changedSettings ?? {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
    parts.push(
      `Re-measured on ${m.date} (corral \`${m.commit}\`) and merged in: ${m.rows.join('; ')}` +
        (changed.length ? ` (with ${changed.join(', ')})` : '') + '.',
    );
    parts.push('');
  }
  const skipped = Object.entries((rep.settings.skippedServers ?? {}) as Record<string, string>);
  for (const [server, why] of skipped) {
    parts.push(`Not measured: ${SERVER_LABELS[server as ServerName] ?? server}, because ${why}.`);
    parts.push('');
  }
  if (typeof rep.settings.preset === 'string') {
    parts.push(`Rows chosen by \`--preset ${rep.settings.preset}\`.`);
    parts.push('');
  }
  const goals = checkGoals(rep.rows);
  parts.push('## Summary');
  parts.push('');
  parts.push(summaryTable(rep.rows));
  parts.push('');
  parts.push('## Goals (corral)');
  parts.push('');
  parts.push('| goal | status | detail |');
  parts.push('|---|---|---|');
  for (const g of goals) parts.push(`| ${escapeCell(g.goal)} | ${g.status === 'missed' ? '**missed**' : g.status} | ${escapeCell(g.detail)} |`);
  parts.push('');
  for (const s of SCENARIO_IDS) {
    const table = scenarioTable(s, rep.rows);
    if (!table) continue;
    parts.push(`## ${SCENARIO_TITLES[s]}`);
    parts.push('');
    const note = SCENARIO_NOTES[s]({ ...rep.settings, nproc: rep.machine.nproc });
    if (note) parts.push(note, '');
    parts.push(table);
    parts.push('');
  }
  return parts.join('\n');
}

const setting = (s: Record<string, unknown>, k: string): string => String(s[k] ?? '?');

const SCENARIO_NOTES: Record<ScenarioId, (s: Record<string, unknown>) => string> = {
  throughput: (s) =>
    `wrk -t${setting(s, 'wrkThreads')} -c${setting(s, 'wrkConnections')} for ${setting(s, 'throughputDurationS')} s after a ` +
    `${setting(s, 'warmupS')} s warm-up, median of ${setting(s, 'rounds')} round(s); servers alternate within each round. ` +
    `Each run first waits up to ${setting(s, 'quietWaitS')} s (${setting(s, 'quietBudgetS')} s over the whole run) for other ` +
    `load on the machine to drop below ${setting(s, 'quietPct')}% of a core. ` +
    `"errors" = socket errors + non-2xx. "other load" = CPU used meanwhile by processes other than the server, ` +
    `wrk and the harness, in % of one core (of ${setting(s, 'nproc')}): a high figure means the machine was busy and the row is ` +
    `less reliable. Access log on: uvicorn default, gunicorn \`--access-logfile -\`, ` +
    `granian \`--access-log\`, corral \`--access-log\`; the output goes to a file.`,
  memory: () => 'VmRSS right after the throughput run; "total" is every process of the server (master, workers, helpers).',
  'memory-pss': (s) =>
    'The Pss line of /proc/PID/smaps_rollup of every process of the server (master, corral\'s fork servers, workers, ' +
    'helpers), summed: right after every worker was ready ("after start"), and after ' +
    `wrk -c${setting(s, 'wrkConnections')} for ${setting(s, 'pssLoadS')} s ("after load"); median of ${setting(s, 'pssRounds')} round(s). ` +
    'PSS shares each page among the processes that map it, so the sum is the memory the tree uses together, and pages that ' +
    'forked workers share with their parent count once. "other processes" = neither the master nor a worker (corral\'s fork ' +
    'servers, uvicorn\'s resource tracker); USS = Private_Clean + Private_Dirty, what one worker\'s exit would free.',
  launch: (s) =>
    `Spawn of the master → first HTTP 200 on a fresh connection, and → every worker ready (each server's own ready ` +
    `signal, see bench/README.md); median of ${setting(s, 'launchRepeats')}.`,
  kill: () =>
    'SIGKILL to one worker → a new worker pid under the master ("new worker pid"), and → a 200 that only the ' +
    'replacement can have sent: once the new pid appears the surviving old workers are SIGSTOPped until it answers.',
  hup: (s) =>
    `SIGHUP to the master ${setting(s, 'hupLeadS')} s into the load; "replaced" = every old worker pid gone and as many new ` +
    `workers ready as configured${s.hupReplaceBound === undefined ? '' : `; a restart not done within ${setting(s, 'hupReplaceBound')} is shown as "> bound"`}. ` +
    'Fresh connections: a Node loop with one connection per request ' +
    `(concurrency ${setting(s, 'freshConcurrency')}); keep-alive: wrk -c${setting(s, 'wrkConnections')}. The load runs ` +
    `until ${setting(s, 'hupTailS')} s after the replacement. Failed = socket errors + non-2xx, summed over the rounds ` +
    `(${setting(s, 'hupRoundsText')}); "replaced" is their median.`,
  reload: (s) =>
    `A copy of the app in a temp dir; each save rewrites app.py with a wrapper that adds a revision header; time from the ` +
    `write until a response carries the new revision; ${setting(s, 'reloadSaves')} saves, ${setting(s, 'reloadPauseS')} s apart ` +
    `(after the previous one answered), after an untimed first save. uvicorn here is \`uvicorn --reload\`.`,
  idle: (s) =>
    `utime+stime of the master from /proc/PID/stat over ${setting(s, 'idleSampleS')} s, after all ` +
    `${setting(s, 'idleWorkers')} workers were ready and ${setting(s, 'idleSettleS')} s of settling.`,
};

// ---------------------------------------------------------------------------------------------
// SVG (no chart library)

export const SERVER_COLORS: Record<ServerName, string> = {
  uvicorn: '#4c78a8',
  corral: '#f58518',
  'corral-spawn': '#ffbf79',
  gunicorn: '#54a24b',
  granian: '#b279a2',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface BarGroup {
  label: string;
  bars: Array<{ server: ServerName; value: number | undefined; text: string }>;
}

/** The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k) at or above v: the top of an axis. */
export function niceCeiling(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

/** A bar's label: short enough not to overlap its neighbours (18,839 → 18.8k). */
export function chartNumber(v: number, digits: number): string {
  return Math.abs(v) >= 10_000 ? `${(v / 1000).toFixed(1)}k` : formatNumber(v, digits);
}

/** Groups per chart row: more would make the labels overlap. */
const GROUPS_PER_ROW = 8;

/** One panel of grouped bars. `shared` = one scale for all groups; otherwise each group is scaled
 *  to its own maximum (for figures of very different sizes) and every bar carries its value. */
function barPanel(
  title: string,
  groups: BarGroup[],
  y0: number,
  width: number,
  shared: boolean,
  sharedMax?: number,
): { svg: string; height: number } {
  const height = 250;
  const left = 50;
  const top = y0 + 30;
  const plotH = 150;
  const plotW = width - left - 20;
  const out: string[] = [];
  out.push(`<text x="${left}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`);
  const globalMax = sharedMax ?? niceCeiling(Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value ?? 0))));
  if (shared) {
    for (const f of [0.25, 0.5, 0.75, 1]) {
      const y = top + plotH - f * plotH;
      out.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${left - 4}" y="${y + 4}" font-size="10" text-anchor="end">${esc(formatNumber(globalMax * f, 0))}</text>`);
    }
  }
  const gw = plotW / Math.max(GROUPS_PER_ROW, groups.length);
  groups.forEach((g, gi) => {
    const max = shared ? globalMax : Math.max(1e-9, ...g.bars.map((b) => b.value ?? 0));
    const n = Math.max(1, g.bars.length);
    const bw = Math.min(28, (gw - 12) / n);
    const gx = left + gi * gw + (gw - bw * n) / 2;
    g.bars.forEach((b, bi) => {
      const x = gx + bi * bw;
      if (b.value === undefined) {
        out.push(`<text x="${x + bw / 2}" y="${top + plotH - 4}" font-size="9" text-anchor="middle" fill="#999">n/a</text>`);
        return;
      }
      const h = (b.value / max) * plotH;
      out.push(`<rect x="${x.toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${SERVER_COLORS[b.server]}"><title>${esc(`${SERVER_LABELS[b.server]}: ${b.text}`)}</title></rect>`);
      out.push(`<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(top + plotH - h - 3).toFixed(1)}" font-size="8" text-anchor="middle">${esc(b.text)}</text>`);
    });
    const lines = g.label.split('\n');
    lines.forEach((l, li) => {
      out.push(`<text x="${(left + gi * gw + gw / 2).toFixed(1)}" y="${top + plotH + 14 + li * 11}" font-size="10" text-anchor="middle">${esc(l)}</text>`);
    });
  });
  return { svg: out.join('\n'), height };
}

export function renderSvg(rep: BenchReport): string {
  const width = 960;
  const rows = rep.rows;
  const servers = SERVER_NAMES.filter((s) => rows.some((r) => r.server === s));
  const groupsFor = (
    scenario: ScenarioId,
    key: string,
    label: (r: ResultRow) => string,
    digits: number,
    suffix: string,
  ): BarGroup[] => {
    const seen = new Map<string, ResultRow>();
    for (const r of rows) if (r.scenario === scenario && !seen.has(configKey(r))) seen.set(configKey(r), r);
    return [...seen.values()].map((first) => ({
      label: label(first),
      bars: servers.map((s) => {
        const r = rows.find((x) => x.server === s && configKey(x) === configKey(first));
        const v = r?.status === 'ok' ? r.metrics[key] : undefined;
        const bound = r?.metrics[`${key}Exceeded`] ? '> ' : '';
        return { server: s, value: v, text: v === undefined ? 'n/a' : `${bound}${chartNumber(v, digits)}${suffix}` };
      }),
    }));
  };
  const panels: Array<{ title: string; groups: BarGroup[]; shared: boolean }> = [
    {
      title: 'Throughput, requests/s (higher is better)',
      groups: groupsFor('throughput', 'rps', (r) => `${r.app} ${r.workers}w\n${r.variant}`, 0, ''),
      shared: true,
    },
    {
      title: 'Restart figures, seconds (lower is better; each group on its own scale)',
      groups: [
        ...groupsFor('launch', 'first200S', (r) => `launch→200\n${r.app} ${r.workers}w`, 2, 's'),
        ...groupsFor('kill', 'answerS', (r) => `kill -9→answer\n${r.app} ${r.workers}w`, 2, 's'),
        ...groupsFor('hup', 'replacedS', (r) => `HUP ${r.app} ${r.workers}w\n${r.variant}`, 1, 's'),
        ...groupsFor('reload', 'medianS', (r) => `reload\n${r.app}`, 2, 's'),
      ],
      shared: false,
    },
    {
      title: 'Total PSS of every process, MiB (lower is better; each group on its own scale)',
      groups: groupsFor('memory-pss', 'totalPssMiB', (r) => `${r.app} ${r.workers}w\n${r.variant}`, 0, ''),
      shared: false,
    },
    {
      title: 'Failed requests during HUP (lower is better; each group on its own scale)',
      groups: groupsFor('hup', 'failed', (r) => `HUP ${r.app} ${r.workers}w\n${r.variant}`, 0, ''),
      shared: false,
    },
  ];
  const parts: string[] = [];
  let y = 10;
  const legendY = y;
  servers.forEach((s, i) => {
    const x = 50 + i * 180;
    parts.push(`<rect x="${x}" y="${legendY}" width="12" height="12" fill="${SERVER_COLORS[s]}"/>`);
    parts.push(`<text x="${x + 16}" y="${legendY + 10}" font-size="12">${esc(SERVER_LABELS[s])}</text>`);
  });
  y += 24;
  for (const panel of panels) {
    if (panel.groups.length === 0) continue;
    const max = niceCeiling(Math.max(1e-9, ...panel.groups.flatMap((g) => g.bars.map((b) => b.value ?? 0))));
    for (let i = 0; i < panel.groups.length; i += GROUPS_PER_ROW) {
      const title = i === 0 ? panel.title : `${panel.title.replace(/ \(.*$/, '')} (continued)`;
      const p = barPanel(title, panel.groups.slice(i, i + GROUPS_PER_ROW), y, width, panel.shared, panel.shared ? max : undefined);
      parts.push(p.svg);
      y += p.height;
    }
  }
  const footer = `${rep.mode} run, ${rep.machine.date}: ${machineLine(rep.machine)}`;
  parts.push(`<text x="50" y="${y + 4}" font-size="9" fill="#555">${esc(truncate(footer, 190))}</text>`);
  y += 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

export interface MergeNote {
  date: string;
  commit: string;
  rows: string[];
}

/** `previous` with the rows of `update` in place of those of the same configuration and server;
 *  the settings keep a list of what was re-measured when. */
export function mergeReports(previous: BenchReport, update: BenchReport): BenchReport {
  const key = (r: ResultRow): string => `${configKey(r)}|${r.server}`;
  const replaced = new Set(update.rows.map(key));
  const rows = previous.rows.map((r) => (replaced.has(key(r)) ? update.rows.find((u) => key(u) === key(r))! : r));
  for (const u of update.rows) if (!previous.rows.some((r) => key(r) === key(u))) rows.push(u);
  const merged = Array.isArray(previous.settings.merged) ? (previous.settings.merged as MergeNote[]) : [];
  const note: MergeNote = {
    date: update.machine.date,
    commit: update.machine.commit,
    rows: update.rows.map((r) => `${r.scenario} ${r.app} ${r.workers}w ${r.variant} ${r.server}`.replace(/\s+/g, ' ')),
  };
  // settings that differ, apart from those that only select what was re-measured
  const selecting = ['servers', 'apps', 'merged', 'rounds', 'launchRepeats', 'killRepeats', 'hupRoundsText', 'pssRounds', 'scenarioApps', 'preset', 'skippedServers'];
  const changed = Object.keys(update.settings).filter(
    (k) =>
      JSON.stringify(update.settings[k]) !== JSON.stringify(previous.settings[k]) &&
      !selecting.includes(k) &&
      !k.endsWith('Workers'),
  );
  // machine facts the first run could not read ('?') are filled in from the re-measurement's
  const versions = { ...previous.machine.versions };
  for (const [k, v] of Object.entries(update.machine.versions)) if (versions[k] === '?' && v !== '?') versions[k] = v;
  return {
    ...previous,
    machine: { ...previous.machine, versions },
    durationS: previous.durationS + update.durationS,
    settings: { ...previous.settings, merged: [...merged, { ...note, changedSettings: Object.fromEntries(changed.map((k) => [k, update.settings[k]])) }] },
    rows,
  };
}

export function writeReport(rep: BenchReport, dir: string, base: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, `${base}.json`), join(dir, `${base}.md`), join(dir, `${base}.svg`)];
  writeFileSync(files[0]!, `${JSON.stringify(rep, null, 2)}\n`);
  writeFileSync(files[1]!, `${renderMarkdown(rep)}\n![chart](${base}.svg)\n`);
  writeFileSync(files[2]!, renderSvg(rep));
  return files;
}
