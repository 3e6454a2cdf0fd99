import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpusFromCpuMax, parseProcCgroup, readCpuLimit, workersForCpus } from '../../../src/config/cpu-limit.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function fakeCgroup(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-cgroup-'));
  dirs.push(root);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), `${text}\n`);
  }
  return root;
}

describe('cgroup CPU limit', () => {
  it('reads v2 cpu.max along the path from the own cgroup to the root, lowest wins', () => {
    const root = fakeCgroup({ 'cpu.max': '400000 100000', 'app.slice/cpu.max': '150000 100000', 'app.slice/web/cpu.max': 'max 100000' });
    const limit = readCpuLimit(root, '0::/app.slice/web\n', 8);
    expect(limit.cpus).toBe(1.5);
    expect(limit.found).toContain('cgroup v2 cpu.max "150000 100000"');
    expect(workersForCpus(limit.cpus)).toBe(1);
  });

  it('reads v1 quota and period', () => {
    const root = fakeCgroup({ 'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '200000', 'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000' });
    const limit = readCpuLimit(root, '4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n', 8);
    expect(limit.cpus).toBe(2);
    expect(limit.found).toContain('cgroup v1 cpu.cfs_quota_us 200000 / cpu.cfs_period_us 100000');
  });

  it('falls back to the CPUs available when there is no limit, or a larger one', () => {
    expect(readCpuLimit(fakeCgroup({ 'cpu.max': 'max 100000' }), '0::/\n', 6)).toEqual({ cpus: 6, found: expect.stringContaining('no cgroup CPU limit') });
    const larger = readCpuLimit(fakeCgroup({ 'cpu.max': '1600000 100000' }), '0::/\n', 4);
    expect(larger).toEqual({ cpus: 4, found: expect.stringContaining('16 CPUs, but only 4 available to this process') });
    expect(readCpuLimit(fakeCgroup({ 'cpu,cpuacct/cpu.cfs_quota_us': '-1', 'cpu,cpuacct/cpu.cfs_period_us': '100000' }), '3:cpu,cpuacct:/\n', 2).cpus).toBe(2);
  });

  it('parses the files', () => {
    expect(cpusFromCpuMax('max 100000')).toBeUndefined();
    expect(cpusFromCpuMax('50000 100000')).toBe(0.5);
    expect(parseProcCgroup('0::/a/b\n')).toEqual({ unified: '/a/b' });
    expect(workersForCpus(0.5)).toBe(1);
    expect(workersForCpus(2.9)).toBe(2);
    expect(workersForCpus(4)).toBe(4);
  });
});
