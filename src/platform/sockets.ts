import { promises as dns } from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import util from 'node:util';
import { describeBind, type BindSpec } from '../config/bind.js';
import { CorralError, ExitCode } from '../exit-codes.js';
import { clearStaleUnixSocket } from './unix-socket-path.js';

/** A socket bound by the master and held for its whole life; workers inherit `fd`. */
export interface Listener {
  readonly spec: BindSpec;
  readonly fd: number;
  /** The address as bound (with the real port when 0 was asked for). */
  readonly address: string;
  /**
   * Closes the descriptor and, for a unix socket, removes its file — unless `keepFile`: during a USR2
   * upgrade the other master still serves on that file.
   */
  close(options?: { keepFile?: boolean }): void;
}

/** The subset of libuv's TCP/pipe handle that binding needs. */
interface ServerHandle {
  fd: number;
  getsockname?(out: { address?: string; port?: number; family?: string }): number;
  close(): void;
}

type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd: number | undefined,
  flags?: number,
) => ServerHandle | number;

/**
 * Binding without listening. Node (20 to 24) has no public call for it, so this uses the internal one that
 * Node's own cluster module uses; a Node upgrade that drops it fails test/unit/platform/sockets.test.ts.
 */
export function bindOnlyAdapter(): CreateServerHandle {
  const internal = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof internal !== 'function') {
    throw new CorralError(
      `this Node.js (${process.version}) has no bind-only socket call; run corral on Node 20.19, 22 or 24`,
      ExitCode.runtime,
    );
  }
  return internal;
}

function bindError(spec: BindSpec, code: number | string): CorralError {
  const name = typeof code === 'number' ? util.getSystemErrorName(code) : code;
  const where = describeBind(spec);
  const hints: Record<string, string> = {
    EADDRINUSE: 'stop the other server or pick another port with --bind',
    EADDRNOTAVAIL: 'that address is not on this host; use one of its addresses, 127.0.0.1 or 0.0.0.0',
    EACCES: 'permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE',
    EAFNOSUPPORT: 'this host does not support that address family',
  };
  return new CorralError(`cannot bind ${where}: ${name}; ${hints[name] ?? 'check the address'}`, ExitCode.runtime);
}

async function resolveHost(spec: Extract<BindSpec, { kind: 'tcp' }>): Promise<{ host: string; family: 4 | 6 }> {
  if (net.isIP(spec.host)) return { host: spec.host, family: spec.family };
  try {
    const found = await dns.lookup(spec.host);
    return { host: found.address, family: found.family === 6 ? 6 : 4 };
  } catch {
    throw new CorralError(`cannot bind ${describeBind(spec)}: the host name does not resolve`, ExitCode.runtime);
  }
}

async function bindTcp(spec: Extract<BindSpec, { kind: 'tcp' }>, create: CreateServerHandle): Promise<Listener> {
  const { host, family } = await resolveHost(spec);
  const handle = create(host, spec.port, family, undefined, 0);
  if (typeof handle === 'number') throw bindError(spec, handle);
  // libuv reports EADDRINUSE late (at listen); getsockname surfaces it now.
  const out: { address?: string; port?: number } = {};
  const status = handle.getsockname?.(out) ?? 0;
  if (status !== 0) {
    handle.close();
    throw bindError(spec, status);
  }
  const bound: BindSpec = { ...spec, host, family, port: out.port ?? spec.port };
  return { spec: bound, fd: handle.fd, address: describeBind(bound), close: () => handle.close() };
}

