import { isIP } from 'node:net';
import { UsageError } from '../exit-codes.js';

export type BindSpec =
  | { kind: 'tcp'; host: string; port: number; family: 4 | 6 }
  | { kind: 'unix'; path: string }
  | { kind: 'fd'; fd: number };

export const DEFAULT_PORT = 8000;

/**
 * Parses one `--bind` value: `HOST:PORT`, `[V6]:PORT`, `:PORT`, `HOST`, `unix:PATH`, `fd://N`.
 * Host names other than `localhost` are resolved later by the socket layer; here they stay names.
 */
export function parseBind(value: string): BindSpec {
  const text = value.trim();
  const fail = (why: string): never => {
    throw new UsageError(
      `--bind ${JSON.stringify(value)}: ${why}; expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N`,
    );
  };
  if (text === '') fail('the address is empty');
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (path === '') fail('the unix socket path is empty');
    return { kind: 'unix', path };
  }
  if (text.startsWith('fd://')) {
    const fdText = text.slice('fd://'.length);
    if (!/^\d+$/.test(fdText)) fail('the file descriptor is not a number');
    return { kind: 'fd', fd: Number(fdText) };
  }
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) fail('the IPv6 address has no closing bracket');
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) fail('unexpected text after the IPv6 address');
    portText = rest === '' ? undefined : rest.slice(1);
    if (isIP(host) !== 6) fail(`${JSON.stringify(host)} is not an IPv6 address`);
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else {
      host = text;
    }
    if (host.includes(':')) fail('an IPv6 address with a port needs brackets, as [::1]:8000');
  }
  const port = portText === undefined ? DEFAULT_PORT : parsePort(portText, fail);
  if (host === '' || host === '*') host = '0.0.0.0';
  if (host === 'localhost') host = '127.0.0.1';
  if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    fail(`${JSON.stringify(host)} is not an IP address or host name`);
  }
  return { kind: 'tcp', host, port, family: isIP(host) === 6 ? 6 : 4 };
}

function parsePort(text: string, fail: (why: string) => never): number {
  if (!/^\d+$/.test(text)) fail(`the port ${JSON.stringify(text)} is not a number`);
  const port = Number(text);
  if (port > 65535) fail(`the port ${port} is out of range 0-65535`);
  return port;
}

/** How a bind is shown in logs and errors. */
export function describeBind(spec: BindSpec): string {
  switch (spec.kind) {
    case 'tcp':
      return spec.family === 6 ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
    case 'unix':
      return `unix:${spec.path}`;
    case 'fd':
      return `fd://${spec.fd}`;
  }
}

/** The default bind: gunicorn's and uvicorn's, or every interface on `$PORT` as Heroku-style hosts expect. */
export function defaultBind(env: NodeJS.ProcessEnv): string {
  const port = env.PORT?.trim();
  return port ? `0.0.0.0:${port}` : `127.0.0.1:${DEFAULT_PORT}`;
}
