import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, isAlive, killAllCorrals, startCorral, TEST_APPS, type Corral } from '../helpers/corral.js';

afterEach(() => killAllCorrals());

const DELAY_OVER = 'shutdown delay over: draining the workers';

async function startWithDelay(delaySeconds: number, gracefulSeconds: number): Promise<{ corral: Corral; port: number; metricsPort: number; pids: number[] }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const corral = startCorral([
    '-w', '2',
    '--shutdown-delay', String(delaySeconds),
    '--graceful-timeout', String(gracefulSeconds),
    '-b', `127.0.0.1:${port}`,
    '--metrics-bind', `127.0.0.1:${metricsPort}`,
    '--app-dir', TEST_APPS,
    'app:app',
  ]);
  const pids = await corral.waitForReadyWorkers(2);
  expect((await get({ port: metricsPort }, '/readyz')).status).toBe(200);
  return { corral, port, metricsPort, pids };
}

/** Expects /readyz to answer 503 within a few seconds of the TERM (a deadline for the machine's speed). */
async function expectNotReady(metricsPort: number): Promise<void> {
  await expect.poll(async () => (await get({ port: metricsPort }, '/readyz')).status, { timeout: 10_000, message: '/readyz after the TERM' }).toBe(503);
}

describe('--shutdown-delay', () => {
  it('on TERM: /readyz answers 503 at once while every worker keeps answering 200, then the drain and a clean exit', async () => {
    const delay = 3;
    const graceful = 5;
    const { corral, port, metricsPort, pids } = await startWithDelay(delay, graceful);

    corral.signal('SIGTERM');
    await expectNotReady(metricsPort);
    // The delay is running: fresh connections are still served, by the workers that were there.
    const answers = [];
    for (let request = 0; request < 10; request += 1) answers.push(await get({ port }));
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(pids).toContain(Number(answer.body));
    }
    expect(corral.find((r) => r.msg === DELAY_OVER), 'the drain began before the requests of the delay were answered').toEqual([]);
    for (const pid of pids) expect(isAlive(pid)).toBe(true);
    expect(corral.exitCode).toBeUndefined();

    // Then the drain as without a delay, within the delay plus the graceful timeout (and room for a busy machine).
    expect(await corral.waitForExit((delay + graceful) * 1000 + 10_000)).toBe(0);
    const over = corral.records.findIndex((r) => r.msg === DELAY_OVER);
    expect(over).toBeGreaterThan(-1);
    const exits = corral.records.flatMap((r, index) => (r.msg === 'worker exited' ? [index] : []));
    expect(exits).toHaveLength(2);
    for (const index of exits) expect(index).toBeGreaterThan(over);
    expect(corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('stopping gracefully after the shutdown delay'))).toHaveLength(1);
  });

  it('a second TERM during the delay drains at once', async () => {
    const { corral, port, metricsPort } = await startWithDelay(300, 5);
    corral.signal('SIGTERM');
    await expectNotReady(metricsPort);
    expect((await get({ port })).status).toBe(200);
    corral.signal('SIGTERM');
    // Far sooner than the 300 s delay: the second TERM ended it.
    expect(await corral.waitForExit(20_000)).toBe(0);
    expect(corral.find((r) => r.msg === 'second TERM: ending the shutdown delay, draining now')).toHaveLength(1);
    expect(corral.find((r) => r.msg === 'worker exited')).toHaveLength(2);
  });

  it('INT during the delay stops quickly at once', async () => {
    const { corral, metricsPort } = await startWithDelay(300, 30);
    corral.signal('SIGTERM');
    await expectNotReady(metricsPort);
    corral.signal('SIGINT');
    expect(await corral.waitForExit(20_000)).toBe(0);
    expect(corral.find((r) => r.msg === 'quick stop: ending the shutdown delay, stopping now')).toHaveLength(1);
  });
});