async function bindUnix(
  spec: Extract<BindSpec, { kind: 'unix' }>,
  create: CreateServerHandle,
  mode: number,
  owner: SocketOwner | undefined,
): Promise<Listener> {
  const state = await clearStaleUnixSocket(spec.path);
  if (state === 'not-a-socket') {
    throw new CorralError(`cannot bind unix:${spec.path}: a file that is not a socket is in the way`, ExitCode.runtime);
  }
  if (state === 'live') {
    throw new CorralError(`cannot bind unix:${spec.path}: another server is listening on it`, ExitCode.runtime);
  }
  // libuv reports a missing directory as EACCES, so look first.
  const directory = path.dirname(path.resolve(spec.path));
  if (!fs.statSync(directory, { throwIfNoEntry: false })?.isDirectory()) {
    throw new CorralError(`cannot bind unix:${spec.path}: ENOENT; the directory ${directory} does not exist`, ExitCode.runtime);
  }
  const handle = create(spec.path, -1, -1, undefined, 0);
  if (typeof handle === 'number') {
    if (util.getSystemErrorName(handle) === 'EACCES') {
      throw new CorralError(`cannot bind unix:${spec.path}: EACCES; the directory ${directory} is not writable for this user`, ExitCode.runtime);
    }
    throw bindError(spec, handle);
  }
  try {
    fs.chmodSync(spec.path, mode);
    // As gunicorn does: the socket file belongs to the workers' user and group (-u/-g), so a
    // front-end proxy in that group can connect with the mode --umask leaves.
    if (owner) fs.chownSync(spec.path, owner.uid, owner.gid);
  } catch (error) {
    handle.close();
    throw bindError(spec, (error as NodeJS.ErrnoException).code ?? 'EIO');
  }
  return unixListener(spec, handle.fd, () => handle.close());
}

function unixListener(spec: Extract<BindSpec, { kind: 'unix' }>, fd: number, closeFd: () => void): Listener {
  let closed = false;
  return {
    spec,
    fd,
    address: describeBind(spec),
    close: (options) => {
      if (closed) return;
      closed = true;
      if (options?.keepFile) {
        // libuv unlinks a bound pipe's path when its handle closes: leave the descriptor to the
        // process exit instead, which removes nothing.
        return;
      }
      closeFd();
      fs.rmSync(spec.path, { force: true });
    },
  };
}

function adoptFd(spec: BindSpec, fd: number): Listener {
  let stat: fs.Stats;
  try {
    stat = fs.fstatSync(fd);
  } catch {
    throw new CorralError(`cannot use ${describeBind(spec)}: descriptor ${fd} is not open`, ExitCode.runtime);
  }
  if (!stat.isSocket()) {
    throw new CorralError(`cannot use ${describeBind(spec)}: descriptor ${fd} is not a socket`, ExitCode.runtime);
  }
  return { spec, fd, address: describeBind(spec), close: () => fs.closeSync(fd) };
}

/** Sockets handed over by systemd socket activation, when they are meant for this process. */
export function systemdListenFds(env: NodeJS.ProcessEnv, pid = process.pid): number[] {
  if (env.LISTEN_PID === undefined || Number(env.LISTEN_PID) !== pid) return [];
  const count = Number(env.LISTEN_FDS ?? 0);
  if (!Number.isInteger(count) || count <= 0) return [];
  return Array.from({ length: count }, (_unused, index) => 3 + index);
}

export interface SocketOwner {
  uid: number;
  gid: number;
}

/** A listen socket passed down by the previous master in a USR2 upgrade. */
export interface InheritedListener {
  fd: number;
  spec: BindSpec;
}

export interface BindOptions {
  /** The mode of unix socket files. */
  unixMode: number;
  /** Who owns unix socket files: the workers' user and group when -u/-g are given. */
  owner?: SocketOwner;
  env: NodeJS.ProcessEnv;
  /** Sockets from the previous master (USR2): used as they are, instead of --bind. */
  inherited?: readonly InheritedListener[];
}

/** Wraps the descriptors a previous master passed down; the specs say what each one is. */
export function adoptInherited(inherited: readonly InheritedListener[]): Listener[] {
  return inherited.map(({ fd, spec }) => {
    const listener = adoptFd(spec, fd);
    return spec.kind === 'unix' ? unixListener(spec, fd, () => fs.closeSync(fd)) : listener;
  });
}

/** Binds every address (or adopts systemd's sockets); on any failure closes what was bound and throws. */
export async function bindAll(specs: readonly BindSpec[], options: BindOptions): Promise<Listener[]> {
  if (options.inherited && options.inherited.length > 0) return adoptInherited(options.inherited);
  const activated = systemdListenFds(options.env);
  if (activated.length > 0) return activated.map((fd) => adoptFd({ kind: 'fd', fd }, fd));
  const create = bindOnlyAdapter();
  const listeners: Listener[] = [];
  try {
    for (const spec of specs) {
      if (spec.kind === 'tcp') listeners.push(await bindTcp(spec, create));
      else if (spec.kind === 'unix') listeners.push(await bindUnix(spec, create, options.unixMode, options.owner));
      else listeners.push(adoptFd(spec, spec.fd));
    }
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  return listeners;
}
