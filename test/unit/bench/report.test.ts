import { describe, expect, it } from 'vitest';
import { parseDurationMs, parseWrkOutput, socketErrorTotal } from '../../../bench/load.js';
import {
  checkGoals,
  formatCell,
  formatRatio,
  METRICS,
  mergeReports,
  niceCeiling,
  ratio,
  README_END,
  README_START,
  renderMarkdown,
  renderReadmeSection,
  renderSvg,
  replaceReadmeSection,
  scenarioTable,
  summaryTable,
  type BenchReport,
  type ResultRow,
} from '../../../bench/report.js';
import { parseCorralReady } from '../../../bench/servers.js';
import { firstLine, rotate } from '../../../bench/scenarios/common.js';
import { revisedSource } from '../../../bench/scenarios/reload.js';

// Real wrk 4.1.0 output (Debian), with --latency.
const WRK_LATENCY = `Running 3s test @ http://127.0.0.1:18001/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms  534.14us   5.56ms   65.87%
    Req/Sec    50.10k     5.27k   56.33k    63.33%
  Latency Distribution
     50%    1.18ms
     75%    1.42ms
     90%    1.73ms
     99%    2.58ms
  149450 requests in 3.01s, 18.81MB read
Requests/sec:  49670.87
Transfer/sec:      6.25MB
`;

// wrk stopped with SIGINT during a restart: errors, non-2xx, microsecond and second units.
const WRK_ERRORS = `Running 30s test @ http://127.0.0.1:40000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.50us    2.10ms    1.20s    99.10%
    Req/Sec    40.00k     3.00k   45.00k    70.00%
  Latency Distribution
     50%  640.00us
     75%  800.00us
     90%    1.00ms
     99%    1.20s
  121438 requests in 2.51s, 15.29MB read
  Socket errors: connect 3, read 88, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  48381.27
Transfer/sec:      6.09MB
`;

