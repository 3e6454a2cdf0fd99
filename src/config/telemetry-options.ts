import { isIP } from 'node:net';
import { parseBind } from './bind.js';
import { UsageError } from '../exit-codes.js';

export interface TcpAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

/** Parses `--metrics-bind HOST:PORT` (or `[V6]:PORT`): the endpoints are plain HTTP on TCP. */
export function parseMetricsBind(value: string): TcpAddress {
  const allowed = 'expected HOST:PORT or [IPV6]:PORT, e.g. 0.0.0.0:9100';
  if (isIP(value.trim()) === 6) throw new UsageError(`--metrics-bind ${JSON.stringify(value)}: an IPv6 address needs brackets and a port; ${allowed}`);
  if (!/:\d+$/.test(value.trim())) throw new UsageError(`--metrics-bind ${JSON.stringify(value)}: no port; ${allowed}`);
  let spec;
  try {
    spec = parseBind(value);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    // parseBind names --bind and its own list of forms; say which option was wrong.
    const why = error.message.replace(/^--bind "[^"]*": /, '').replace(/; expected .*$/, '');
    throw new UsageError(`--metrics-bind ${JSON.stringify(value)}: ${why}; ${allowed}`);
  }
  if (spec.kind !== 'tcp') throw new UsageError(`--metrics-bind ${JSON.stringify(value)}: ${allowed}`);
  return { host: spec.host, port: spec.port, family: spec.family };
}

/** Linux's limit for a unix socket path (sun_path is 108 bytes with the terminating NUL). */
const MAX_UNIX_PATH_BYTES = 107;

/**
 * The control socket a corral with this pid file listens on when none is given: the pid file's
 * name with `.pid` replaced by `.control.sock` (or that suffix added), in the same directory, so
 * `corral status --pid FILE` finds it from the pid file alone.
 */
export function controlSocketForPidFile(pidFile: string): string {
  return `${pidFile.replace(/\.pid$/, '')}.control.sock`;
}

/** The control socket path for a server configuration, or undefined when there is none. */
export function resolveControlSocket(controlSocket: string | undefined, pidFile: string | undefined): string | undefined {
  const path = controlSocket ?? (pidFile === undefined ? undefined : controlSocketForPidFile(pidFile));
  if (path !== undefined && Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
    const option = controlSocket === undefined ? `--pid ${JSON.stringify(pidFile)} (the control socket ${path})` : `--control-socket ${JSON.stringify(path)}`;
    throw new UsageError(`${option}: the path is longer than ${MAX_UNIX_PATH_BYTES} bytes, the limit for a unix socket; pass a shorter --control-socket`);
  }
  return path;
}
