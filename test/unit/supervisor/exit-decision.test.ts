import { describe, expect, it } from 'vitest';
import { decideExit, type ExitAction, type ExitFacts, type ExitLog } from '../../../src/supervisor/exit-decision.js';
import type { BootError } from '../../../src/worker/worker.js';

const importError: BootError = {
  kind: 'app-load',
  message: 'SyntaxError: invalid syntax',
  traceback: 'Traceback (most recent call last):\n  File "app.py", line 3\n    def broken(:\nSyntaxError: invalid syntax',
  file: 'app.py',
  line: 3,
};
const startupError: BootError = { kind: 'startup', message: 'RuntimeError: no database', traceback: 'Traceback\nRuntimeError: no database' };
const spawnError: BootError = { kind: 'spawn', message: 'cannot start the worker process: spawn python EAGAIN', traceback: '' };

interface Given {
  phase?: ExitFacts['phase'];
  code?: number | null;
  signal?: NodeJS.Signals | null;
  worker?: Partial<ExitFacts['worker']>;
  slot?: Partial<ExitFacts['slot']>;
  park?: boolean;
  delayMs?: number;
}

/** A ready worker of a running corral that exited with code 1; each row changes what it names. */
function facts(given: Given): ExitFacts {
  return {
    phase: given.phase ?? 'running',
    exit: { code: given.code === undefined ? 1 : given.code, signal: given.signal ?? null },
    worker: { slot: 1, pid: 4242, role: 'initial', wasReady: true, stopReason: undefined, bootError: undefined, uptimeMs: 60_000, ...given.worker },
    slot: { wanted: true, served: false, everReady: true, ...given.slot },
    parkOnBootFailure: given.park ?? false,
    respawnDelayMs: given.delayMs ?? 0,
  };
}

/** A worker that never became ready, at the first start of its slot. */
const firstBoot = (worker: Partial<ExitFacts['worker']> = {}) => ({ worker: { wasReady: false, ...worker }, slot: { everReady: false } });

type Expected = { action: ExitAction; reason: string; log?: Pick<ExitLog, 'level' | 'message'> | null };

const stopped = { kind: 'none', cause: 'stopped' } as const;
const exited = { level: 'info', message: 'worker exited' } as const;
const died = { level: 'warn', message: 'worker died; respawning' } as const;
const spawnFailed = { level: 'error', message: 'worker spawn failed; retrying after the backoff' } as const;
const parked = { level: 'error', message: 'worker failed to boot; its slot stays empty until the next reload' } as const;
const cannotImport = { level: 'fatal', message: 'the app could not be imported; stopping corral' } as const;
const cannotBoot = { level: 'fatal', message: 'a worker failed to boot; stopping corral' } as const;
const newWorkerFailed = { level: 'warn', message: 'new worker exited before it was ready' } as const;

