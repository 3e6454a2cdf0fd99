import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { StandbyPool, type StandbyProcess } from '../../../src/reload/standby.js';
import type { StopMode, StopReason, WorkerEvents, WorkerSpawnSpec, WorkerState } from '../../../src/worker/worker.js';

class FakeStandby extends EventEmitter<WorkerEvents> implements StandbyProcess {
  static nextPid = 100;
  readonly pid = FakeStandby.nextPid++;
  state: WorkerState = 'booting';
  activated: WorkerSpawnSpec | undefined;
  stopped: [StopReason, StopMode] | undefined;
  constructor(readonly preload: readonly string[]) {
    super();
  }
  activate(spec: WorkerSpawnSpec): void {
    this.activated = spec;
  }
  stop(reason: StopReason, mode: StopMode): void {
    this.stopped = [reason, mode];
    this.state = 'exited';
  }
}

function makePool(size: number, mtimes: Map<string, string>) {
  const started: FakeStandby[] = [];
  const pool = new StandbyPool<FakeStandby>({
    size,
    spawnStandby: (preload) => {
      const standby = new FakeStandby(preload);
      started.push(standby);
      return standby;
    },
    bootTimeoutMs: 60_000,
    log: pino({ level: 'silent' }),
    isWatchedDirectory: (directory) => directory.startsWith('/project'),
    mtimeOf: (directory) => mtimes.get(directory),
  });
  return { pool, started };
}

const spec: WorkerSpawnSpec = { slot: 1, generation: 2, role: 'replacement' };

describe('StandbyPool', () => {
  it('starts nothing until it knows what to preload, then fills to its size', () => {
    const { pool, started } = makePool(2, new Map());
    pool.fill();
    expect(started).toHaveLength(0);
    pool.setPreload(['fastapi', 'pydantic']);
    expect(started).toHaveLength(2);
    expect(started[0]!.preload).toEqual(['fastapi', 'pydantic']);
    pool.fill();
    expect(started).toHaveLength(2);
  });

  it('hands out only a standby that waits for "go", activated for the slot', () => {
    const mtimes = new Map([['/venv/site-packages', '1']]);
    const { pool, started } = makePool(1, mtimes);
    pool.setPreload(['fastapi']);
    expect(pool.take(spec)).toBeUndefined();
    started[0]!.emit('standby', { '/venv/site-packages': '1' }, []);
    const taken = pool.take(spec);
    expect(taken).toBe(started[0]);
    expect(taken!.activated).toEqual(spec);
    expect(pool.take(spec)).toBeUndefined();
    pool.fill();
    expect(started).toHaveLength(2);
  });

  it('discards every standby when a directory of the import path changed, and starts cold', () => {
    const mtimes = new Map([['/venv/site-packages', '1']]);
    const { pool, started } = makePool(2, mtimes);
    pool.setPreload(['fastapi']);
    for (const standby of started) standby.emit('standby', { '/venv/site-packages': '1' }, []);
    mtimes.set('/venv/site-packages', '2');
    expect(pool.take(spec)).toBeUndefined();
    expect(started.map((standby) => standby.stopped)).toEqual([
      ['reload', 'quick'],
      ['reload', 'quick'],
    ]);
    pool.fill();
    expect(started).toHaveLength(4);
  });

  it('ignores changes to the watched code’s own directories', () => {
    const mtimes = new Map([
      ['/venv/site-packages', '1'],
      ['/project', '5'],
    ]);
    const { pool, started } = makePool(1, mtimes);
    pool.setPreload([]);
    started[0]!.emit('standby', { '/venv/site-packages': '1', '/project': '5' }, []);
    mtimes.set('/project', '6');
    expect(pool.take(spec)).toBe(started[0]);
  });

  it('forgets a standby that exits, and replaces it on the next fill', () => {
    const { pool, started } = makePool(1, new Map());
    pool.setPreload([]);
    started[0]!.emit('exit', { code: 1, signal: null });
    expect(pool.waiting).toBe(0);
    pool.fill();
    expect(started).toHaveLength(2);
  });

  it('stops its standbys on close and starts no more', () => {
    const { pool, started } = makePool(1, new Map());
    pool.setPreload([]);
    pool.close();
    expect(started[0]!.stopped).toEqual(['reload', 'quick']);
    pool.fill();
    expect(started).toHaveLength(1);
  });
});

describe('StandbyPool preload list', () => {
  it('replaces standbys that lack a module the app now imports, and keeps those that do not', () => {
    const { pool, started } = makePool(1, new Map());
    pool.setPreload(['fastapi']);
    pool.setPreload(['fastapi']);
    expect(started).toHaveLength(1);
    // A worker with fewer modules changes nothing.
    pool.setPreload([]);
    expect(started).toHaveLength(1);
    pool.setPreload(['httpx']);
    expect(started[0]!.stopped).toEqual(['reload', 'quick']);
    expect(started).toHaveLength(2);
    expect(started[1]!.preload).toEqual(['fastapi', 'httpx']);
  });
});

describe('StandbyPool hand-over before the standby is done importing', () => {
  it('hands out a standby still importing once the import path is known, and checks it against its spawn', () => {
    const mtimes = new Map([['/venv/site-packages', '1']]);
    const { pool, started } = makePool(1, mtimes);
    pool.setPreload(['fastapi']);
    started[0]!.emit('standby', { '/venv/site-packages': '1', '/project': '9' }, []);
    expect(pool.take(spec)).toBe(started[0]);
    pool.fill();
    // The second standby has not reported yet, but the master snapshotted the import path at its spawn.
    expect(pool.waiting).toBe(0);
    const early = pool.take(spec);
    expect(early).toBe(started[1]);
    expect(early!.activated).toEqual(spec);
  });

  it('prefers a waiting standby, and starts cold when the import path changed since the spawn', () => {
    const mtimes = new Map([['/venv/site-packages', '1']]);
    const { pool, started } = makePool(2, mtimes);
    pool.setPreload(['fastapi']);
    started[1]!.emit('standby', { '/venv/site-packages': '1' }, []);
    expect(pool.take(spec)).toBe(started[1]);
    pool.fill();
    // started[0] never reported but was spawned before the directories were known: not usable.
    // started[2] was snapshotted at spawn; a package installed since makes it stale.
    mtimes.set('/venv/site-packages', '2');
    expect(pool.take(spec)).toBeUndefined();
    expect(started[2]!.stopped).toEqual(['reload', 'quick']);
  });
});
