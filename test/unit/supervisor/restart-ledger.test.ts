import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { RestartLedger } from '../../../src/supervisor/restart-ledger.js';
import type { Worker } from '../../../src/worker/worker.js';

describe('restart ledger', () => {
  function fakeWorker(slot: number, stopReason?: string): Worker {
    return { slot, stopReason } as unknown as Worker;
  }

  it('counts exits while running, by slot and reason, but not shutdown or scale-down', () => {
    const arbiter = Object.assign(new EventEmitter(), { stopping: false });
    const ledger = new RestartLedger(arbiter as never);
    const seen: string[] = [];
    ledger.onRestart((reason) => seen.push(reason));
    arbiter.emit('worker-exit', fakeWorker(1), { code: 1, signal: null });
    arbiter.emit('worker-exit', fakeWorker(1), { code: null, signal: 'SIGKILL' });
    arbiter.emit('worker-exit', fakeWorker(2, 'max-requests'), { code: 0, signal: null });
    arbiter.emit('worker-exit', fakeWorker(2, 'scale-down'), { code: 0, signal: null });
    arbiter.stopping = true;
    arbiter.emit('worker-exit', fakeWorker(1), { code: 1, signal: null });
    expect(seen).toEqual(['crash', 'signal', 'max-requests']);
    expect(ledger.restartsOf(1)).toBe(2);
    expect(ledger.restartsOf(2)).toBe(1);
    expect(ledger.restartsOf(3)).toBe(0);
  });
});
