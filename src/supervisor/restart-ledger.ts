import type { Arbiter } from './arbiter.js';
import type { Worker, WorkerExit } from '../worker/worker.js';

/** Exits that end a slot's service on purpose, rather than lead to a new worker in the slot. */
const NOT_RESTARTS = new Set(['shutdown', 'halt', 'scale-down']);

/** Why a worker exited, as logs, metrics and `corral status` name it. */
export function exitReason(worker: Pick<Worker, 'stopReason' | 'bootError'>, exit: WorkerExit): string {
  return worker.stopReason ?? (worker.bootError?.kind === 'spawn' ? 'spawn-failed' : exit.signal ? 'signal' : 'crash');
}

/**
 * Counts worker restarts, per slot and per reason: every exit of a worker while corral is running,
 * except the ones that end a slot on purpose (shutdown, scale-down). Status and metrics share it.
 */
export class RestartLedger {
  private readonly slots = new Map<number, number>();
  private readonly listeners: ((reason: string) => void)[] = [];

  constructor(private readonly arbiter: Pick<Arbiter, 'on' | 'stopping'>) {
    arbiter.on('worker-exit', (worker, exit) => this.record(worker, exit));
  }

  private record(worker: Worker, exit: WorkerExit): void {
    const reason = exitReason(worker, exit);
    if (this.arbiter.stopping || NOT_RESTARTS.has(reason)) return;
    this.slots.set(worker.slot, (this.slots.get(worker.slot) ?? 0) + 1);
    for (const listener of this.listeners) listener(reason);
  }

  /** Calls `listener` with the reason of each restart from now on. */
  onRestart(listener: (reason: string) => void): void {
    this.listeners.push(listener);
  }

  restartsOf(slot: number): number {
    return this.slots.get(slot) ?? 0;
  }
}
