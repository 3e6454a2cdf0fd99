import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, isAlive, killAllCorrals, startApp, startCorral, TEST_APPS, waitFor } from '../helpers/corral.js';
import { startLoad } from '../helpers/load.js';
import { canUnsharePid, namespaceInit, PID_NAMESPACE_WRAPPER } from '../helpers/pid-namespace.js';
import { expectExited } from '../helpers/process-group.js';

const tmpDirs: string[] = [];
afterEach(() => {
  killAllCorrals();
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-upgrade-'));
  tmpDirs.push(dir);
  return dir;
}

/** The pid in the file; undefined while it is missing or still empty (it is created, then written). */
function readPid(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** A bounded request loop on loopback: `concurrency` clients, one request per fresh connection. */
class Load {
  ok = 0;
  readonly failures: string[] = [];
  readonly answeredBy = new Map<string, number>();
  private stopped = false;
  readonly finished: Promise<void>;

  constructor(target: { port: number } | { socketPath: string }, concurrency: number, maxRequests: number) {
    let sent = 0;
    const client = async () => {
      while (!this.stopped && sent < maxRequests) {
        sent += 1;
        try {
          const reply = await get(target, '/', 10_000);
          if (reply.status === 200) {
            this.ok += 1;
            this.answeredBy.set(reply.body, (this.answeredBy.get(reply.body) ?? 0) + 1);
          } else {
            this.failures.push(`status ${reply.status}`);
          }
        } catch (error) {
          this.failures.push((error as Error).message);
        }
      }
    };
    this.finished = Promise.all(Array.from({ length: concurrency }, client)).then(() => undefined);
  }

  answeredByAnyOf(pids: readonly number[]): number {
    return pids.reduce((sum, pid) => sum + (this.answeredBy.get(String(pid)) ?? 0), 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.finished;
  }
}

describe('USR2: upgrading the master', () => {
  it('hands the sockets to a new master under load with zero failed requests, and the pid file over', async () => {
    const dir = tmpDir();
    const pidFile = path.join(dir, 'corral.pid');
    const socketPath = path.join(dir, 'corral.sock');
    const { corral, port } = await startApp(['-w', '2', '-b', `unix:${socketPath}`, '-p', pidFile]);
    const oldWorkers = await corral.waitForReadyWorkers(2);
    expect(readPid(pidFile)).toBe(corral.pid);

    const tcpLoad = new Load({ port }, 4, 20_000);
    const unixLoad = new Load({ socketPath }, 1, 5_000);
    // And keep-alive clients: the old workers must close their connections without a reset.
    const keepAlive = startLoad({ port, connections: 8, keepAlive: true, maxMs: 60_000 });
    await waitFor(() => tcpLoad.ok >= 50 && unixLoad.ok >= 10 && keepAlive.result.ok >= 50, 20_000, 'the load to get going');

    // Watch the pid file for the new master's <pid>.2 while the upgrade runs.
    let secondPidFile: number | undefined;
    const watcher = setInterval(() => (secondPidFile ??= readPid(`${pidFile}.2`)), 10);
    corral.signal('SIGUSR2');
    const started = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('upgrade: started a new master'));
    const newMaster = started.newMaster as number;
    expect(newMaster).not.toBe(corral.pid);

    // The old master drains and exits by itself once the new master's workers are ready.
    expect(await corral.waitForExit(60_000)).toBe(0);
    clearInterval(watcher);
    expect(secondPidFile).toBe(newMaster);
    await corral.waitForLog((r) => r.msg === 'upgrade: the previous master has exited; this master is in charge' && r.pid === newMaster);
    expect(readPid(pidFile)).toBe(newMaster);
    expect(fs.existsSync(`${pidFile}.2`)).toBe(false);
    expect(isAlive(newMaster)).toBe(true);
    await expectExited(oldWorkers, 10_000, 'old workers alive after the old master exited');

    // The new master's workers serve, on both sockets (the unix socket file was not removed).
    const newWorkers = corral.readyWorkerPids().filter((pid) => !oldWorkers.includes(pid));
    expect(newWorkers).toHaveLength(2);
    const before = tcpLoad.answeredByAnyOf(newWorkers) + unixLoad.answeredByAnyOf(newWorkers);
    await waitFor(() => tcpLoad.answeredByAnyOf(newWorkers) + unixLoad.answeredByAnyOf(newWorkers) >= before + 50, 20_000, 'requests answered by the new workers');
    const keepAliveResult = await keepAlive.stop();
    await Promise.all([tcpLoad.stop(), unixLoad.stop()]);
    expect([...tcpLoad.failures, ...unixLoad.failures, ...keepAliveResult.errors]).toEqual([]);
    expect(keepAliveResult.failed).toBe(0);
    expect(tcpLoad.answeredByAnyOf(oldWorkers)).toBeGreaterThan(0);
    expect(unixLoad.answeredByAnyOf(newWorkers)).toBeGreaterThan(0);

    // The new master stops as any master does, and cleans up after itself.
    process.kill(newMaster, 'SIGTERM');
    await expectExited([newMaster], 30_000, 'the new master alive after its TERM');
    expect(fs.existsSync(pidFile)).toBe(false);
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  it('keeps the old master serving when the new master cannot load the app', async () => {
    const dir = tmpDir();
    const pidFile = path.join(dir, 'corral.pid');
    fs.writeFileSync(path.join(dir, 'swapped.py'), fs.readFileSync(path.join(TEST_APPS, 'app.py')));
    const port = await freePort();
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, '-p', pidFile, '--app-dir', dir, 'swapped:app']);
    const [worker] = await corral.waitForReadyWorkers(1);
    // A broken deploy: the new master will import this.
    fs.writeFileSync(path.join(dir, 'swapped.py'), 'raise ImportError("broken on purpose")\n');
    corral.signal('SIGUSR2');
    const failed = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('upgrade failed'), 30_000);
    expect(failed).toMatchObject({ code: 4 });
    expect(readPid(pidFile)).toBe(corral.pid);
    expect(fs.existsSync(`${pidFile}.2`)).toBe(false);
    const reply = await get({ port });
    expect(reply).toMatchObject({ status: 200, body: String(worker) });
    // A later USR2 is accepted again.
    corral.signal('SIGUSR2');
    const failures = () => corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('upgrade failed'));
    await waitFor(() => failures().length === 2, 30_000, 'the second attempt to end');
    expect(failures()[1]).toMatchObject({ code: 4 });
    expect(readPid(pidFile)).toBe(corral.pid);
    corral.signal('SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
  });
});

describe('corral as PID 1', () => {
  it.skipIf(!canUnsharePid())('runs under corral-init, which forwards USR2 to the master, and the master refuses it (needs unshare: root)', async () => {
    const { corral, port } = await startApp(['-w', '1'], { wrapper: PID_NAMESPACE_WRAPPER });
    const underInit = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('running under corral-init'));
    expect(underInit.pid).not.toBe(1);
    await waitFor(() => corral.find((r) => r.msg === 'worker ready').length === 1, 20_000, 'the worker');
    // PID 1 of the namespace is unshare's child; seen from here it has an ordinary pid.
    process.kill(namespaceInit(corral.pid)!, 'SIGUSR2');
    const refused = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('upgrade refused'));
    expect(refused.msg).toBe(
      'upgrade refused: corral runs under corral-init, which exits with it: the old master exiting would end the container; roll out a new container instead',
    );
    expect(corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('upgrade: started'))).toEqual([]);
    expect((await get({ port })).status).toBe(200);
  });
});