const rows: [string, Given, Expected][] = [
  // Stopping: every exit is one step towards the end, whatever it was.
  ['stopping: a drained worker', { phase: 'stopping', code: 0, worker: { stopReason: 'shutdown' } }, { action: { kind: 'none', cause: 'stopping' }, reason: 'shutdown', log: exited }],
  ['stopping: a crash', { phase: 'stopping', signal: 'SIGKILL', code: null }, { action: { kind: 'none', cause: 'stopping' }, reason: 'signal', log: exited }],
  ['stopping: a failed first boot does not halt', { phase: 'stopping', code: 4, ...firstBoot({ bootError: importError }) }, { action: { kind: 'none', cause: 'stopping' }, reason: 'crash', log: exited }],
  ['stopping after a halt: the halting worker exits', { phase: 'stopping', code: 0, worker: { stopReason: 'halt' } }, { action: { kind: 'none', cause: 'stopping' }, reason: 'halt', log: exited }],

  // Stopped on purpose: the operation that stopped it serves the slot.
  ['stopped by a rolling restart', { code: 0, worker: { stopReason: 'restart' } }, { action: stopped, reason: 'restart', log: exited }],
  ['stopped by a reload', { code: 0, worker: { stopReason: 'reload' } }, { action: stopped, reason: 'reload', log: exited }],
  ['stopped by a scale-down', { code: 0, worker: { stopReason: 'scale-down' }, slot: { wanted: false } }, { action: stopped, reason: 'scale-down', log: exited }],
  ['recycled: max-requests', { code: 0, worker: { stopReason: 'max-requests' } }, { action: stopped, reason: 'max-requests', log: exited }],
  ['recycled: max-memory, killed by its drain deadline', { code: null, signal: 'SIGKILL', worker: { stopReason: 'max-memory' } }, { action: stopped, reason: 'max-memory', log: exited }],
  ['recycled: max-lifetime', { code: 0, worker: { stopReason: 'max-lifetime' } }, { action: stopped, reason: 'max-lifetime', log: exited }],
  ['a new worker of an aborted restart, stopped quickly', { code: 0, worker: { role: 'replacement', wasReady: true, stopReason: 'restart' } }, { action: stopped, reason: 'restart', log: exited }],

  // A new worker of an operation that never became ready: the operation decides (abort, postpone).
  ['a replacement that cannot import the app', { code: 4, worker: { role: 'replacement', wasReady: false, bootError: importError } }, { action: { kind: 'none', cause: 'operation-decides' }, reason: 'crash', log: newWorkerFailed }],
  ['a replacement killed at its boot timeout', { code: null, signal: 'SIGKILL', worker: { role: 'replacement', wasReady: false, stopReason: 'boot-timeout' } }, { action: { kind: 'none', cause: 'operation-decides' }, reason: 'boot-timeout', log: newWorkerFailed }],
  ['a scale-up that cannot be spawned', { code: null, worker: { role: 'scale-up', wasReady: false, bootError: spawnError } }, { action: { kind: 'none', cause: 'operation-decides' }, reason: 'spawn-failed', log: newWorkerFailed }],
  ['a replacement in reload mode (the restart decides, not parking)', { code: 4, park: true, worker: { role: 'replacement', wasReady: false, bootError: importError } }, { action: { kind: 'none', cause: 'operation-decides' }, reason: 'crash', log: newWorkerFailed }],

  // Reload mode parks a slot whose worker cannot boot: exits 3 and 4 only.
  ['reload mode: first boot cannot import', { code: 4, park: true, ...firstBoot({ bootError: importError }) }, { action: { kind: 'park' }, reason: 'crash', log: parked }],
  ['reload mode: a respawn whose start-up fails', { code: 3, park: true, worker: { role: 'respawn', wasReady: false, bootError: startupError } }, { action: { kind: 'park' }, reason: 'crash', log: parked }],
  ['reload mode: a boot that exits 1 is respawned', { code: 1, park: true, worker: { role: 'respawn', wasReady: false }, delayMs: 500 }, { action: { kind: 'back-off', delayMs: 500 }, reason: 'crash', log: died }],
  ['reload mode: a boot timeout at first start still halts', { code: null, signal: 'SIGKILL', park: true, ...firstBoot({ stopReason: 'boot-timeout' }) }, { action: { kind: 'give-up', exitCode: 3 }, reason: 'boot-timeout', log: cannotBoot }],
  ['reload mode: a ready worker that crashes is respawned', { code: 4, park: true }, { action: { kind: 'restart-now' }, reason: 'crash', log: died }],

  // First start of a slot: code that cannot boot halts corral with its code; never a respawn storm.
  ['first start: the app cannot be imported', { code: 4, ...firstBoot({ bootError: importError }) }, { action: { kind: 'give-up', exitCode: 4 }, reason: 'crash', log: cannotImport }],
  ['first start: the lifespan start-up fails', { code: 3, ...firstBoot({ bootError: startupError }) }, { action: { kind: 'give-up', exitCode: 3 }, reason: 'crash', log: cannotBoot }],
  ['first start: the boot timeout', { code: null, signal: 'SIGKILL', ...firstBoot({ stopReason: 'boot-timeout' }) }, { action: { kind: 'give-up', exitCode: 3 }, reason: 'boot-timeout', log: cannotBoot }],
  ['first start: exit 4 of a slot being scaled away still halts', { code: 4, worker: { wasReady: false }, slot: { everReady: false, wanted: false } }, { action: { kind: 'give-up', exitCode: 4 }, reason: 'crash', log: cannotImport }],
  ['first start: another exit code is a crash', { code: 1, ...firstBoot() }, { action: { kind: 'restart-now' }, reason: 'crash', log: died }],
  ['first start: killed by a signal', { code: null, signal: 'SIGKILL', ...firstBoot() }, { action: { kind: 'restart-now' }, reason: 'signal', log: died }],
  ['first start: a spawn failure is the master\'s resources, retried', { code: null, ...firstBoot({ bootError: spawnError }) }, { action: { kind: 'restart-now' }, reason: 'spawn-failed', log: spawnFailed }],

  // No longer a first start: a failed boot is respawned with the backoff.
  ['a slot that served before: exit 4 is respawned', { code: 4, worker: { role: 'respawn', wasReady: false, bootError: importError }, slot: { everReady: true }, delayMs: 500 }, { action: { kind: 'back-off', delayMs: 500 }, reason: 'crash', log: died }],
  ['an initial worker of a slot that served before (first start again)', { code: 3, worker: { wasReady: false }, slot: { everReady: true } }, { action: { kind: 'restart-now' }, reason: 'crash', log: died }],
  ['a respawn killed at its boot timeout', { code: null, signal: 'SIGKILL', worker: { role: 'respawn', wasReady: false, stopReason: 'boot-timeout' }, delayMs: 1_000 }, { action: { kind: 'back-off', delayMs: 1_000 }, reason: 'boot-timeout', log: died }],
  ['a respawn that cannot be spawned, backing off', { code: null, worker: { role: 'respawn', wasReady: false, bootError: spawnError }, slot: { everReady: false }, delayMs: 2_000 }, { action: { kind: 'back-off', delayMs: 2_000 }, reason: 'spawn-failed', log: spawnFailed }],

  // A ready worker that dies: respawned, at once or after the slot's backoff.
  ['a crash after a stable run', { code: 1 }, { action: { kind: 'restart-now' }, reason: 'crash', log: died }],
  ['killed by the OOM killer', { code: null, signal: 'SIGKILL' }, { action: { kind: 'restart-now' }, reason: 'signal', log: died }],
  ['a clean exit nobody asked for', { code: 0 }, { action: { kind: 'restart-now' }, reason: 'crash', log: died }],
  ['a crash soon after the last one', { code: 1, delayMs: 4_000 }, { action: { kind: 'back-off', delayMs: 4_000 }, reason: 'crash', log: died }],
  ['hung: aborted for its stack, then replaced', { code: null, signal: 'SIGABRT', worker: { stopReason: 'timeout' } }, { action: { kind: 'restart-now' }, reason: 'timeout', log: died }],
  ['a replacement that served, then crashed', { code: 1, worker: { role: 'replacement' } }, { action: { kind: 'restart-now' }, reason: 'crash', log: died }],
  ['a scale-up that served, then crashed', { code: 1, worker: { role: 'scale-up' }, delayMs: 500 }, { action: { kind: 'back-off', delayMs: 500 }, reason: 'crash', log: died }],

  // The shutdown delay: stopping, yet serving; an exit is judged as while running.
  ['shutdown delay: a crash is respawned', { phase: 'shutdown-delay', code: null, signal: 'SIGKILL' }, { action: { kind: 'restart-now' }, reason: 'signal', log: died }],
  ['shutdown delay: a first boot that cannot import halts', { phase: 'shutdown-delay', code: 4, ...firstBoot({ bootError: importError }) }, { action: { kind: 'give-up', exitCode: 4 }, reason: 'crash', log: cannotImport }],
  ['shutdown delay: a recycled worker', { phase: 'shutdown-delay', code: 0, worker: { stopReason: 'max-requests' } }, { action: stopped, reason: 'max-requests', log: exited }],

  // The slot's own state: gone, or served by another worker already.
  ['a crash in a slot scaled away meanwhile', { code: 1, slot: { wanted: false } }, { action: { kind: 'none', cause: 'slot-unwanted' }, reason: 'crash', log: null }],
  ['a hung worker whose slot is served by its replacement', { code: null, signal: 'SIGKILL', worker: { stopReason: 'timeout' }, slot: { served: true } }, { action: { kind: 'none', cause: 'slot-served' }, reason: 'timeout', log: { level: 'info', message: 'worker exited; its slot is already served' } }],
];

