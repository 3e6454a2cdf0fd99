import { describe, expect, it } from 'vitest';
import { formatAge, formatStatusTable, type StatusReport } from '../../../src/control/status.js';

describe('corral status table', () => {
  const report: StatusReport = {
    version: '0.1.0',
    pid: 100,
    uptimeSeconds: 3725,
    workersWanted: 2,
    stopping: false,
    workers: [
      { slot: 1, pid: 101, state: 'ready', generation: 1, startedAt: 0, ageSeconds: 3720, requests: 15321, connections: 2, cpuPercent: 3.25, rssBytes: 262_144_000, ussBytes: 20_971_520, pssBytes: 52_428_800, sampledAt: 0, restarts: 0 },
      { slot: 2, pid: 2345, state: 'booting', generation: 1, startedAt: 0, ageSeconds: 4, requests: 0, connections: 0, cpuPercent: null, rssBytes: null, ussBytes: null, pssBytes: null, sampledAt: null, restarts: 3 },
    ],
    forkServers: [],
  };

  it('has one row per worker under the header, numbers right-aligned', () => {
    const lines = formatStatusTable(report).split('\n');
    expect(lines[0]).toBe('corral 0.1.0, master pid 100, up 1h02m, 1 of 2 workers ready');
    expect(lines[1]).toBe('SLOT   PID  STATE    AGE    REQUESTS  CPU %       USS       PSS  RESTARTS');
    expect(lines[2]).toBe('1      101  ready    1h02m     15321    3.3  20.0 MiB  50.0 MiB         0');
    expect(lines[3]).toBe('2     2345  booting  4s            0      -         -         -         3');
    expect(lines).toHaveLength(4);
  });

  it('names the fork servers in the summary line, leaving the table to the workers', () => {
    const lines = formatStatusTable({
      ...report,
      forkServers: [
        { generation: 1, pid: 99, state: 'retiring', workers: 1, startedAt: 0, preloaded: 40, preloadSeconds: 0.31, pssBytes: 20_971_520, ussBytes: 9_437_184, rssBytes: 41_943_040 },
        { generation: 2, pid: 98, state: 'starting', workers: 0, startedAt: 0, preloaded: null, preloadSeconds: null, pssBytes: null, ussBytes: null, rssBytes: null },
      ],
    }).split('\n');
    expect(lines[0]).toBe(
      'corral 0.1.0, master pid 100, up 1h02m, 1 of 2 workers ready; fork servers 99 (generation 1, retiring, PSS 20.0 MiB), 98 (generation 2, starting)',
    );
    expect(lines).toHaveLength(4);
  });

  it('formats ages with two units', () => {
    expect([0, 59.9, 60, 3599, 3600, 86399, 90000].map(formatAge)).toEqual(['0s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '1d01h']);
  });
});
