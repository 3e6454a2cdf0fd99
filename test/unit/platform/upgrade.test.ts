import { describe, expect, it } from 'vitest';
import type { Listener } from '../../../src/platform/sockets.js';
import { inheritanceFromEnvironment, newMasterEnvironment, pidFilePath, upgradeRefusal } from '../../../src/platform/upgrade.js';

describe('USR2 hand-over', () => {
  const listeners = [
    { spec: { kind: 'tcp', host: '127.0.0.1', port: 8000, family: 4 }, fd: 17, address: '127.0.0.1:8000', close: () => undefined },
    { spec: { kind: 'unix', path: '/run/app.sock' }, fd: 18, address: 'unix:/run/app.sock', close: () => undefined },
  ] as Listener[];

  it("tells the new master which descriptor is which, and drops systemd's socket variables", () => {
    const env = newMasterEnvironment({ PATH: '/bin', LISTEN_FDS: '2', LISTEN_PID: '5', WATCHDOG_PID: '5', NOTIFY_SOCKET: '/run/n' }, listeners, 5);
    expect(env).toMatchObject({ PATH: '/bin', NOTIFY_SOCKET: '/run/n', CORRAL_UPGRADE_FROM: '5', CORRAL_UPGRADE_FD: '3' });
    expect(env.LISTEN_FDS).toBeUndefined();
    expect(env.LISTEN_PID).toBeUndefined();
    expect(env.WATCHDOG_PID).toBeUndefined();
    expect(inheritanceFromEnvironment(env)).toEqual({
      previousPid: 5,
      channelFd: 3,
      listeners: [
        { fd: 4, spec: listeners[0]!.spec },
        { fd: 5, spec: listeners[1]!.spec },
      ],
    });
  });

  it('is not an upgrade without CORRAL_UPGRADE_FROM, and refuses half-set variables', () => {
    expect(inheritanceFromEnvironment({})).toBeUndefined();
    expect(() => inheritanceFromEnvironment({ CORRAL_UPGRADE_FROM: '5', CORRAL_UPGRADE_FD: '3', CORRAL_LISTENERS: '[{"fd":4}]' })).toThrow(/unset them/);
  });

  it("writes the new master's pid file beside the old one's, as gunicorn does", () => {
    expect(pidFilePath('/run/corral.pid', false)).toBe('/run/corral.pid');
    expect(pidFilePath('/run/corral.pid', true)).toBe('/run/corral.pid.2');
  });

  it('refuses USR2 where the old master exiting would end the container, or while one is under way', () => {
    const base = { pid: 4242, containerInit: undefined, awaitingPromotion: false, upgrading: false, stopping: false };
    expect(upgradeRefusal(base)).toBeUndefined();
    expect(upgradeRefusal({ ...base, pid: 1 })).toMatch(/^corral is PID 1/);
    expect(upgradeRefusal({ ...base, containerInit: 'tini' })).toMatch(/^corral runs under tini, which exits with it/);
    expect(upgradeRefusal({ ...base, awaitingPromotion: true })).toMatch(/upgrade still in progress/);
    expect(upgradeRefusal({ ...base, upgrading: true })).toBe('an upgrade is already in progress');
    expect(upgradeRefusal({ ...base, stopping: true })).toBe('corral is stopping');
  });
});
