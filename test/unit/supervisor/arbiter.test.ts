import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Arbiter, type ArbiterSettings } from '../../../src/supervisor/arbiter.js';
import type { WorkerLauncher } from '../../../src/worker/launcher.js';
import { WorkerRecord, type StopMode, type StopReason, type Worker, type WorkerSpawnSpec } from '../../../src/worker/worker.js';

/** A worker the test drives by hand: it becomes ready or exits when told to. */
class FakeWorker extends WorkerRecord {
  static nextPid = 1000;
  readonly pid = FakeWorker.nextPid++;
  readonly signals: string[] = [];

  becomeReady(): void {
    this.markReady();
  }

  heartbeat(): void {
    this.lastHeartbeatAt = Date.now();
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.state = 'exited';
    this.emit('exit', { code, signal });
  }

  stop(reason: StopReason, mode: StopMode): void {
    this.stopReason ??= reason;
    this.signals.push(mode);
    if (this.state !== 'exited') this.state = 'draining';
  }

  abort(reason: StopReason): void {
    this.stopReason ??= reason;
    this.signals.push('abort');
    if (this.state !== 'exited') this.state = 'draining';
  }
}

/** A launcher that starts workers with `launch` and records what the arbiter tells it of generations. */
class FakeLauncher implements WorkerLauncher {
  readonly calls: string[] = [];
  /** When set, prepareGeneration returns this promise (a fork server starting). */
  preparing: Promise<void> | undefined;

  constructor(private readonly start: (spec: WorkerSpawnSpec) => Worker) {}

  prepareGeneration(generation: number): Promise<void> | undefined {
    this.calls.push(`prepare ${generation}`);
    return this.preparing;
  }

  launch(spec: WorkerSpawnSpec): Worker {
    this.calls.push(`launch ${spec.generation}`);
    return this.start(spec);
  }

  retireGeneration(generation: number): void {
    this.calls.push(`retire ${generation}`);
  }