describe('wrk output parser', () => {
  it('reads throughput, totals and the latency distribution', () => {
    const r = parseWrkOutput(WRK_LATENCY);
    expect(r.requests).toBe(149450);
    expect(r.durationS).toBeCloseTo(3.01);
    expect(r.requestsPerSec).toBeCloseTo(49670.87);
    expect(r.avgLatencyMs).toBeCloseTo(1.12);
    expect(r.p50Ms).toBeCloseTo(1.18);
    expect(r.p75Ms).toBeCloseTo(1.42);
    expect(r.p90Ms).toBeCloseTo(1.73);
    expect(r.p99Ms).toBeCloseTo(2.58);
    expect(r.socketErrors).toEqual({ connect: 0, read: 0, write: 0, timeout: 0 });
    expect(r.non2xx).toBe(0);
  });

  it('reads socket errors, non-2xx responses and every unit', () => {
    const r = parseWrkOutput(WRK_ERRORS);
    expect(r.socketErrors).toEqual({ connect: 3, read: 88, write: 1, timeout: 2 });
    expect(socketErrorTotal(r)).toBe(94);
    expect(r.non2xx).toBe(7);
    expect(r.p50Ms).toBeCloseTo(0.64);
    expect(r.p99Ms).toBeCloseTo(1200);
    expect(r.avgLatencyMs).toBeCloseTo(0.8125);
  });

  it('works without --latency and rejects output without a summary', () => {
    const noLatency = WRK_LATENCY.replace(/ {2}Latency Distribution[\s\S]*?(?= {2}149450)/, '');
    const r = parseWrkOutput(noLatency);
    expect(r.requestsPerSec).toBeCloseTo(49670.87);
    expect(r.p99Ms).toBeUndefined();
    expect(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n')).toThrow(/no summary/);
  });

  it('converts durations', () => {
    expect(parseDurationMs('512.00us')).toBeCloseTo(0.512);
    expect(parseDurationMs('3.5ms')).toBe(3.5);
    expect(parseDurationMs('2.00s')).toBe(2000);
    expect(parseDurationMs('1.00m')).toBe(60_000);
    expect(() => parseDurationMs('fast')).toThrow();
  });
});

const row = (over: Partial<ResultRow> & Pick<ResultRow, 'server'>): ResultRow => ({
  scenario: 'throughput',
  app: 'hello',
  workers: 2,
  variant: 'access log off',
  status: 'ok',
  metrics: {},
  ...over,
});

const ROWS: ResultRow[] = [
  row({ server: 'uvicorn', metrics: { rps: 20000, p50Ms: 2, p99Ms: 8, errors: 0 } }),
  row({ server: 'corral', metrics: { rps: 19800, p50Ms: 2.1, p99Ms: 6, errors: 0 } }),
  row({ server: 'gunicorn', status: 'error', note: 'gunicorn exited (code 1)\nsecond | line' }),
  row({ server: 'granian', metrics: { rps: 30000, p50Ms: 1, p99Ms: 4, errors: 0 } }),
  row({ server: 'uvicorn', workers: 4, metrics: { rps: 30000, p50Ms: 2, p99Ms: 9, errors: 0 } }),
  row({ server: 'corral', workers: 4, metrics: { rps: 28500, p50Ms: 2, p99Ms: 9, errors: 0 } }),
  row({ scenario: 'hup', variant: 'keep-alive', server: 'uvicorn', metrics: { replacedS: 1.2, failed: 66, socketErrors: 66, non2xx: 0, requests: 100 } }),
  row({ scenario: 'hup', variant: 'keep-alive', server: 'corral', metrics: { replacedS: 0.9, failed: 0, socketErrors: 0, non2xx: 0, requests: 100 }, info: { strategy: 'new ready, then old drained' } }),
  row({ scenario: 'hup', variant: 'keep-alive', server: 'granian', status: 'unsupported', note: 'no readiness on HUP' }),
  row({ scenario: 'memory', server: 'corral', metrics: { masterRssMiB: 61.5, workerRssMiB: 30, totalRssMiB: 121.5 } }),
  row({ scenario: 'idle', workers: 16, variant: '', server: 'corral', metrics: { masterCpuPct: 0.4, workersCpuPct: 2, masterRssMiB: 60 } }),
];

describe('ratios and table cells', () => {
  it('computes and formats ratios to the baseline', () => {
    expect(ratio(19800, 20000)).toBeCloseTo(0.99);
    expect(ratio(1, 0)).toBeUndefined();
    expect(ratio(undefined, 2)).toBeUndefined();
    expect(ratio(NaN, 2)).toBeUndefined();
    expect(formatRatio(0.99)).toBe('0.99×');
    expect(formatRatio(undefined)).toBe('');
  });

  it('shows the value with its ratio, the baseline without one, counts without one', () => {
    const [rps, , p99, errors] = METRICS.throughput;
    expect(formatCell(ROWS[1]!, rps!, ROWS)).toBe('19,800 (0.99×)');
    expect(formatCell(ROWS[0]!, rps!, ROWS)).toBe('20,000');
    expect(formatCell(ROWS[1]!, p99!, ROWS)).toBe('6.00 (0.75×)');
    expect(formatCell(ROWS[1]!, errors!, ROWS)).toBe('0');
    // the 4-worker row is compared with uvicorn's 4-worker row, not the 2-worker one
    expect(formatCell(ROWS[5]!, rps!, ROWS)).toBe('28,500 (0.95×)');
  });

  it('renders a Markdown table with servers in a fixed order, errors and "not supported"', () => {
    const table = scenarioTable('throughput', ROWS).split('\n');
    expect(table[0]).toBe('| app | workers | variant | server | req/s | p50 ms | p99 ms | errors | other load % |');
    expect(table[1]).toBe('|---|---|---|---|---:|---:|---:|---:|---:|');
    expect(table[2]).toContain('uvicorn --workers | 20,000 |');
    expect(table[3]).toContain('| corral | 19,800 (0.99×) | 2.10 (1.05×) | 6.00 (0.75×) | 0 | — |');
    // pipes and newlines in an error message cannot break the table
    expect(table[4]).toContain('error: gunicorn exited (code 1) second \\| line');
    expect(table[5]).toContain('granian | 30,000 (1.50×)');
    expect(table).toHaveLength(8);
    const hup = scenarioTable('hup', ROWS);
    expect(hup).toContain('| granian | not supported: no readiness on HUP |');
    expect(hup).toContain('| corral | 0.90 (0.75×) | — | — | 0 | 0 | 0 | 100 | new ready, then old drained |');
    expect(hup).toContain('| 66 | 66 | 0 | 100 | — |');
    expect(scenarioTable('reload', ROWS)).toBe('');
  });

  it('checks the goals and says where corral misses one', () => {
    const goals = Object.fromEntries(checkGoals(ROWS).map((g) => [g.goal.split(' ')[0] + ' ' + g.goal.split(' ')[1], g]));
    expect(goals['throughput ≥']!.status).toBe('missed'); // 0.95× with 4 workers
    expect(goals['throughput ≥']!.detail).toContain('hello 4w access log off: 0.95×');
    expect(goals['HUP with']!.status).toBe('met');
    expect(goals['master RSS']!.status).toBe('missed');
    expect(goals['master CPU']!.status).toBe('met');
    expect(goals['launch →']!.status).toBe('not measured');
  });
});

describe('report outputs', () => {
  const report: BenchReport = {
    mode: 'quick',
    machine: {
      nproc: 2, cpuModel: 'AMD EPYC', memTotalGiB: 24, kernel: '6.1', node: '20.19.0', python: '3.11.7',
      versions: { uvicorn: '0.54.0' }, commit: 'abc1234', date: '2026-01-01T00:00:00Z',
    },
    settings: { wrkThreads: 1, wrkConnections: 64 },
    durationS: 120,
    rows: ROWS,
  };

  it('writes Markdown with the machine, the goals and one section per scenario', () => {
    const md = renderMarkdown(report);
    expect(md).toContain('2 × AMD EPYC');
    expect(md).toContain('## Goals (corral)');
    expect(md).toContain('| master RSS ≤ 50 MiB | **missed** | worst 61.50 MiB |');
    expect(md).toContain('## Throughput and latency');
    expect(md).toContain('## HUP (rolling restart) under load');
    expect(md).not.toContain('## Dev reload');
  });

  it('draws an SVG chart by hand: one bar per server and configuration, n/a for missing values', () => {
    const svg = renderSvg(report);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // bars (each with a tooltip): throughput 3 servers at 2 workers + 2 at 4 workers; HUP restart
    // time and HUP failed requests, 2 servers each
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(3 + 2 + 2 + 2);
    expect(svg).toContain('Failed requests during HUP');
    // the legend names every server that has a row
    expect(svg).toContain('gunicorn + UvicornWorker</text>');
    expect(svg).toContain('n/a');
    expect(svg).not.toMatch(/NaN|undefined/);
  });
});

describe('chart rows', () => {
  it('wraps a panel with many groups into several rows', () => {
    const many: ResultRow[] = Array.from({ length: 10 }, (_, i) =>
      row({ scenario: 'launch', workers: i + 1, variant: '', server: 'uvicorn', metrics: { first200S: 0.3 } }),
    );
    const svg = renderSvg({
      mode: 'full',
      machine: { nproc: 2, cpuModel: 'x', memTotalGiB: 1, kernel: 'k', node: 'n', python: 'p', versions: {}, commit: 'c', date: 'd' },
      settings: {},
      durationS: 1,
      rows: many,
    });
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(10);
    expect(svg).toContain('Restart figures, seconds (continued)');
  });
});

describe('harness helpers', () => {
  it('rotates the server order between rounds', () => {
    expect(rotate(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotate(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotate(['a', 'b', 'c'], 5)).toEqual(['c', 'a', 'b']);
    expect(rotate([], 3)).toEqual([]);
  });

  it("reads corral's per-worker ready lines and nothing else", () => {
    expect(parseCorralReady('{"level":30,"msg":"worker ready","worker":2,"pid":1234}')).toEqual({ pid: 1234, worker: 2 });
    expect(parseCorralReady('{"level":30,"msg":"all workers ready","pid":99}')).toBeUndefined();
    expect(parseCorralReady('{"msg":"booting","worker":1,"pid":5}')).toBeUndefined();
    expect(parseCorralReady('INFO ready')).toBeUndefined();
  });

  it('wraps the app for a reload revision without changing its answer', () => {
    const src = revisedSource('async def app(scope, receive, send):\n    pass\n', 3);
    expect(src).toContain('_bench_inner_app_3 = app');
    expect(src).toContain('b"x-bench-revision", b"3"');
  });
});

describe('error summaries', () => {
  it('keeps the first line and the last line that names an error', () => {
    const msg = "corral's master exited; last log lines:\n{\"msg\":\"worker exited\"}\nTypeError: Cannot read properties of null (reading 'memory')\n    at sampleTrees\n\nNode.js v20.20.2";
    expect(firstLine(msg)).toBe("corral's master exited; last log lines: … TypeError: Cannot read properties of null (reading 'memory')");
    expect(firstLine('timed out after 30.0 s')).toBe('timed out after 30.0 s');
  });
});

describe('chart axis', () => {
  it('rounds the top of the axis up to a round number', () => {
    expect(niceCeiling(50249)).toBe(60000);
    expect(niceCeiling(43000)).toBe(50000);
    expect(niceCeiling(21000)).toBe(25000);
    expect(niceCeiling(2000)).toBe(2000);
    expect(niceCeiling(0.37)).toBe(0.4);
    expect(niceCeiling(0)).toBe(1);
  });
});

describe('tables without a variant', () => {
  it('drops the variant column when no row has one and names dev-mode servers in the reload table', () => {
    const rows: ResultRow[] = [
      row({ scenario: 'reload', workers: 1, variant: '', server: 'uvicorn', metrics: { medianS: 0.5, maxS: 0.6, saves: 7 } }),
      row({ scenario: 'reload', workers: 1, variant: '', server: 'corral', metrics: { medianS: 0.25, maxS: 0.3, saves: 7 } }),
    ];
    const table = scenarioTable('reload', rows).split('\n');
    expect(table[0]).toBe('| app | workers | server | median s | max s | saves |');
    expect(table[2]).toBe('| hello | 1 | uvicorn --reload | 0.500 | 0.600 | 7 |');
    expect(table[3]).toBe('| hello | 1 | corral --reload | 0.250 (0.50×) | 0.300 (0.50×) | 7 |');
  });
});

describe('README summary', () => {
  const machine = { nproc: 2, cpuModel: 'AMD EPYC', memTotalGiB: 24, kernel: '6.1', node: '20', python: '3.11', versions: {}, commit: 'abc1234', date: '2026-01-01T00:00:00Z' };

  it('summarises each server in one row: geometric-mean ratios, reference-config figures, HUP totals', () => {
    const table = summaryTable(ROWS).split('\n');
    expect(table[0]).toContain('| server | req/s vs uvicorn (geomean of 2) | p99 vs uvicorn (geomean) |');
    const corral = table.find((l) => l.startsWith('| corral |'))!;
    // rps ratios 0.99 and 0.95: geomean 0.97; p99 ratios 0.75 and 1.00: geomean 0.87
    expect(corral).toContain('| corral | 0.97× | 0.87× |');
    expect(corral).toContain('| 0 | 0.9 s (hello 2w) |');
    expect(corral).toContain('| 62 MiB | 0.40 % |');
    expect(table.find((l) => l.startsWith('| uvicorn --workers (baseline) |'))).toContain('| 1.00× | 1.00× |');
    expect(table.find((l) => l.startsWith('| granian |'))).toContain('| not supported | not supported |');
    expect(table.find((l) => l.startsWith('| gunicorn + UvicornWorker |'))).toContain('| — | — |');
  });

  it('replaces only the block between the markers', () => {
    const section = renderReadmeSection({ mode: 'full', machine, settings: {}, durationS: 60, rows: ROWS });
    expect(section.startsWith(README_START)).toBe(true);
    expect(section.endsWith(README_END)).toBe(true);
    expect(section).toContain('![benchmark chart](bench/results/latest.svg)');
    const readme = `# corral\n\n## Benchmarks\n\n${README_START}\nold\n${README_END}\n\n## Development\n`;
    const updated = replaceReadmeSection(readme, section)!;
    expect(updated).not.toContain('\nold\n');
    expect(updated.startsWith('# corral\n\n## Benchmarks\n\n<!-- bench:start')).toBe(true);
    expect(updated.endsWith(`${README_END}\n\n## Development\n`)).toBe(true);
    expect(replaceReadmeSection('# no markers\n', section)).toBeUndefined();
  });
});

describe('figures that hit their bound', () => {
  it('shows "> bound" and a ratio against such a baseline as an upper bound', () => {
    const rows: ResultRow[] = [
      row({ scenario: 'hup', workers: 32, variant: 'keep-alive', server: 'uvicorn', metrics: { replacedS: 510, replacedSExceeded: 1, failed: 3 } }),
      row({ scenario: 'hup', workers: 32, variant: 'keep-alive', server: 'corral', metrics: { replacedS: 51, failed: 0 } }),
    ];
    const replaced = METRICS.hup[0]!;
    expect(formatCell(rows[0]!, replaced, rows)).toBe('> 510.00');
    expect(formatCell(rows[1]!, replaced, rows)).toBe('51.00 (< 0.10×)');
    expect(summaryTable(rows)).toContain('| > 510.0 s (hello 32w) |');
  });
});

describe('merging a re-measurement', () => {
  it('replaces the rows of the same configuration and server and says so', () => {
    const machine = { nproc: 2, cpuModel: 'x', memTotalGiB: 1, kernel: 'k', node: 'n', python: 'p', versions: {}, commit: 'c1', date: 'd1' };
    const previous: BenchReport = { mode: 'full', machine, settings: { rounds: 3, hupWorkers: [2, 8, 32] }, durationS: 100, rows: ROWS };
    const redo = row({ scenario: 'hup', variant: 'keep-alive', server: 'uvicorn', metrics: { replacedS: 2, failed: 5 } });
    const update: BenchReport = {
      mode: 'partial',
      machine: { ...machine, commit: 'c2', date: 'd2' },
      settings: { rounds: 1, hupWorkers: [32], hupReplaceBound: '30 s + 15 s per worker' },
      durationS: 10,
      rows: [redo],
    };
    const merged = mergeReports(previous, update);
    expect(merged.mode).toBe('full');
    expect(merged.rows).toHaveLength(ROWS.length);
    expect(merged.rows.filter((r) => r.scenario === 'hup' && r.server === 'uvicorn')).toEqual([redo]);
    expect(merged.durationS).toBe(110);
    const md = renderMarkdown(merged);
    expect(md).toContain('Re-measured on d2 (corral `c2`) and merged in: hup hello 2w keep-alive uvicorn (with hupReplaceBound = "30 s + 15 s per worker").');
  });
});
