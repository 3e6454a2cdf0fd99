import { afterEach, describe, expect, it } from 'vitest';
import { ProcessWorker } from '../../../src/worker/process-worker.js';
import type { Worker, WorkerExit } from '../../../src/worker/worker.js';

const workers: ProcessWorker[] = [];

afterEach(() => {
  for (const worker of workers.splice(0)) worker.stop('shutdown', 'kill');
});

function start(python: string): { worker: ProcessWorker; exit: Promise<WorkerExit> } {
  const worker = new ProcessWorker(
    { slot: 1, generation: 1, role: 'respawn' },
    { python, entry: '/nonexistent/entry.py', listenerFds: [], env: {}, settings: {}, gracefulTimeoutMs: 1_000, onOutput: () => undefined },
  );
  workers.push(worker);
  return { worker, exit: new Promise((resolve) => (worker as Worker).once('exit', resolve)) };
}

describe('ProcessWorker spawn failures', () => {
  it('a spawn that throws (an invalid executable path) becomes an exit before ready, with a spawn boot error', async () => {
    const { worker, exit } = start('/usr/bin/python\0');
    expect(worker.pid).toBeUndefined();
    await expect(exit).resolves.toEqual({ code: null, signal: null });
    expect(worker.state).toBe('exited');
    expect(worker.bootError?.kind).toBe('spawn');
    expect(worker.bootError?.message).toMatch(/^cannot start the worker process: /);
  });

  it("a spawn 'error' (no such executable) becomes an exit before ready, naming the errno", async () => {
    const { worker, exit } = start('/nonexistent/python3');
    await expect(exit).resolves.toEqual({ code: null, signal: null });
    expect(worker.readyAt).toBeUndefined();
    expect(worker.bootError?.message).toContain('spawn /nonexistent/python3 ENOENT: the Python executable is gone');
  });
});
