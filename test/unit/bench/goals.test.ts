import { describe, expect, it } from 'vitest';
import { checkGoals, renderMarkdown, renderSvg, scenarioTable, summaryTable, type BenchReport, type ResultRow } from '../../../bench/report.js';

const row = (over: Partial<ResultRow> & Pick<ResultRow, 'server' | 'scenario'>): ResultRow => ({
  app: 'fastapi',
  workers: 2,
  variant: '',
  status: 'ok',
  metrics: {},
  ...over,
});

const goal = (rows: ResultRow[], start: string) => {
  const g = checkGoals(rows).find((x) => x.goal.startsWith(start));
  if (!g) throw new Error(`no goal starting with ${start}`);
  return g;
};

describe('kill -9 goal: against gunicorn, not the baseline', () => {
  const kill = (server: ResultRow['server'], answerS: number, app = 'fastapi'): ResultRow =>
    row({ scenario: 'kill', server, app, metrics: { respawnS: answerS / 2, answerS } });

  it('is met at ≤ 0.50× gunicorn for every app', () => {
    const g = goal([kill('gunicorn', 0.6), kill('corral', 0.15), kill('uvicorn', 0.1), kill('gunicorn', 0.4, 'hello'), kill('corral', 0.2, 'hello')], 'kill -9');
    expect(g.goal).toBe("kill -9 → replacement answering ≤ 0.50× gunicorn + UvicornWorker's time");
    expect(g.status).toBe('met');
    expect(g.detail).toBe("fastapi 2w: 0.25× gunicorn's; hello 2w: 0.50× gunicorn's");
  });

  it('is missed when one app is slower, and not measured without gunicorn', () => {
    expect(goal([kill('gunicorn', 0.6), kill('corral', 0.4)], 'kill -9').status).toBe('missed');
    const g = goal([kill('uvicorn', 0.6), kill('corral', 0.1)], 'kill -9');
    expect(g.status).toBe('not measured');
    expect(g.detail).toBe('no corral/gunicorn pair');
  });
});

describe('HUP goal: 8 and 32 FastAPI workers against gunicorn', () => {
  const hup = (server: ResultRow['server'], workers: number, variant: string, metrics: Record<string, number>): ResultRow =>
    row({ scenario: 'hup', server, workers, variant, metrics });
  const clean = { failed: 0, socketErrors: 0, non2xx: 0 };

  it('is met when corral is no slower and fails nothing under both loads; other rows do not count', () => {
    const rows = [
      hup('gunicorn', 8, 'keep-alive', { replacedS: 8, failed: 40, socketErrors: 40 }),
      hup('corral', 8, 'keep-alive', { replacedS: 4, ...clean }),
      hup('gunicorn', 32, 'fresh connections', { replacedS: 7.2, failed: 3, socketErrors: 3 }),
      hup('corral', 32, 'fresh connections', { replacedS: 7.2, ...clean }),
      // 2 workers and the hello app are not part of this goal
      hup('gunicorn', 2, 'keep-alive', { replacedS: 1 }),
      hup('corral', 2, 'keep-alive', { replacedS: 9, ...clean }),
      row({ scenario: 'hup', app: 'hello', workers: 8, variant: 'keep-alive', server: 'corral', metrics: { replacedS: 99, ...clean } }),
    ];
    const g = goal(rows, 'HUP of 8 and 32');
    expect(g.goal).toBe("HUP of 8 and 32 FastAPI workers: all replaced ≤ 1.00× gunicorn + UvicornWorker's time, 0 failed requests, 0 socket errors");
    expect(g.status).toBe('met');
    expect(g.detail).toBe(
      "fastapi 8w keep-alive: 0.50× gunicorn's, 0 failed, 0 socket errors; fastapi 32w fresh connections: 1.00× gunicorn's, 0 failed, 0 socket errors",
    );
  });

  it('is missed when slower, with a failed request or a socket error, or when corral hit the bound', () => {
    const g = (corral: Record<string, number>, gunicorn: Record<string, number> = { replacedS: 8 }) =>
      goal([hup('gunicorn', 8, 'keep-alive', gunicorn), hup('corral', 8, 'keep-alive', corral)], 'HUP of 8 and 32');
    expect(g({ replacedS: 9, ...clean }).status).toBe('missed');
    expect(g({ replacedS: 4, ...clean, failed: 1, non2xx: 1 }).status).toBe('missed');
    expect(g({ replacedS: 4, ...clean, socketErrors: 2, failed: 2 }).detail).toContain('2 failed, 2 socket errors');
    const bound = g({ replacedS: 60, replacedSExceeded: 1, ...clean }, { replacedS: 60, replacedSExceeded: 1 });
    expect(bound.status).toBe('missed');
    expect(bound.detail).toContain('> 60.0 s (bound)');
    // gunicorn past the bound, corral within it: no slower
    const met = g({ replacedS: 20, ...clean }, { replacedS: 60, replacedSExceeded: 1 });
    expect(met.status).toBe('met');
    expect(met.detail).toContain('20.0 s, gunicorn > bound');
  });

  it('is missed for an error row and not measured without any corral row', () => {
    const err = row({ scenario: 'hup', workers: 32, variant: 'keep-alive', server: 'corral', status: 'error', note: 'boom' });
    expect(goal([hup('gunicorn', 32, 'keep-alive', { replacedS: 7 }), err], 'HUP of 8 and 32').status).toBe('missed');
    expect(goal([], 'HUP of 8 and 32').status).toBe('not measured');
    expect(goal([hup('corral', 8, 'keep-alive', { replacedS: 3, ...clean })], 'HUP of 8 and 32').status).toBe('not measured');
  });
});