describe('decideExit: the arbiter\'s ladder when a worker exits', () => {
  it.each(rows)('%s', (_name, given, expected) => {
    const decision = decideExit(facts(given));
    expect(decision.action).toEqual(expected.action);
    expect(decision.reason).toBe(expected.reason);
    if (expected.log === null) expect(decision.log).toBeUndefined();
    else expect(decision.log).toMatchObject(expected.log!);
  });

  it('covers every action and every cause of no action', () => {
    const outcomes = new Set(rows.map(([, , expected]) => (expected.action.kind === 'none' ? `none:${expected.action.cause}` : expected.action.kind)));
    expect([...outcomes].sort()).toEqual(
      ['back-off', 'give-up', 'none:operation-decides', 'none:slot-served', 'none:slot-unwanted', 'none:stopped', 'none:stopping', 'park', 'restart-now'],
    );
  });

  it('logs the exit\'s facts, the boot error\'s location when parking, and the traceback\'s end when giving up', () => {
    const crash = decideExit(facts({ code: null, signal: 'SIGSEGV', worker: { uptimeMs: 2_500 }, delayMs: 1_000 }));
    expect(crash.log?.fields).toEqual({ worker: 1, pid: 4242, code: null, signal: 'SIGSEGV', reason: 'signal', uptime: 2.5, delay: 1 });

    const park = decideExit(facts({ code: 4, park: true, ...firstBoot({ bootError: importError }) }));
    expect(park.log?.fields).toMatchObject({ error: importError.message, file: 'app.py', line: 3, traceback: importError.traceback });

    const longTraceback = Array.from({ length: 10 }, (_, index) => `line ${index}`).join('\n');
    const halt = decideExit(facts({ code: 4, ...firstBoot({ bootError: { ...importError, traceback: longTraceback } }) }));
    expect(halt.log?.fields).toEqual({ worker: 1, pid: 4242, code: 4, error: importError.message, traceback: 'line 4\nline 5\nline 6\nline 7\nline 8\nline 9' });

    const spawn = decideExit(facts({ code: null, worker: { role: 'respawn', wasReady: false, bootError: spawnError }, delayMs: 500 }));
    expect(spawn.log?.fields).toEqual({ worker: 1, reason: 'spawn-failed', error: spawnError.message, delay: 0.5 });
  });
});
