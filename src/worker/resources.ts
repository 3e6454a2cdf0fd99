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

/** Children of every live process, from a walk of all /proc: the fallback for kernels without `children` files. */
async function childrenByWalk(): Promise<Map<number, number[]>> {
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

/** A process's children from /proc/PID/task/TID/children (any thread may have forked); undefined where the kernel lacks those files. */
async function childrenOf(pid: number): Promise<number[] | undefined> {
  let threads: string[];
  try {
    threads = await readdir(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const thread of threads) {
    try {
      const text = await readFile(`/proc/${pid}/task/${thread}/children`, 'utf8');
      for (const word of text.split(' ')) if (word.trim() !== '') found.push(Number(word));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && thread === String(pid)) return undefined;
    }
  }
  return found;
}

/**
 * Every process of each tree. Reads only the workers' own /proc entries (a worker seldom has
 * children) and walks all of /proc only on kernels without `children` files: this runs every few
 * seconds for every worker, and the master's idle CPU is a goal.
 */
export async function processTrees(roots: readonly number[]): Promise<Map<number, number[]>> {
  const trees = new Map<number, number[]>();
  let walked: Map<number, number[]> | undefined;
  for (const root of roots) {
    const tree = [root];
    for (let index = 0; index < tree.length; index += 1) {
      const pid = tree[index]!;
      let children = walked ? walked.get(pid) ?? [] : await childrenOf(pid);
      if (children === undefined) {
        walked = await childrenByWalk();
        children = walked.get(pid) ?? [];
      }
      tree.push(...children);
    }
    trees.set(root, tree);
  }
  return trees;
}

/**
 * Samples CPU and memory of process trees; pidusage reads each process's figures.
 */
export async function sampleTrees(roots: readonly number[]): Promise<Map<number, ResourceUsage>> {
  const result = new Map<number, ResourceUsage>();
  if (roots.length === 0) return result;
  const trees = await processTrees(roots);
  const all = [...new Set([...trees.values()].flat())];
  let stats: Record<string, Status | null>;
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
    // pidusage answers null for a process that exited between the walk and the read.
    const found = pids.map((pid) => stats[pid]).filter((status): status is Status => status !== undefined && status !== null);
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
