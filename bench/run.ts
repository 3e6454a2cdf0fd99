// corral's side-by-side benchmark: `npm run bench` (full), `npm run bench -- --quick`,
// `--only hup,kill`, `--servers corral,uvicorn`, `--apps hello`, `--preset NAME`. See bench/README.md.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanup, killAllGroups } from './lib/proc.js';
import { describeMachine } from './machine.js';
import { snapshot, type Snapshot } from './snapshot.js';
import {
  SCENARIO_IDS,
  checkGoals,
  mergeReports,
  renderReadmeSection,
  replaceReadmeSection,
  writeReport,
  type BenchReport,
  type ScenarioId,
} from './report.js';
import { PRESETS, PRESET_NAMES } from './presets.js';
import { FULL, QUICK, type AppDef, type Ctx } from './scenarios/common.js';
import { hup, hupBoundText } from './scenarios/hup.js';
import { idle } from './scenarios/idle.js';
import { kill } from './scenarios/kill.js';
import { launch } from './scenarios/launch.js';
import { memoryPss } from './scenarios/memory-pss.js';
import { reload } from './scenarios/reload.js';
import { throughput } from './scenarios/throughput.js';
import { DEFAULT_SERVERS, ROOT, SERVERS, SERVER_LABELS, SERVER_NAMES, setCorralRoot, type ServerName } from './servers.js';

/** Runnable scenarios in the order they run ("memory" rows come from the throughput runs). */
const RUNNERS: Array<[Exclude<ScenarioId, 'memory'>, (ctx: Ctx) => Promise<void>]> = [
  ['launch', launch],
  ['throughput', throughput],
  ['memory-pss', memoryPss],
  ['kill', kill],
  ['hup', hup],
  ['reload', reload],
  ['idle', idle],
];

const USAGE = `usage: tsx bench/run.ts [--quick | --preset NAME] [--only SCENARIO[,...]] [--servers NAME[,...]] [--apps hello,fastapi]
                        [--workers N[,...]] [--rounds N] [--corral DIR | --snapshot] [--merge | --render] [--out NAME] [--keep-logs]
  --corral DIR measures the corral of another checkout (a worktree), with this checkout's anchors
  --snapshot   measures corral as committed at HEAD (exported and built in a temp dir), not the work tree
  --merge      re-measures rows into bench/results/OUT.json: rows of the same configuration and server
               are replaced, the others kept, and the report lists what was re-measured when
  --render     measures nothing: rewrites OUT.md, OUT.svg (and README for latest) from OUT.json
  --workers and --rounds override the worker counts and rounds of every scenario (a partial run)
  --preset     a named selection of scenarios, servers, apps and per-scenario settings (a partial run);
               --only, --servers, --apps, --workers and --rounds given with it override it
  scenarios: ${RUNNERS.map(([id]) => id).join(', ')} (memory comes with throughput)
  servers:   ${SERVER_NAMES.join(', ')} (default: ${DEFAULT_SERVERS.join(', ')})
  presets:
${Object.entries(PRESETS).map(([name, p]) => `    ${name}: ${p.description}; ${p.duration}`).join('\n')}`;

