import { access, readdir, readFile } from 'node:fs/promises';
import pidusage, { type Status } from 'pidusage';

/** What one sample found for a worker and its descendants. */
export interface ResourceUsage {
  /** Resident memory of the whole process tree, bytes: counts every shared page in every process. */
  rss: number;
  /** Unique memory of the tree (USS: Private_Clean + Private_Dirty), bytes: what its exit would free. */
  uss: number;
  /** Proportional memory of the tree (PSS: each shared page divided among its sharers), bytes. */
  pss: number;
  /** Set when a process's smaps_rollup could not be read, so its RSS stands for its USS and PSS. */
  memoryFallback?: MemoryFallback;
  /** CPU time of the tree, seconds, as far as its live processes report it. */
  cpuSeconds: number;
  /** CPU use since the previous sample, percent of one core. */
  cpuPercent: number;
  sampledAt: number;
}

/** The first process of a tree whose unique memory could not be read, and why. */
export interface MemoryFallback {
  pid: number;
  reason: string;
}

/** One process's memory from /proc/PID/smaps_rollup, bytes. */
export interface MemoryFigures {
  rss: number;
  pss: number;
  uss: number;
}

/**
 * What reading one process's smaps_rollup gave: its figures, `'gone'` (it exited while we looked),
 * or why it cannot be read (another user's process without privileges, a kernel before 4.14).
 */
export type MemoryRead = MemoryFigures | 'gone' | { unreadable: string };

const SMAPS_FIELDS = /^(Rss|Pss|Private_Clean|Private_Dirty):\s+(\d+)\s+kB$/gm;

/**
 * Parses /proc/PID/smaps_rollup. A process without an address space (a zombie) has an empty file:
 * zero of everything.
 */
export function parseSmapsRollup(text: string): MemoryFigures {
  const kB: Record<string, number> = {};
  for (const [, field, value] of text.matchAll(SMAPS_FIELDS)) kB[field!] = Number(value);
  return {
    rss: (kB.Rss ?? 0) * 1024,
    pss: (kB.Pss ?? 0) * 1024,
    uss: ((kB.Private_Clean ?? 0) + (kB.Private_Dirty ?? 0)) * 1024,
  };
}

let smapsRollupExists: Promise<boolean> | undefined;

/** Whether this kernel has smaps_rollup at all (Linux 4.14+ with /proc): asked once, on the first ENOENT. */
function kernelHasSmapsRollup(): Promise<boolean> {
  smapsRollupExists ??= access('/proc/self/smaps_rollup').then(
    () => true,
    () => false,
  );
  return smapsRollupExists;
}

/** One read of /proc/PID/smaps_rollup: the kernel sums every mapping for us. */
export async function readMemory(pid: number): Promise<MemoryRead> {
  try {
    return parseSmapsRollup(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      return (await kernelHasSmapsRollup()) ? 'gone' : { unreadable: 'this system has no /proc/PID/smaps_rollup (Linux before 4.14, or no /proc)' };
    }
    if (code === 'EACCES' || code === 'EPERM') return { unreadable: `permission denied reading /proc/${pid}/smaps_rollup (a process of another user)` };
    return { unreadable: `cannot read /proc/${pid}/smaps_rollup: ${(error as Error).message}` };
  }
}

/**
 * The figures of one tree from its processes' pidusage and smaps_rollup reads. A process missing
 * from either (it exited between the walk and the reads) is skipped; one whose smaps_rollup is
 * unreadable counts its RSS as its USS and PSS, which overstates them but never hides memory.
 * Undefined when no process of the tree is left.
 */
export function treeUsage(
  pids: readonly number[],
  stats: Readonly<Record<number, Status | null | undefined>>,
  memory: ReadonlyMap<number, MemoryRead>,
  sampledAt: number,
): ResourceUsage | undefined {
  const usage: ResourceUsage = { rss: 0, uss: 0, pss: 0, cpuSeconds: 0, cpuPercent: 0, sampledAt };
  let found = 0;
  for (const pid of pids) {
    // pidusage answers null for a process that exited between the walk and the read.
    const status = stats[pid];
    const read = memory.get(pid) ?? 'gone';
    if (status === undefined || status === null || read === 'gone') continue;
    found += 1;
    usage.cpuSeconds += status.ctime / 1000;
    usage.cpuPercent += status.cpu;
    if ('unreadable' in read) {
      usage.rss += status.memory;
      usage.uss += status.memory;
      usage.pss += status.memory;
      usage.memoryFallback ??= { pid, reason: read.unreadable };
    } else {
      usage.rss += read.rss;
      usage.uss += read.uss;
      usage.pss += read.pss;
    }
  }
  return found === 0 ? undefined : usage;
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
 * Samples CPU and memory of process trees: pidusage reads each process's CPU, and one read of its
 * smaps_rollup its memory (RSS, PSS and USS).
 */
export async function sampleTrees(roots: readonly number[]): Promise<Map<number, ResourceUsage>> {
  const result = new Map<number, ResourceUsage>();
  if (roots.length === 0) return result;
  const trees = await processTrees(roots);
  const all = [...new Set([...trees.values()].flat())];
  const [stats, reads] = await Promise.all([cpuOf(all), Promise.all(all.map(readMemory))]);
  const memory = new Map(all.map((pid, index) => [pid, reads[index]!]));
  const now = Date.now();
  for (const [root, pids] of trees) {
    const usage = treeUsage(pids, stats, memory, now);
    if (usage) result.set(root, usage);
  }
  return result;
}

/** pidusage's figures of every process; one that vanished between the walk and the read is left out. */
async function cpuOf(pids: number[]): Promise<Record<number, Status | null>> {
  try {
    return await pidusage(pids);
  } catch {
    // One process vanished between the walk and the read: sample each alone.
    const stats: Record<number, Status | null> = {};
    await Promise.all(
      pids.map(async (pid) => {
        try {
          stats[pid] = await pidusage(pid);
        } catch {
          // Gone.
        }
      }),
    );
    return stats;
  }
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
