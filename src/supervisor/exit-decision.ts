import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import type { BootError, StopReason, WorkerExit, WorkerRole } from '../worker/worker.js';
import { exitReason } from './restart-ledger.js';

/**
 * What the arbiter does when a worker exits, decided from facts alone: no clock, no timers, no
 * workers. The arbiter gathers the facts, calls `decideExit` and carries the decision out, so every
 * rung of the ladder is specified by a row of a table (test/unit/supervisor/exit-decision.test.ts).
 */

/**
 * Where the arbiter stands. `shutdown-delay` is stopping but still serving (--shutdown-delay): a
 * worker that exits then is judged as while running. Whether a worker belongs to the first start or
 * to a restart is its role, not a phase.
 */
export type ArbiterPhase = 'running' | 'shutdown-delay' | 'stopping';

export interface ExitFacts {
  phase: ArbiterPhase;
  exit: WorkerExit;
  worker: {
    slot: number;
    pid: number | undefined;
    role: WorkerRole;
    /** It became ready before it exited (a worker that never did failed to boot). */
    wasReady: boolean;
    /** Why corral stopped it; none when it exited on its own. */
    stopReason: StopReason | undefined;
    bootError: BootError | undefined;
    uptimeMs: number;
  };
  slot: {
    /** Still one of the wanted slots (a scale-down removes it). */
    wanted: boolean;
    /** Another worker serves it, or boots to serve it. */
    served: boolean;
    /** A worker of this slot was ready once: a failed boot there is no longer a first start. */
    everReady: boolean;
  };
  /** Reload mode: a worker that cannot boot (exit 3 or 4) leaves its slot empty until the next restart. */
  parkOnBootFailure: boolean;
  /** How long the slot's backoff would wait before a new worker, were one started for this exit. */
  respawnDelayMs: number;
}

/** Why an exit leads to nothing: each asks the arbiter for a different follow-up. */
export type NoActionCause =
  /** corral stops: the last exit finishes it. */
  | 'stopping'
  /** corral stopped it on purpose (restart, scale-down, recycling): the slot is served otherwise. */
  | 'stopped'
  /** A replacement or scale-up that never became ready: the operation that started it decides. */
  | 'operation-decides'
  /** Its slot was scaled away. */
  | 'slot-unwanted'
  /** Another worker serves its slot already. */
  | 'slot-served';

export type ExitAction =
  | { kind: 'restart-now' }
  | { kind: 'back-off'; delayMs: number }
  /** Stop corral with this exit code: the app cannot boot at first start. */
  | { kind: 'give-up'; exitCode: ExitCodeValue }
  /** Leave the slot empty until the next rolling restart fills it (reload mode). */
  | { kind: 'park' }
  | { kind: 'none'; cause: NoActionCause };

export interface ExitLog {
  level: 'info' | 'warn' | 'error' | 'fatal';
  message: string;
  fields: Record<string, unknown>;
}

export interface ExitDecision {
  action: ExitAction;
  /** Why the worker exited, as logs, metrics and `corral status` name it. */
  reason: string;
  /** What to log about it; none when the exit of a worker whose slot is gone says nothing new. */
  log: ExitLog | undefined;
}

const BOOT_FAILURE_CODES = new Set<number>([ExitCode.bootFailure, ExitCode.appLoadFailure]);
/** Stop reasons after which the slot gets a new worker once the old one has exited. */
const REPLACE_AFTER_EXIT = new Set<StopReason>(['timeout', 'boot-timeout']);

export function decideExit(facts: ExitFacts): ExitDecision {
  const { phase, exit, worker, slot } = facts;
  const reason = exitReason(worker, exit);
  const fields = { worker: worker.slot, pid: worker.pid, code: exit.code, signal: exit.signal, reason, uptime: worker.uptimeMs / 1000 };
  const decision = (action: ExitAction, log?: ExitLog): ExitDecision => ({ action, reason, log });
  const none = (cause: NoActionCause, log?: ExitLog) => decision({ kind: 'none', cause }, log);
  const error = worker.bootError;
  const bootFailureCode = exit.code !== null && BOOT_FAILURE_CODES.has(exit.code) ? (exit.code as ExitCodeValue) : undefined;
  // A first start: the slot's initial worker, and no worker of the slot has served yet.
  const firstStart = !worker.wasReady && worker.role === 'initial' && !slot.everReady;

  if (phase === 'stopping') return none('stopping', { level: 'info', message: 'worker exited', fields });
  if (worker.stopReason !== undefined && !REPLACE_AFTER_EXIT.has(worker.stopReason)) {
    return none('stopped', { level: 'info', message: 'worker exited', fields });
  }
  if (!worker.wasReady && (worker.role === 'replacement' || worker.role === 'scale-up')) {
    return none('operation-decides', {
      level: 'warn',
      message: 'new worker exited before it was ready',
      fields: { ...fields, error: error?.message },
    });
  }
  if (!worker.wasReady && facts.parkOnBootFailure && bootFailureCode !== undefined) {
    return decision(
      { kind: 'park' },
      {
        level: 'error',
        message: 'worker failed to boot; its slot stays empty until the next reload',
        fields: { ...fields, error: error?.message, file: error?.file, line: error?.line, traceback: error?.traceback },
      },
    );
  }
  // Never a respawn storm of code that cannot boot: corral stops with the worker's own code (4, 3).
  if (firstStart && bootFailureCode !== undefined) return giveUp(facts, reason, bootFailureCode);
  // A boot timeout at first start is a failed boot too (no code of its own: it was killed).
  if (firstStart && worker.stopReason === 'boot-timeout') return giveUp(facts, reason, ExitCode.bootFailure);

  if (!slot.wanted) return none('slot-unwanted');
  if (slot.served) return none('slot-served', { level: 'info', message: 'worker exited; its slot is already served', fields });
  const delayMs = facts.respawnDelayMs;
  const action: ExitAction = delayMs === 0 ? { kind: 'restart-now' } : { kind: 'back-off', delayMs };
  if (error?.kind === 'spawn') {
    // The master's resources (fds, processes, memory), not the app: the slot's backoff paces the retries.
    return decision(action, {
      level: 'error',
      message: 'worker spawn failed; retrying after the backoff',
      fields: { worker: worker.slot, reason, error: error.message, delay: delayMs / 1000 },
    });
  }
  return decision(action, {
    level: 'warn',
    message: 'worker died; respawning',
    fields: { ...fields, ...(error ? { error: error.message } : {}), delay: delayMs / 1000 },
  });
}

function giveUp(facts: ExitFacts, reason: string, exitCode: ExitCodeValue): ExitDecision {
  const { worker } = facts;
  const lastLines = worker.bootError?.traceback.trim().split('\n').slice(-6).join('\n');
  return {
    action: { kind: 'give-up', exitCode },
    reason,
    log: {
      level: 'fatal',
      message: exitCode === ExitCode.appLoadFailure ? 'the app could not be imported; stopping corral' : 'a worker failed to boot; stopping corral',
      fields: { worker: worker.slot, pid: worker.pid, code: exitCode, error: worker.bootError?.message, traceback: lastLines },
    },
  };
}