function list<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      console.error(`bench: unknown ${what} "${item}"; allowed: ${allowed.join(', ')}`);
      process.exit(2);
    }
  }
  return items as T[];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      servers: { type: 'string' },
      apps: { type: 'string' },
      out: { type: 'string' },
      'keep-logs': { type: 'boolean', default: false },
      workers: { type: 'string' },
      corral: { type: 'string' },
      snapshot: { type: 'boolean', default: false },
      merge: { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      preset: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  // Ctrl-C, TERM or a crash kill every server's process group (and run the exit handlers)
  installCleanup();
  const quick = values.quick ?? false;
  const preset = values.preset === undefined ? undefined : PRESETS[values.preset];
  if (values.preset !== undefined && !preset) {
    console.error(`bench: unknown preset "${values.preset}"; allowed: ${PRESET_NAMES.join(', ')}`);
    return 2;
  }
  if (preset && quick) {
    console.error('bench: --quick and --preset exclude each other');
    return 2;
  }
  // "memory" rows come from the throughput runs
  const onlyText = values.only?.split(',').map((s) => (s.trim() === 'memory' ? 'throughput' : s)).join(',');
  const only = list(onlyText, [...SCENARIO_IDS], 'scenario') ?? preset?.only;
  let servers: ServerName[] = list(values.servers, SERVER_NAMES, 'server') ?? [...(preset?.servers ?? DEFAULT_SERVERS)];
  const appNames = list(values.apps, ['hello', 'fastapi'] as const, 'app') ?? preset?.apps ?? (quick ? ['hello'] : ['hello', 'fastapi']);
  const apps: AppDef[] = appNames.map((name) => ({ name, dir: join(ROOT, 'examples', name) }));
  for (const app of apps) {
    if (!existsSync(join(app.dir, 'app.py'))) {
      console.error(`bench: ${join(app.dir, 'app.py')} is missing`);
      return 1;
    }
  }
  const settings = { ...(quick ? QUICK : FULL), ...preset?.settings };
  // apps named on the command line are measured by every scenario
  if (values.apps !== undefined) settings.scenarioApps = {};
  if (values.workers !== undefined) {
    const ws = values.workers.split(',').map(Number);
    if (ws.some((w) => !Number.isInteger(w) || w < 1)) {
      console.error(`bench: --workers wants positive integers, got "${values.workers}"`);
      process.exit(2);
    }
    settings.throughputWorkers = ws;
    settings.launchWorkers = ws;
    settings.hupWorkers = ws;
    settings.killWorkers = Math.max(2, ws[0]!);
    settings.idleWorkers = ws[ws.length - 1]!;
    settings.pssWorkers = ws;
  }
  if (values.rounds !== undefined) {
    const n = Number(values.rounds);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`bench: --rounds wants a positive integer, got "${values.rounds}"`);
      process.exit(2);
    }
    settings.rounds = n;
    settings.launchRepeats = n;
    settings.killRepeats = n;
    settings.hupRounds = () => n;
    settings.pssRounds = n;
  }
  if (values.corral !== undefined && values.snapshot) {
    console.error('bench: --corral and --snapshot exclude each other');
    return 2;
  }
  if (values.corral !== undefined) setCorralRoot(resolve(values.corral));
  let snap: Snapshot | undefined;
  if (values.snapshot) {
    process.stderr.write('bench: exporting and building corral at HEAD\n');
    snap = snapshot();
    setCorralRoot(snap.dir);
  }
  // a column that does not apply to the measured corral (an option its --help does not list yet)
  // is left out of the run, said once, and named in the report
  const skipped: Partial<Record<ServerName, string>> = {};
  for (const s of servers) {
    const why = SERVERS[s].missing() ? undefined : SERVERS[s].skip?.();
    if (why) skipped[s] = why;
  }
  servers = servers.filter((s) => skipped[s] === undefined);
  for (const [s, why] of Object.entries(skipped)) {
    process.stderr.write(`bench: skipping ${s} (${SERVER_LABELS[s as ServerName]}): ${why}\n`);
  }
  if (servers.length === 0) {
    console.error('bench: no server left to measure');
    return 1;
  }
  const partial =
    preset !== undefined ||
    values.corral !== undefined ||
    only !== undefined || values.servers !== undefined || values.apps !== undefined || values.workers !== undefined || values.rounds !== undefined;
  const mode: BenchReport['mode'] = quick ? 'quick' : partial ? 'partial' : 'full';
  const outName = values.out ?? (quick ? 'quick' : partial ? 'partial' : 'latest');

  if (values.render) {
    const name = values.out ?? 'latest';
    const report = JSON.parse(readFileSync(join(ROOT, 'bench', 'results', `${name}.json`), 'utf8')) as BenchReport;
    writeOutputs(report, name, (msg) => process.stderr.write(`${msg}\n`));
    return 0;
  }

  const workDir = mkdtempSync(join(os.tmpdir(), 'corral-bench-'));
  // also on Ctrl-C, which ends the process without running the finally below
  process.on('exit', () => {
    if (!values['keep-logs']) rmSync(workDir, { recursive: true, force: true });
    snap?.remove();
  });
  const t0 = performance.now();
  const stamp = (): string => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s]`;
  const ctx: Ctx = {
    quick,
    settings,
    servers,
    apps,
    workDir,
    rows: [],
    log: (msg) => process.stderr.write(`${stamp()} ${msg}\n`),
  };
  for (const s of servers) {
    const why = SERVERS[s].missing();
    if (why) ctx.log(`note: ${s} cannot run (${why}); its rows will be errors`);
  }
  ctx.log(`mode ${mode}; servers ${servers.join(', ')}; apps ${appNames.join(', ')}; logs in ${workDir}`);
  let machine: ReturnType<typeof describeMachine> | undefined;
  try {
    for (const [id, fn] of RUNNERS) {
      if (only && !only.includes(id)) continue;
      await fn(ctx);
    }
    machine = describeMachine();
  } finally {
    killAllGroups();
    if (!values['keep-logs']) rmSync(workDir, { recursive: true, force: true });
    snap?.remove();
  }
  machine ??= describeMachine();
  if (snap) machine.commit = `${snap.commit} (as committed)`;
  let report: BenchReport = {
    mode,
    machine,
    settings: {
      ...ctx.settings,
      hupReplaceBound: hupBoundText(ctx.settings),
      ...(values.preset !== undefined ? { preset: values.preset } : {}),
      ...(Object.keys(skipped).length ? { skippedServers: skipped } : {}),
      hupRoundsText: ctx.settings.hupWorkers.map((w) => `${w} workers: ${ctx.settings.hupRounds(w)}`).join(', '),
      servers,
      apps: appNames,
    },
    durationS: (performance.now() - t0) / 1000,
    rows: ctx.rows,
  };
  const resultsDir = join(ROOT, 'bench', 'results');
  if (values.merge) {
    const previousPath = join(resultsDir, `${outName}.json`);
    if (!existsSync(previousPath)) {
      console.error(`bench: --merge: ${previousPath} does not exist`);
      return 1;
    }
    report = mergeReports(JSON.parse(readFileSync(previousPath, 'utf8')) as BenchReport, report);
    ctx.log(`merged ${ctx.rows.length} re-measured rows into ${outName}.json`);
  }
  writeOutputs(report, outName, ctx.log);
  for (const g of checkGoals(report.rows)) ctx.log(`goal: ${g.status.padEnd(12)} ${g.goal} — ${g.detail}`);
  return 0;
}

/** Writes OUT.json/.md/.svg, and the README's benchmark block for a full run written as latest. */
function writeOutputs(report: BenchReport, outName: string, log: (msg: string) => void): void {
  const files = writeReport(report, join(ROOT, 'bench', 'results'), outName);
  log(`wrote ${files.map((f) => f.slice(ROOT.length + 1)).join(', ')}`);
  if (report.mode === 'full' && outName === 'latest') {
    // the README keeps the latest full run's summary between its bench markers
    const readmePath = join(ROOT, 'README.md');
    const readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : undefined;
    const updated = readme === undefined ? undefined : replaceReadmeSection(readme, renderReadmeSection(report));
    if (updated !== undefined) {
      writeFileSync(readmePath, updated);
      log('updated the benchmark section of README.md');
    } else log('README.md has no bench markers: its benchmark section was not updated');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killAllGroups();
    console.error(err);
    process.exit(1);
  },
);
