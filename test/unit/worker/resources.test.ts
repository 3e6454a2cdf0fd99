import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize, processTrees, sampleTrees } from '../../../src/worker/resources.js';
import { waitFor } from '../../helpers/corral.js';

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
