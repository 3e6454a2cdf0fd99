import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/exit-codes.js';
import { parseAccountLine, resolveWorkerIdentity, type AccountLookup } from '../../../src/platform/privileges.js';

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
