import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { UsageError } from '../exit-codes.js';

/** The user and group the workers run as (`-u/--user`, `-g/--group`). */
export interface WorkerIdentity {
  uid: number;
  gid: number;
  /** For log lines and errors: the name given, or the number. */
  user: string;
  group: string;
}

export interface AccountEntry {
  name: string;
  id: number;
  /** The primary group, for passwd entries. */
  gid?: number;
}

/** Looks up one passwd or group entry by name or number; undefined when there is none. */
export type AccountLookup = (database: 'passwd' | 'group', key: string) => AccountEntry | undefined;

/** Parses one line of getent's or /etc/passwd's / /etc/group's output. */
export function parseAccountLine(database: 'passwd' | 'group', line: string): AccountEntry | undefined {
  const fields = line.trim().split(':');
  if (fields.length < 3 || !/^\d+$/.test(fields[2] ?? '')) return undefined;
  const entry: AccountEntry = { name: fields[0]!, id: Number(fields[2]) };
  if (database === 'passwd' && /^\d+$/.test(fields[3] ?? '')) entry.gid = Number(fields[3]);
  return entry;
}

/**
 * getent asks NSS, so LDAP or systemd-homed accounts resolve as they would for `su`; the files are
 * the fallback on systems without getent (Alpine without the package).
 */
export const systemLookup: AccountLookup = (database, key) => {
  try {
    const out = execFileSync('getent', [database, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return parseAccountLine(database, out.split('\n')[0] ?? '');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined; // getent ran: no such entry
  }
  const file = database === 'passwd' ? '/etc/passwd' : '/etc/group';
  const numeric = /^\d+$/.test(key);
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const entry = parseAccountLine(database, line);
    if (entry && (numeric ? entry.id === Number(key) : entry.name === key)) return entry;
  }
  return undefined;
};

export interface CurrentIds {
  uid: number;
  gid: number;
}

/**
 * Resolves `--user`/`--group` to ids, or undefined when neither is given. Numbers are taken as they
 * are even without an account (as gunicorn does). With `--user` alone the workers get that user's
 * primary group, as `su` and `runuser` do (gunicorn would keep the master's group, root's, which is
 * rarely wanted). Switching needs root: anything else is refused here rather than failing in spawn.
 */
export function resolveWorkerIdentity(
  user: string | undefined,
  group: string | undefined,
  current: CurrentIds,
  lookup: AccountLookup = systemLookup,
): WorkerIdentity | undefined {
  if (user === undefined && group === undefined) return undefined;
  let uid = current.uid;
  let gid = current.gid;
  let userName = String(current.uid);
  let groupName = String(current.gid);
  if (user !== undefined) {
    const account = resolveAccount('passwd', user, lookup);
    ({ id: uid, name: userName } = account);
    if (group === undefined && account.gid !== undefined) {
      gid = account.gid;
      groupName = lookup('group', String(account.gid))?.name ?? String(account.gid);
    }
  }
  if (group !== undefined) ({ id: gid, name: groupName } = resolveAccount('group', group, lookup));
  if (current.uid !== 0 && (uid !== current.uid || gid !== current.gid)) {
    const option = uid !== current.uid ? `--user ${user}` : `--group ${group}`;
    throw new UsageError(
      `${option}: running the workers as another user or group needs corral to start as root (it runs as uid ${current.uid})`,
    );
  }
  return { uid, gid, user: userName, group: groupName };
}

/** A user or group by name or number; a number stands even without an account, a name must exist. */
function resolveAccount(database: 'passwd' | 'group', key: string, lookup: AccountLookup): AccountEntry {
  const entry = lookup(database, key);
  if (entry === undefined && !/^\d+$/.test(key)) {
    const [option, noun, id] = database === 'passwd' ? ['--user', 'user', 'uid'] : ['--group', 'group', 'gid'];
    throw new UsageError(`${option} ${JSON.stringify(key)}: no such ${noun} on this system; give a ${noun} name or a numeric ${id}`);
  }
  return { id: entry?.id ?? Number(key), name: entry?.name ?? key, ...(entry?.gid !== undefined ? { gid: entry.gid } : {}) };
}

export function currentIds(): CurrentIds {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}
