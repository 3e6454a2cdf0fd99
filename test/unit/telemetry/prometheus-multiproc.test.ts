import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyMultiprocDirectory, markProcessDead, multiprocDirectory } from '../../../src/telemetry/prometheus-multiproc.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function dirWith(names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-prom-unit-'));
  dirs.push(dir);
  for (const name of names) fs.writeFileSync(path.join(dir, name), '');
  return dir;
}

describe('prometheus_client multiprocess directory', () => {
  it('is read as prometheus_client reads it: the upper-case name first, then the deprecated lower-case one', () => {
    expect(multiprocDirectory({})).toBeUndefined();
    expect(multiprocDirectory({ PROMETHEUS_MULTIPROC_DIR: '' })).toBeUndefined();
    expect(multiprocDirectory({ PROMETHEUS_MULTIPROC_DIR: '/a', prometheus_multiproc_dir: '/b' })).toBe('/a');
    expect(multiprocDirectory({ prometheus_multiproc_dir: '/b' })).toBe('/b');
    expect(multiprocDirectory({ PROMETHEUS_MULTIPROC_DIR: 'rel' })).toBe(path.resolve('rel'));
  });

  it('marks a process dead as mark_process_dead does: its live gauges go, its counters and other gauges stay', () => {
    const dir = dirWith([
      'gauge_liveall_12.db',
      'gauge_livesum_12.db',
      'gauge_livemax_12.db',
      'gauge_livemin_12.db',
      'gauge_livemostrecent_12.db',
      'gauge_all_12.db',
      'gauge_max_12.db',
      'counter_12.db',
      'histogram_12.db',
      'gauge_livesum_123.db',
      'gauge_livesum_1.db',
    ]);
    expect(markProcessDead(dir, 12).sort()).toEqual(
      ['gauge_liveall_12.db', 'gauge_livemax_12.db', 'gauge_livemin_12.db', 'gauge_livemostrecent_12.db', 'gauge_livesum_12.db'],
    );
    expect(fs.readdirSync(dir).sort()).toEqual(['counter_12.db', 'gauge_all_12.db', 'gauge_livesum_1.db', 'gauge_livesum_123.db', 'gauge_max_12.db', 'histogram_12.db']);
    expect(markProcessDead(path.join(dir, 'missing'), 12)).toEqual([]);
  });

  it('is emptied of metrics files only, and created when missing', () => {
    const dir = dirWith(['counter_5.db', 'gauge_livesum_5.db', 'notes.txt']);
    expect(emptyMultiprocDirectory(dir)).toBe(2);
    expect(fs.readdirSync(dir)).toEqual(['notes.txt']);
    const missing = path.join(dir, 'a', 'b');
    expect(emptyMultiprocDirectory(missing)).toBe(0);
    expect(fs.statSync(missing).isDirectory()).toBe(true);
  });
});