describe('total PSS goal: ≤ 0.70× uvicorn at 8 workers', () => {
  const pss = (server: ResultRow['server'], workers: number, variant: string, totalPssMiB: number): ResultRow =>
    row({ scenario: 'memory-pss', server, workers, variant, metrics: { totalPssMiB, masterPssMiB: 20, workersPssMiB: totalPssMiB - 20 } });
  const rows = [
    pss('uvicorn', 8, 'after start', 300),
    pss('corral', 8, 'after start', 200),
    pss('uvicorn', 8, 'after load', 310),
    pss('corral', 8, 'after load', 210),
    // other worker counts are shown, not judged
    pss('uvicorn', 32, 'after start', 1000),
    pss('corral', 32, 'after start', 990),
  ];

  it('judges both samples at 8 workers', () => {
    const g = goal(rows, 'total PSS');
    expect(g.goal).toBe('total PSS ≤ 0.70× uvicorn --workers at 8 workers');
    expect(g.status).toBe('met');
    expect(g.detail).toBe('fastapi 8w after start: 0.67×; fastapi 8w after load: 0.68×');
    // after load 220 / 310 = 0.71×: one sample over the line misses the goal
    const heavier = rows.map((r) => (r.server === 'corral' && r.variant === 'after load' ? { ...r, metrics: { ...r.metrics, totalPssMiB: 220 } } : r));
    expect(goal(heavier, 'total PSS').status).toBe('missed');
    expect(goal(rows.filter((r) => r.workers !== 8), 'total PSS').status).toBe('not measured');
  });

  it('shows in its own table with ratios, and in the summary at 8 workers after start', () => {
    const table = scenarioTable('memory-pss', rows);
    expect(table.split('\n')[0]).toBe(
      '| app | workers | variant | server | total PSS MiB | master MiB | workers MiB (sum) | other processes MiB | USS per worker MiB | workers | processes |',
    );
    expect(table).toContain('| fastapi | 8 | after start | corral | 200.0 (0.67×) | 20.0 (1.00×) | 180.0 (0.64×) |');
    const summary = summaryTable(rows).split('\n');
    expect(summary[0]).toContain('| total PSS (fastapi, 8w, after start) |');
    expect(summary.find((l) => l.startsWith('| corral |'))).toMatch(/\| 200 MiB \|$/);
    // reports from before the scenario keep their summary as it was
    expect(summaryTable(rows.map((r) => ({ ...r, scenario: 'memory' as const })))).not.toContain('total PSS');
  });
});

describe('throughput geomean goal', () => {
  it('takes the geometric mean of the ratios over the configurations and shows p99 beside it', () => {
    const tp = (server: ResultRow['server'], workers: number, rps: number, p99Ms: number): ResultRow =>
      row({ scenario: 'throughput', server, workers, variant: 'access log off', metrics: { rps, p99Ms } });
    const rows = [tp('uvicorn', 2, 100, 10), tp('corral', 2, 96, 10), tp('uvicorn', 4, 100, 10), tp('corral', 4, 101, 10)];
    const g = goal(rows, 'throughput geomean');
    expect(g.status).toBe('met'); // sqrt(0.96 × 1.01) = 0.985
    expect(g.detail).toBe('req/s 0.98× over 2 configurations; p99 1.00×');
    expect(goal([tp('uvicorn', 2, 100, 10), tp('corral', 2, 90, 10)], 'throughput geomean').status).toBe('missed');
  });
});

describe('a run without corral (spawn)', () => {
  it('says in the report why the column is missing, and draws the PSS panel', () => {
    const rows = [row({ scenario: 'memory-pss', server: 'corral', workers: 8, variant: 'after start', metrics: { totalPssMiB: 100 } })];
    const report: BenchReport = {
      mode: 'partial',
      machine: { nproc: 2, cpuModel: 'x', memTotalGiB: 1, kernel: 'k', node: 'n', python: 'p', versions: {}, commit: 'c', date: 'd' },
      settings: { preset: 'fork-server', skippedServers: { 'corral-spawn': '`node bin/corral.js --help` does not list --start-method' } },
      durationS: 1,
      rows,
    };
    const md = renderMarkdown(report);
    expect(md).toContain('Not measured: corral (spawn), because `node bin/corral.js --help` does not list --start-method.');
    expect(md).toContain('Rows chosen by `--preset fork-server`.');
    expect(md).toContain('## Total PSS of every process (master, fork servers, workers)');
    expect(renderSvg(report)).toContain('Total PSS of every process, MiB');
  });
});