  reconfigure(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}
const launcherOf = (start: (spec: WorkerSpawnSpec) => Worker) => new FakeLauncher(start);

const log = pino({ level: 'silent' });
const settings: ArbiterSettings = {
  workers: 2,
  timeoutMs: 5_000,
  bootTimeoutMs: 10_000,
  maxSurge: 1,
  tickMs: 100,
  backoff: { firstDelayMs: 500, maxDelayMs: 4_000, stableAfterMs: 10_000 },
};

let spawned: FakeWorker[];
function makeArbiter(overrides: Partial<ArbiterSettings> = {}) {
  spawned = [];
  const launcher = launcherOf((spec) => {
    const worker = new FakeWorker(spec);
    spawned.push(worker);
    return worker;
  });
  const arbiter = new Arbiter({ ...settings, ...overrides }, launcher, log);
  const exitCode = arbiter.run();
  return { arbiter, exitCode, launcher };
}
const live = (arbiter: Arbiter) => arbiter.liveWorkers() as FakeWorker[];
/** Lets queued promise callbacks (the operation queue) run. */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('Arbiter', () => {
  it('starts one worker per slot and announces when all are ready', () => {
    const { arbiter } = makeArbiter();
    const allReady = vi.fn();
    arbiter.on('all-ready', allReady);
    expect(spawned.map((worker) => [worker.slot, worker.role])).toEqual([[1, 'initial'], [2, 'initial']]);
    spawned[0]!.becomeReady();
    expect(allReady).not.toHaveBeenCalled();
    spawned[1]!.becomeReady();
    expect(allReady).toHaveBeenCalledOnce();
  });

  it('respawns a crashed worker at once, then with growing delays, and resets after a stable run', () => {
    const { arbiter } = makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    vi.advanceTimersByTime(20_000);
    spawned[0]!.exit(null, 'SIGKILL');
    expect(spawned).toHaveLength(2);
    spawned[1]!.becomeReady();
    spawned[1]!.exit(1);
    expect(spawned).toHaveLength(2);
    vi.advanceTimersByTime(499);
    expect(spawned).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(spawned).toHaveLength(3);
    spawned[2]!.exit(1);
    vi.advanceTimersByTime(999);
    expect(spawned).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(spawned).toHaveLength(4);
    spawned[3]!.becomeReady();
    vi.advanceTimersByTime(10_000);
    spawned[3]!.heartbeat();
    spawned[3]!.exit(null, 'SIGKILL');
    expect(spawned).toHaveLength(5);
    expect(live(arbiter)).toHaveLength(1);
  });

  it('halts with exit 4 when the app cannot be imported at first start, without respawning', async () => {
    const { exitCode } = makeArbiter();
    spawned[0]!.exit(4);
    expect(spawned).toHaveLength(2);
    expect(spawned[1]!.signals).toEqual(['quick']);
    spawned[1]!.exit(0);
    await expect(exitCode).resolves.toBe(4);
  });

  it('halts with exit 3 when the lifespan start-up fails at first start', async () => {
    const { exitCode } = makeArbiter({ workers: 1 });
    spawned[0]!.exit(3);
    await expect(exitCode).resolves.toBe(3);
    expect(spawned).toHaveLength(1);
  });

  it('respawns instead of halting when a slot that has served fails to boot later', () => {
    const { arbiter } = makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    spawned[0]!.exit(null, 'SIGKILL');
    spawned[1]!.exit(4);
    expect(arbiter.stopping).toBe(false);
    vi.advanceTimersByTime(500);
    expect(spawned).toHaveLength(3);
  });

  it('kills a worker that does not boot within the boot timeout', () => {
    makeArbiter({ workers: 1 });
    vi.advanceTimersByTime(10_100);
    expect(spawned[0]!.signals).toEqual(['kill']);
    expect(spawned[0]!.stopReason).toBe('boot-timeout');
  });

  it('aborts a ready worker whose heartbeats stop, and replaces it after it exits', () => {
    makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    vi.advanceTimersByTime(4_000);
    spawned[0]!.heartbeat();
    vi.advanceTimersByTime(4_000);
    expect(spawned[0]!.signals).toEqual([]);
    vi.advanceTimersByTime(1_200);
    expect(spawned[0]!.signals).toEqual(['abort']);
    spawned[0]!.exit(null, 'SIGABRT');
    expect(spawned).toHaveLength(2);
  });

  describe('a stall of the master itself (SIGSTOP, a VM pause, a blocked loop)', () => {
    /** The master does not run for `ms`: no tick fires and nothing is read, while the clock moves on. */
    const stallMaster = (ms: number) => vi.setSystemTime(Date.now() + ms);
    /** The master runs for `ms`, reading a heartbeat from each of `beating` every 500 ms. */
    const runWithHeartbeats = (ms: number, beating: FakeWorker[]) => {
      for (let elapsed = 0; elapsed < ms; elapsed += 500) {
        vi.advanceTimersByTime(500);
        for (const worker of beating) worker.heartbeat();
      }
    };

    it('kills no healthy worker when the master was stopped for longer than the timeout', () => {
      const { arbiter } = makeArbiter({ workers: 2 });
      for (const worker of spawned) worker.becomeReady();
      runWithHeartbeats(2_000, spawned);
      stallMaster(8_000);
      // The first tick after the stall runs before the heartbeats sent meanwhile are read.
      vi.advanceTimersByTime(100);
      runWithHeartbeats(10_000, spawned);
      expect(spawned.map((worker) => worker.signals)).toEqual([[], []]);
      expect(live(arbiter)).toHaveLength(2);
    });

    it('still catches a worker that hung before the stall, and only that one', () => {
      makeArbiter({ workers: 2 });
      for (const worker of spawned) worker.becomeReady();
      const [hung, healthy] = spawned as [FakeWorker, FakeWorker];
      runWithHeartbeats(1_000, [hung, healthy]);
      stallMaster(8_000);
      runWithHeartbeats(4_000, [healthy]);
      expect(hung.signals).toEqual([]);
      runWithHeartbeats(2_000, [healthy]);
      expect(hung.signals).toEqual(['abort']);
      expect(healthy.signals).toEqual([]);
    });

    it('counts the boot timeout in time the master ran', () => {
      makeArbiter({ workers: 1 });
      vi.advanceTimersByTime(1_000);
      stallMaster(15_000);
      vi.advanceTimersByTime(1_000);
      expect(spawned[0]!.signals).toEqual([]);
      spawned[0]!.becomeReady();
      expect(spawned).toHaveLength(1);
      // A worker that never boots is still killed once the master has run for the boot timeout.
      makeArbiter({ workers: 1 });
      stallMaster(15_000);
      vi.advanceTimersByTime(9_000);
      expect(spawned[0]!.signals).toEqual([]);
      vi.advanceTimersByTime(1_500);
      expect(spawned[0]!.signals).toEqual(['kill']);
    });

    it('still judges when every tick comes late', () => {
      makeArbiter({ workers: 1, tickMs: 100 });
      spawned[0]!.becomeReady();
      // Each tick 200 ms late: a third of the time awake, so the 5 s timeout takes about 15 s.
      for (let elapsed = 0; elapsed < 30_000 && spawned[0]!.signals.length === 0; elapsed += 300) {
        stallMaster(200);
        vi.advanceTimersByTime(100);
      }
      expect(spawned[0]!.signals).toEqual(['abort']);
    });
  });

  it('yields to the event loop between slow spawns, and spawns nothing once stopping', async () => {
    spawned = [];
    const arbiter = new Arbiter({ ...settings, workers: 10 }, launcherOf((spec) => {
      // A spawn (fork and exec) that takes 30 ms of the master's time.
      vi.setSystemTime(Date.now() + 30);
      const worker = new FakeWorker(spec);
      spawned.push(worker);
      return worker;
    }), log);
    const exitCode = arbiter.run();
    expect(spawned).toHaveLength(1);
    await settle();
    expect(spawned).toHaveLength(2);
    arbiter.stop('graceful');
    await settle();
    expect(spawned).toHaveLength(2);
    for (const worker of spawned) worker.exit(0);
    await expect(exitCode).resolves.toBe(0);
  });

  it('restarts on HUP: each new worker is ready before its old one drains, surge by surge', async () => {
    const { arbiter } = makeArbiter({ workers: 2, maxSurge: 1 });
    const [old1, old2] = spawned;
    old1!.becomeReady();
    old2!.becomeReady();
    const serving = vi.fn();
    const ended = vi.fn();
    arbiter.on('restart-serving', serving);
    arbiter.on('restart-end', ended);
    arbiter.requestRollingRestart('test');
    await settle();
    expect(spawned).toHaveLength(3);
    expect(spawned[2]).toMatchObject({ slot: 1, generation: 2, role: 'replacement' });
    expect(old1!.signals).toEqual([]);
    spawned[2]!.becomeReady();
    await settle();
    expect(old1!.signals).toEqual(['graceful']);
    expect(old2!.signals).toEqual([]);
    expect(spawned).toHaveLength(4);
    spawned[3]!.becomeReady();
    await settle();
    expect(old2!.signals).toEqual(['graceful']);
    expect(serving).toHaveBeenCalledWith('test');
    old1!.exit(0);
    old2!.exit(0);
    expect(spawned).toHaveLength(4);
    await settle();
    expect(ended).toHaveBeenCalledWith('test', true, expect.any(Number));
  });

  it('completes a restart once the old workers have exited, not when they are told to drain', async () => {
    const { arbiter } = makeArbiter({ workers: 2, maxSurge: 1 });
    const [old1, old2] = spawned;
    old1!.becomeReady();
    old2!.becomeReady();
    const ended = vi.fn();
    arbiter.on('restart-end', ended);
    arbiter.requestRollingRestart('test');
    await settle();
    spawned[2]!.becomeReady();
    await settle();
    spawned[3]!.becomeReady();
    await settle();
    expect([old1!.signals, old2!.signals]).toEqual([['graceful'], ['graceful']]);
    // A slow request holds the old workers: the restart is not over while they run the old code.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ended).not.toHaveBeenCalled();
    old2!.exit(0);
    await settle();
    expect(ended).not.toHaveBeenCalled();
    old1!.exit(0);
    await settle();
    expect(ended).toHaveBeenCalledOnce();
    expect(ended).toHaveBeenCalledWith('test', true, 5);
  });

  it('queues a HUP that arrives while the old workers drain, and starts it once they have exited', async () => {
    const { arbiter } = makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    await settle();
    const events: string[] = [];
    arbiter.on('restart-begin', (reason) => events.push(`begin ${reason}`));
    arbiter.on('restart-end', (reason) => events.push(`end ${reason}`));
    arbiter.requestRollingRestart('a');
    await settle();
    spawned[1]!.becomeReady();
    await settle();
    expect(spawned[0]!.signals).toEqual(['graceful']);
    arbiter.requestRollingRestart('b');
    await settle();
    expect(spawned).toHaveLength(2);
    expect(events).toEqual(['begin a']);
    spawned[0]!.exit(0);
    await settle();
    expect(events).toEqual(['begin a', 'end a', 'begin b']);
    expect(spawned[2]).toMatchObject({ slot: 1, generation: 3, role: 'replacement' });
  });

  it('ends no restart whose drain a stop overtakes', async () => {
    const { arbiter, exitCode } = makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    const ended = vi.fn();
    arbiter.on('restart-end', ended);
    arbiter.requestRollingRestart('test');
    await settle();
    spawned[1]!.becomeReady();
    await settle();
    arbiter.stop('graceful');
    for (const worker of spawned) worker.exit(0);
    await expect(exitCode).resolves.toBe(0);
    expect(ended).not.toHaveBeenCalled();
  });

  it('aborts a restart whose new worker fails to boot, keeping the old generation', async () => {
    const { arbiter } = makeArbiter({ workers: 2, maxSurge: 2 });
    for (const worker of spawned) worker.becomeReady();
    const ended = vi.fn();
    arbiter.on('restart-end', ended);
    arbiter.requestRollingRestart('test');
    await settle();
    expect(spawned).toHaveLength(4);
    spawned[2]!.exit(4);
    spawned[3]!.becomeReady();
    await settle();
    expect(ended).toHaveBeenCalledWith('test', false, expect.any(Number));
    expect(spawned[0]!.signals).toEqual([]);
    expect(spawned[1]!.signals).toEqual([]);
    expect(spawned[3]!.signals).toEqual(['quick']);
    expect(arbiter.stopping).toBe(false);
  });

  it('queues one restart during a restart and merges further requests', async () => {
    const { arbiter } = makeArbiter({ workers: 1 });
    // The start is an operation too: requests made while it runs queue behind it.
    await settle();
    spawned[0]!.becomeReady();
    const begun = vi.fn();
    arbiter.on('restart-begin', begun);
    arbiter.requestRollingRestart('a');
    arbiter.requestRollingRestart('b');
    arbiter.requestRollingRestart('c');
    await settle();
    spawned[1]!.becomeReady();
    await settle();
    // Restart a is over once its old worker has drained; b starts then.
    spawned[0]!.exit(0);
    await settle();
    spawned[2]!.becomeReady();
    await settle();
    expect(begun.mock.calls).toEqual([['a'], ['b']]);
    expect(spawned).toHaveLength(3);
  });

  it('scales up and down, draining the oldest, never below one', async () => {
    const { arbiter } = makeArbiter({ workers: 2 });
    for (const worker of spawned) worker.becomeReady();
    arbiter.requestScaleUp();
    await settle();
    expect(spawned[2]).toMatchObject({ slot: 3, role: 'scale-up' });
    spawned[2]!.becomeReady();
    await settle();
    expect(arbiter.wantedWorkers()).toBe(3);
    arbiter.requestScaleDown();
    await settle();
    expect(spawned[0]!.signals).toEqual(['graceful']);
    spawned[0]!.exit(0);
    expect(arbiter.wantedWorkers()).toBe(2);
    expect(spawned).toHaveLength(3);
    arbiter.requestScaleDown();
    arbiter.requestScaleDown();
    await settle();
    expect(arbiter.wantedWorkers()).toBe(1);
  });

  it('recycles one worker at a time: replacement ready first, the next after the drain', async () => {
    const { arbiter } = makeArbiter({ workers: 2 });
    const [first, second] = spawned;
    first!.becomeReady();
    second!.becomeReady();
    arbiter.requestRecycle(first!, 'max-requests', {});
    arbiter.requestRecycle(second!, 'max-requests', {});
    await settle();
    expect(spawned).toHaveLength(3);
    spawned[2]!.becomeReady();
    await settle();
    expect(first!.signals).toEqual(['graceful']);
    expect(spawned).toHaveLength(3);
    first!.exit(0);
    await settle();
    expect(spawned).toHaveLength(4);
    expect(spawned[3]!.slot).toBe(2);
  });

  it('stops gracefully: every worker drains, and the exit code is 0 once all have exited', async () => {
    const { arbiter, exitCode } = makeArbiter({ workers: 2 });
    for (const worker of spawned) worker.becomeReady();
    arbiter.stop('graceful');
    expect(spawned.map((worker) => worker.signals)).toEqual([['graceful'], ['graceful']]);
    spawned[0]!.exit(0);
    spawned[1]!.exit(0);
    await expect(exitCode).resolves.toBe(0);
    expect(spawned).toHaveLength(2);
  });

  it('kills at once on a second quick stop', () => {
    const { arbiter } = makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    arbiter.stop('quick');
    arbiter.stop('quick');
    expect(spawned[0]!.signals).toEqual(['quick', 'kill']);
  });

  it('a worker that cannot be spawned, even at first start, is retried with the slot backoff and never halts corral', async () => {
    let failures = 2;
    const attempts: string[] = [];
    const arbiter = new Arbiter({ ...settings, workers: 1 }, launcherOf((spec) => {
      attempts.push(spec.role);
      if (failures-- > 0) throw Object.assign(new Error('spawn python EAGAIN'), { code: 'EAGAIN' });
      return new FakeWorker(spec);
    }), log);
    const exits: string[] = [];
    arbiter.on('worker-exit', (worker) => exits.push(worker.bootError?.message ?? ''));
    void arbiter.run();
    // Each failure is reported on a later turn of the loop; the first is retried at once, the next after 500 ms.
    await vi.advanceTimersByTimeAsync(2);
    expect(attempts).toEqual(['initial', 'respawn']);
    expect(exits).toHaveLength(2);
    expect(exits[0]).toContain('cannot start the worker process: spawn python EAGAIN: the limit of processes is reached');
    await vi.advanceTimersByTimeAsync(400);
    expect(attempts).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(attempts).toEqual(['initial', 'respawn', 'respawn']);
    expect(arbiter.stopping).toBe(false);
    expect(arbiter.liveWorkers()).toHaveLength(1);
  });
});

describe('Arbiter shutdown delay (--shutdown-delay)', () => {
  it('is stopping at once, keeps every worker serving until the delay ends, then drains', async () => {
    const { arbiter, exitCode } = makeArbiter({ workers: 2, shutdownDelayMs: 5_000 });
    for (const worker of spawned) worker.becomeReady();
    const stopping = vi.fn();
    arbiter.on('stopping', stopping);
    arbiter.stop('graceful');
    expect(arbiter.stopping).toBe(true);
    expect(stopping).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(4_999);
    expect(spawned.map((worker) => worker.signals)).toEqual([[], []]);
    vi.advanceTimersByTime(1);
    expect(spawned.map((worker) => worker.signals)).toEqual([['graceful'], ['graceful']]);
    for (const worker of spawned) worker.exit(0);
    await expect(exitCode).resolves.toBe(0);
  });

  it('replaces a worker that dies during the delay, and drains the replacement with the rest', () => {
    const { arbiter } = makeArbiter({ workers: 2, shutdownDelayMs: 5_000 });
    for (const worker of spawned) worker.becomeReady();
    vi.advanceTimersByTime(20_000);
    arbiter.stop('graceful');
    spawned[0]!.exit(null, 'SIGKILL');
    expect(spawned).toHaveLength(3);
    expect(spawned[2]).toMatchObject({ slot: 1, role: 'respawn' });
    vi.advanceTimersByTime(5_000);
    expect(spawned[2]!.signals).toEqual(['graceful']);
  });

  it('drains at once on a second TERM and stops quickly at once on INT', () => {
    const first = makeArbiter({ workers: 1, shutdownDelayMs: 60_000 });
    spawned[0]!.becomeReady();
    first.arbiter.stop('graceful');
    first.arbiter.stop('graceful');
    expect(spawned[0]!.signals).toEqual(['graceful']);
    vi.advanceTimersByTime(60_000);
    expect(spawned[0]!.signals).toEqual(['graceful']);

    const second = makeArbiter({ workers: 1, shutdownDelayMs: 60_000 });
    spawned[0]!.becomeReady();
    second.arbiter.stop('graceful');
    second.arbiter.stop('quick');
    expect(spawned[0]!.signals).toEqual(['quick']);
    second.arbiter.stop('quick');
    expect(spawned[0]!.signals).toEqual(['quick', 'kill']);

    // No delay for a quick stop, nor for a stop that asks for none (a USR2 hand-over).
    const quick = makeArbiter({ workers: 1, shutdownDelayMs: 60_000 });
    spawned[0]!.becomeReady();
    quick.arbiter.stop('quick');
    expect(spawned[0]!.signals).toEqual(['quick']);

    const handOver = makeArbiter({ workers: 1, shutdownDelayMs: 60_000 });
    spawned[0]!.becomeReady();
    handOver.arbiter.stop('graceful', { delay: false });
    expect(spawned[0]!.signals).toEqual(['graceful']);
  });
});

describe('Arbiter and its worker launcher', () => {
  it('prepares each generation before its first worker, and retires the old one once its last worker has exited', async () => {
    const { arbiter, launcher } = makeArbiter({ workers: 2, maxSurge: 2 });
    expect(launcher.calls).toEqual(['prepare 1', 'launch 1', 'launch 1']);
    const [old1, old2] = spawned;
    old1!.becomeReady();
    old2!.becomeReady();
    arbiter.requestRollingRestart('test');
    await settle();
    expect(launcher.calls.slice(3)).toEqual(['prepare 2', 'launch 2', 'launch 2']);
    spawned[2]!.becomeReady();
    spawned[3]!.becomeReady();
    await settle();
    expect(old1!.signals).toEqual(['graceful']);
    old1!.exit(0);
    expect(launcher.calls).not.toContain('retire 1');
    old2!.exit(0);
    expect(launcher.calls.slice(6)).toEqual(['retire 1']);
  });

  it('launches a new generation only once it is prepared; a respawn meanwhile belongs to the current one', async () => {
    const { arbiter, launcher } = makeArbiter({ workers: 1 });
    spawned[0]!.becomeReady();
    vi.advanceTimersByTime(20_000);
    let prepared = () => undefined as void;
    launcher.preparing = new Promise<void>((resolve) => (prepared = resolve));
    arbiter.requestRollingRestart('test');
    await settle();
    expect(launcher.calls.slice(2)).toEqual(['prepare 2']);
    spawned[0]!.exit(null, 'SIGKILL');
    expect(spawned[1]).toMatchObject({ generation: 1, role: 'respawn' });
    spawned[1]!.becomeReady();
    prepared();
    await settle();
    expect(spawned[2]).toMatchObject({ generation: 2, role: 'replacement' });
    expect(launcher.calls.slice(2)).toEqual(['prepare 2', 'launch 1', 'launch 2']);
  });
});
