import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/exit-codes.js';
import { checkWorkerCount, memoryFromMeminfo, readMachineLimits } from '../../../src/config/worker-capacity.js';

describe('checkWorkerCount', () => {
  it('refuses more workers than the master has descriptors for, naming the limit and the fix', () => {
    const limits = { openFiles: 1024, pidMax: 4_194_304, cpus: 4 };
    expect(() => checkWorkerCount(320, limits)).not.toThrow();
    expect(() => checkWorkerCount(321, limits)).toThrow(UsageError);
    expect(() => checkWorkerCount(321, limits)).toThrow(
      "--workers 321: more than this machine can run: the master's open-file limit (ulimit -n 1024, 3 per worker) allows at most 320 workers; lower --workers or raise ulimit -n (LimitNOFILE= under systemd)",
    );
  });

  it('names the tightest limit: the kernel\'s, the user\'s, or the descriptors', () => {
    expect(() => checkWorkerCount(20_000, { openFiles: 1_048_576, pidMax: 32_768, cpus: 2 })).toThrow(
      "the kernel's process limit (kernel.pid_max 32768, 2 threads per worker) allows at most 16384 workers; lower --workers or raise kernel.pid_max",
    );
    expect(() => checkWorkerCount(3_000, { openFiles: 1_048_576, pidMax: 32_768, userProcesses: 4_096, cpus: 2 })).toThrow(
      "the user's process limit (ulimit -u 4096, 2 threads per worker) allows at most 2048 workers",
    );
  });

  it('refuses more workers than the memory could hold at the very least', () => {
    const limits = { openFiles: 1_048_576, pidMax: 4_194_304, memoryBytes: 8 * 1024 ** 3, cpus: 2 };
    expect(() => checkWorkerCount(1_024, limits)).not.toThrow();
    expect(() => checkWorkerCount(100_000, limits)).toThrow(
      "--workers 100000: more than this machine can run: the machine's memory (8.0 GiB with swap, 8 MiB at the very least per worker) allows at most 1024 workers; lower --workers or give it more memory",
    );
    expect(memoryFromMeminfo('MemTotal:       24684084 kB\nMemFree: 1 kB\nSwapTotal:       1024 kB\n')).toBe((24_684_084 + 1024) * 1024);
  });

  it('counts a warm standby per worker in reload mode', () => {
    expect(() => checkWorkerCount(160, { openFiles: 1024, cpus: 64 }, true)).not.toThrow();
    expect(() => checkWorkerCount(161, { openFiles: 1024, cpus: 64 }, true)).toThrow('(ulimit -n 1024, 6 per worker) allows at most 160 workers');
  });

  it('warns, without refusing, far above the CPUs', () => {
    expect(checkWorkerCount(16, { cpus: 2 })).toBeUndefined();
    expect(checkWorkerCount(17, { cpus: 2 })).toBe(
      '--workers 17 is 9 per CPU (2 CPUs): a uvicorn worker is an event loop that can keep a CPU busy; past 8 per CPU more workers cost memory, start time and context switches, not throughput',
    );
  });

  it('reads this machine\'s limits', () => {
    const limits = readMachineLimits();
    expect(limits.cpus).toBeGreaterThan(0);
    if (process.platform === 'linux') expect(limits.openFiles).toBeGreaterThan(0);
  });
});
