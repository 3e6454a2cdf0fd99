import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/exit-codes.js';
import { parseAccountLine, resolveWorkerIdentity, type AccountLookup } from '../../src/platform/privileges.js';
import { statusText, watchdogIntervalMs, workersHealthy } from '../../src/platform/sd-notify.js';
import type { Listener } from '../../src/platform/sockets.js';
import { inheritanceFromEnvironment, newMasterEnvironment, pidFilePath, upgradeRefusal } from '../../src/platform/upgrade.js';

const accounts: AccountLookup = (database, key) => {
  const passwd = [
    { name: 'root', id: 0, gid: 0 },
    { name: 'nobody', id: 65534, gid: 65534 },
    { name: 'app', id: 1000, gid: 1001 },
  ];
  const groups = [
    { name: 'root', id: 0 },
    { name: 'nogroup', id: 65534 },
    { name: 'appgroup', id: 1001 },
    { name: 'www-data', id: 33 },
  ];
  const table = database === 'passwd' ? passwd : groups;
  return table.find((entry) => entry.name === key || String(entry.id) === key);
};
const root = { uid: 0, gid: 0 };

describe('resolveWorkerIdentity (-u/-g)', () => {
  it('is undefined without -u and -g', () => {
    expect(resolveWorkerIdentity(undefined, undefined, root, accounts)).toBeUndefined();
  });

  it("gives --user alone that user's primary group", () => {
    expect(resolveWorkerIdentity('app', undefined, root, accounts)).toEqual({ uid: 1000, gid: 1001, user: 'app', group: 'appgroup' });
  });

  it('takes names and numbers, and numbers without an account', () => {
    expect(resolveWorkerIdentity('nobody', 'www-data', root, accounts)).toEqual({ uid: 65534, gid: 33, user: 'nobody', group: 'www-data' });
    expect(resolveWorkerIdentity('4242', '4343', root, accounts)).toEqual({ uid: 4242, gid: 4343, user: '4242', group: '4343' });
    expect(resolveWorkerIdentity(undefined, 'nogroup', root, accounts)).toEqual({ uid: 0, gid: 65534, user: '0', group: 'nogroup' });
  });

  it('names the option and the value of an unknown user or group', () => {
    expect(() => resolveWorkerIdentity('ghost', undefined, root, accounts)).toThrow(
      new UsageError('--user "ghost": no such user on this system; give a user name or a numeric uid'),
    );
    expect(() => resolveWorkerIdentity(undefined, 'ghosts', root, accounts)).toThrow(/^--group "ghosts": no such group/);
  });

  it('refuses a switch that needs root when corral is not root, and allows naming oneself', () => {
    const app = { uid: 1000, gid: 1001 };
    expect(() => resolveWorkerIdentity('nobody', undefined, app, accounts)).toThrow(/^--user nobody: running the workers as another user or group needs corral to start as root \(it runs as uid 1000\)$/);
    expect(resolveWorkerIdentity('app', undefined, app, accounts)).toMatchObject({ uid: 1000, gid: 1001 });
  });

  it('parses passwd and group lines', () => {
    expect(parseAccountLine('passwd', 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin')).toEqual({ name: 'nobody', id: 65534, gid: 65534 });
    expect(parseAccountLine('group', 'nogroup:x:65534:')).toEqual({ name: 'nogroup', id: 65534 });
    expect(parseAccountLine('group', '')).toBeUndefined();
  });
});

describe('sd_notify helpers', () => {
  it('pings the watchdog at half of WATCHDOG_USEC, only when WATCHDOG_PID is ours or absent', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 10)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '10' }, 10)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '11' }, 10)).toBeUndefined();
    expect(watchdogIntervalMs({}, 10)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 10)).toBeUndefined();
  });

  it('counts the service healthy while one worker is ready with a recent heartbeat', () => {
    const now = 100_000;
    expect(workersHealthy([{ state: 'ready', lastHeartbeatAt: now - 500 }], 1_000, now)).toBe(true);
    expect(workersHealthy([{ state: 'ready', lastHeartbeatAt: now - 1_500 }], 1_000, now)).toBe(false);
    expect(workersHealthy([{ state: 'booting', lastHeartbeatAt: now }], 1_000, now)).toBe(false);
    expect(workersHealthy([{ state: 'ready', lastHeartbeatAt: now - 5_000 }, { state: 'ready', lastHeartbeatAt: now }], 1_000, now)).toBe(true);
    expect(workersHealthy([], 1_000, now)).toBe(false);
    expect(statusText(2, 4)).toBe('2 of 4 workers ready');
  });
});

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
