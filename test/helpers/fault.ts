import { expect } from 'vitest';
import { get, groupMembers, runCorralCommand, waitFor, type Corral } from './corral.js';

export interface FaultTarget {
  corral: Corral;
  /** The --control-socket path the master was started with; undefined when the fault left it without one. */
  controlSocket: string | undefined;
  /** The --metrics-bind port the master was started with. */
  metricsPort: number;
  /** The --graceful-timeout the master was started with, in seconds. */
  gracefulTimeout: number;
}

/**
 * What every hardening test checks once its fault has passed: the master still answers its control
 * socket (when it has one) and /readyz (a worker is ready), then a TERM stops everything within the
 * graceful bound and leaves no process of the group behind.
 */
export async function expectSurvivedFault({ corral, controlSocket, metricsPort, gracefulTimeout }: FaultTarget): Promise<void> {
  await waitFor(async () => (await get({ port: metricsPort }, '/readyz').catch(() => undefined))?.status === 200, 20_000, '/readyz to answer 200 after the fault');
  if (controlSocket !== undefined) {
    const status = await runCorralCommand(['status', '--json', '--control-socket', controlSocket], 15_000);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { pid: number }).pid).toBe(corral.pid);
  }
  corral.signal('SIGTERM');
  // The graceful bound, plus what a loaded 2-core machine needs to start and end processes.
  expect(await corral.waitForExit((gracefulTimeout + 10) * 1000)).toBe(0);
  await waitFor(async () => (await groupMembers(corral.pid)).length === 0, 5_000, 'every process of the group to be gone');
}
