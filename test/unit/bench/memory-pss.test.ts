import { describe, expect, it } from 'vitest';
import { parseSmapsRollup, uss, type SmapsRollup } from '../../../bench/lib/proc.js';
import { summarizeTreeMemory } from '../../../bench/scenarios/memory-pss.js';

// Real /proc/PID/smaps_rollup (Linux 6.18).
const ROLLUP = `55c5f55e7000-7ffd94da3000 ---p 00000000 00:00 0                          [rollup]
Rss:                1752 kB
Pss:                 230 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:            118 kB
Pss_Shmem:             0 kB
Shared_Clean:       1600 kB
Shared_Dirty:          0 kB
Private_Clean:        40 kB
Private_Dirty:       112 kB
Referenced:         1752 kB
Anonymous:           112 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`;

describe('smaps_rollup parser', () => {
  it('reads Pss (not Pss_Dirty or Pss_Anon), Rss and the private and shared pages, in bytes', () => {
    const m = parseSmapsRollup(ROLLUP)!;
    expect(m).toEqual({
      rss: 1752 * 1024,
      pss: 230 * 1024,
      sharedClean: 1600 * 1024,
      sharedDirty: 0,
      privateClean: 40 * 1024,
      privateDirty: 112 * 1024,
      swapPss: 0,
    });
    expect(uss(m)).toBe(152 * 1024);
  });

  it('gives undefined for text without Rss or Pss (a process that is gone, an old kernel)', () => {
    expect(parseSmapsRollup('')).toBeUndefined();
    expect(parseSmapsRollup('Rss: 10 kB\n')).toBeUndefined();
    expect(parseSmapsRollup('Pss_Anon: 10 kB\nRss: 10 kB\n')).toBeUndefined();
  });
});

const MiB = 1024 * 1024;
const mem = (pssMiB: number, privateMiB = 0): SmapsRollup => ({
  rss: 2 * pssMiB * MiB,
  pss: pssMiB * MiB,
  sharedClean: 0,
  sharedDirty: 0,
  privateClean: 0,
  privateDirty: privateMiB * MiB,
  swapPss: 0,
});

describe('total PSS of a process tree', () => {
  it('sums every process once and splits master, workers and the others (a fork server)', () => {
    // master 10, fork server 30, workers 12 and 14 (USS 4 and 6); the master appears in the tree too
    const table = new Map<number, SmapsRollup>([
      [100, mem(10)],
      [101, mem(30, 1)],
      [102, mem(12, 4)],
      [103, mem(14, 6)],
    ]);
    const t = summarizeTreeMemory(100, [102, 103], [100, 101, 102, 103], (pid) => table.get(pid));
    expect(t).toEqual({
      totalPssMiB: 66,
      masterPssMiB: 10,
      workersPssMiB: 26,
      otherPssMiB: 30,
      workerUssMiB: 5,
      workers: 2,
      processes: 4,
    });
  });

  it('leaves out a process that exited between the listing and the read', () => {
    const table = new Map<number, SmapsRollup>([
      [1, mem(5)],
      [2, mem(7, 2)],
    ]);
    const t = summarizeTreeMemory(1, [2, 3], [2, 3], (pid) => table.get(pid));
    expect(t.totalPssMiB).toBe(12);
    expect(t.workers).toBe(1);
    expect(t.processes).toBe(2);
  });

  it('refuses a tree whose master cannot be read', () => {
    expect(() => summarizeTreeMemory(1, [], [2], () => undefined)).toThrow(/smaps_rollup of the master/);
  });
});
