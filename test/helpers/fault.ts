import { expect } from 'vitest';
import { statusJson } from './control.js';
import { get, type Corral } from './corral.js';
import { expectGroupGone } from './process-group.js';

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
  const readyz = async () => (await get({ port: metricsPort }, '/readyz').catch((error: Error) => ({ status: error.message }))).status;
  await expect.poll(readyz, { timeout: 20_000, message: '/readyz after the fault' }).toBe(200);
  if (controlSocket !== undefined) expect((await statusJson(controlSocket, 15_000)).pid).toBe(corral.pid);
  corral.signal('SIGTERM');
  // The graceful bound, plus what a loaded 2-core machine needs to start and end processes.
  expect(await corral.waitForExit((gracefulTimeout + 10) * 1000)).toBe(0);
  await expectGroupGone(corral.pid);
}
