import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Status } from 'pidusage';
import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  parseSize,
  parseSmapsRollup,
  processTrees,
  readMemory,
  sampleTrees,
  treeUsage,
  type MemoryRead,
} from '../../../src/worker/resources.js';
import { ROOT, waitFor } from '../../helpers/corral.js';

const MiB = 1024 * 1024;

describe('processTrees', () => {
  it('finds a process and all its descendants', async () => {
    // bash → (a subshell → sleep) and sleep: two levels below the root.
    const root = spawn('bash', ['-c', '(sleep 30 & wait) & sleep 30 & wait'], { stdio: 'ignore', detached: true });
    try {
      const tree = await waitFor(
        async () => {
          const found = (await processTrees([root.pid!])).get(root.pid!) ?? [];
          return found.length >= 4 ? found : undefined;
        },
        5_000,
        'the whole tree to start',
      );
      expect(tree[0]).toBe(root.pid);
      expect(tree).toHaveLength(4);
      const usage = (await sampleTrees([root.pid!])).get(root.pid!);
      expect(usage?.rss).toBeGreaterThan(0);
      expect(usage?.uss).toBeGreaterThan(0);
      expect(usage?.uss).toBeLessThanOrEqual(usage!.pss);
      expect(usage?.pss).toBeLessThanOrEqual(usage!.rss);
      expect(usage?.memoryFallback).toBeUndefined();
    } finally {
      process.kill(-root.pid!, 'SIGKILL');
    }
  });
});

describe('sampleTrees', () => {
  it('skips a process that has gone instead of failing the whole sample', async () => {
    let gone = 4_000_000;
    while (existsSync(`/proc/${gone}`)) gone -= 1;
    const usage = await sampleTrees([process.pid, gone]);
    expect(usage.get(process.pid)?.rss).toBeGreaterThan(0);
    expect(usage.has(gone)).toBe(false);
  });
});

describe('smaps_rollup', () => {
  it('reads USS as Private_Clean + Private_Dirty, PSS from Pss, RSS from Rss, in bytes', () => {
    // A worker that maps a file shared with its siblings: RSS large, USS small.
    const text = readFileSync(path.join(ROOT, 'test', 'fixtures', 'proc', 'smaps_rollup'), 'utf8');
    expect(parseSmapsRollup(text)).toEqual({ rss: 236_544 * 1024, pss: 118_912 * 1024, uss: (6_144 + 15_360) * 1024 });
  });

  it('reads an empty file (a zombie has no address space) as no memory', () => {
    expect(parseSmapsRollup('')).toEqual({ rss: 0, pss: 0, uss: 0 });
  });

  it("reads this process's own figures, USS ≤ PSS ≤ RSS", async () => {
    const figures = await readMemory(process.pid);
    if (typeof figures !== 'object' || 'unreadable' in figures) throw new Error(`unexpected ${JSON.stringify(figures)}`);
    expect(figures.uss).toBeGreaterThan(MiB);
    expect(figures.uss).toBeLessThanOrEqual(figures.pss);
    expect(figures.pss).toBeLessThanOrEqual(figures.rss);
  });

  it('says a process that has gone is gone', async () => {
    let gone = 4_000_000;
    while (existsSync(`/proc/${gone}`)) gone -= 1;
    expect(await readMemory(gone)).toBe('gone');
  });
});

describe('treeUsage', () => {
  const status = (memory: number, cpu = 1): Status => ({ memory, cpu, ctime: 2_000, elapsed: 0, timestamp: 0, pid: 0, ppid: 0 });

  it('sums each figure over the tree and skips a process gone from either read', () => {
    const memory = new Map<number, MemoryRead>([
      [1, { rss: 200 * MiB, pss: 100 * MiB, uss: 20 * MiB }],
      [2, { rss: 50 * MiB, pss: 30 * MiB, uss: 10 * MiB }],
      [3, 'gone'],
    ]);
    const usage = treeUsage([1, 2, 3, 4], { 1: status(190 * MiB), 2: status(50 * MiB), 3: status(9 * MiB), 4: null }, memory, 42);
    expect(usage).toEqual({ rss: 250 * MiB, pss: 130 * MiB, uss: 30 * MiB, cpuSeconds: 4, cpuPercent: 2, sampledAt: 42 });
  });

  it("counts an unreadable process's RSS as its USS and PSS, and says which", () => {
    const memory = new Map<number, MemoryRead>([
      [1, { rss: 200 * MiB, pss: 100 * MiB, uss: 20 * MiB }],
      [2, { unreadable: 'permission denied' }],
    ]);
    const usage = treeUsage([1, 2], { 1: status(200 * MiB), 2: status(40 * MiB) }, memory, 0);
    expect(usage).toMatchObject({ rss: 240 * MiB, pss: 140 * MiB, uss: 60 * MiB, memoryFallback: { pid: 2, reason: 'permission denied' } });
  });

  it('has no figures for a tree whose processes are all gone', () => {
    expect(treeUsage([5], { 5: null }, new Map(), 0)).toBeUndefined();
  });
});

describe('sizes', () => {
  it.each([
    ['512M', 512 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['300MiB', 300 * 1024 ** 2],
    ['2048', 2048],
    ['0', 0],
  ])('parses %s', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['lots', '12 parsecs', '-1M', ''])('refuses %j', (text) => expect(parseSize(text)).toBeUndefined());

  it('formats bytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200.0 MiB');
  });
});
