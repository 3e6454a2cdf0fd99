import { readdir, readFile } from 'node:fs/promises';
import pidusage, { type Status } from 'pidusage';

/** What one sample found for a worker and its descendants. */
export interface ResourceUsage {
  /** Resident memory of the whole process tree, bytes. */
  rss: number;
  /** CPU time of the tree, seconds, as far as its live processes report it. */
  cpuSeconds: number;
  /** CPU use since the previous sample, percent of one core. */
  cpuPercent: number;
  sampledAt: number;
}

/** Parent pid of every live process, read from /proc. */
async function parentMap(): Promise<Map<number, number[]>> {
  const children = new Map<number, number[]>();
  const entries = await readdir('/proc').catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) => {
        try {
          const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          const list = children.get(ppid) ?? [];
          list.push(Number(entry));
          children.set(ppid, list);
        } catch {
          // The process ended while we looked.
        }
      }),
  );
  return children;
}

function descendantsOf(pid: number, children: Map<number, number[]>): number[] {
  const tree = [pid];
  for (let index = 0; index < tree.length; index += 1) tree.push(...(children.get(tree[index]!) ?? []));
  return tree;
}

/**
 * Samples CPU and memory of process trees. One /proc walk per sample serves every worker;
 * pidusage reads each process's figures.
 */
export async function sampleTrees(roots: readonly number[]): Promise<Map<number, ResourceUsage>> {
  const result = new Map<number, ResourceUsage>();
  if (roots.length === 0) return result;
  const children = await parentMap();
  const trees = new Map(roots.map((root) => [root, descendantsOf(root, children)]));
  const all = [...new Set([...trees.values()].flat())];
  let stats: Record<string, Status>;
  try {
    stats = await pidusage(all);
  } catch {
    // One process vanished between the walk and the read: sample each alone.
    stats = {};
    await Promise.all(
      all.map(async (pid) => {
        try {
          stats[pid] = await pidusage(pid);
        } catch {
          // Gone.
        }
      }),
    );
  }
  const now = Date.now();
  for (const [root, pids] of trees) {
    const found = pids.map((pid) => stats[pid]).filter((status): status is Status => status !== undefined);
    if (found.length === 0) continue;
    result.set(root, {
      rss: found.reduce((sum, status) => sum + status.memory, 0),
      cpuSeconds: found.reduce((sum, status) => sum + status.ctime, 0) / 1000,
      cpuPercent: found.reduce((sum, status) => sum + status.cpu, 0),
      sampledAt: now,
    });
  }
  return result;
}

/** Parses a size such as 512M, 1.5G, 300MiB or a plain number of bytes. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!match) return undefined;
  const power = ['', 'k', 'm', 'g', 't'].indexOf(match[2]!.toLowerCase());
  return Math.round(Number(match[1]) * 1024 ** power);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
