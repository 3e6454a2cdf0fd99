import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './options.js';

/** pino-pretty, loaded only for a terminal: JSON output (containers, services) never pays for it. */
function loadPinoPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}

const PINO_LEVEL: Record<LogLevel, pino.Level> = {
  critical: 'fatal',
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
  trace: 'trace',
};

/**
 * How every access record from the worker entry begins (its AccessLog writes these fields first),
 * so the master can send it to the access log without parsing the line.
 */
export const ACCESS_RECORD_PREFIX = '{"level":30,"name":"corral.access"';

export interface LogOutput {
  logger: Logger;
  /** Writes a record that is already a pino-compatible JSON line (a worker's), unparsed. */
  writeRecord(line: string): void;
  /** Reopens the log files by name (after logrotate renamed them); a no-op for stdout/stderr. */
  reopen(): void;
}

/** Where records go: undefined = the default, '-' = the standard stream, else a file path. */
export interface LogFiles {
  /** gunicorn's --error-logfile: every record but the access records; default stdout, '-' stderr. */
  errorLogFile?: string | undefined;
  /** gunicorn's --access-logfile: the access records; default the main log, '-' stdout. */
  accessLogFile?: string | undefined;
}

export function usePretty(format: LogFormat, isTerminal: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && isTerminal);
}

type Target = { fd: 1 | 2 } | { path: string };

interface Sink {
  write(line: string): void;
  reopen(): void;
}

function isTerminal(target: Target): boolean {
  if (!('fd' in target)) return false;
  return (target.fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) === true;
}

/**
 * A synchronous writer to a standard stream or an appended file. Writes are synchronous on
 * purpose: an asynchronous destination can keep process.exit() waiting forever once the reader of
 * stdout is gone.
 */
function openSink(target: Target, format: LogFormat): Sink & { stream: pino.DestinationStream } {
  const file = 'path' in target ? pino.destination({ dest: target.path, sync: true, append: true, mkdir: true }) : undefined;
  const fd = 'fd' in target ? target.fd : undefined;
  const output: pino.DestinationStream = usePretty(format, isTerminal(target))
    ? loadPinoPretty()({ sync: true, destination: file ?? fd, colorize: isTerminal(target), ignore: 'hostname', singleLine: true })
    : (file ?? pino.destination({ dest: fd, sync: true }));
  // Lines written in one turn of the event loop (all the lines of a worker's pipe read, say) go
  // out in one write: under load, a write per access record is most of the master's CPU.
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const data = pending.join('');
    pending = [];
    output.write(data);
  };
  // The writes are synchronous, so what is pending still goes out when corral exits.
  process.on('exit', flush);
  const write = (line: string) => {
    pending.push(line.endsWith('\n') ? line : `${line}\n`);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    // The master's own records share the queue, so records keep their order.
    stream: { write },
    write,
    reopen: () => {
      flush();
      file?.reopen();
    },
  };
}

function targetOf(value: string | undefined, standard: 1 | 2, fallback: Target): Target {
  if (value === undefined) return fallback;
  return value === '-' ? { fd: standard } : { path: value };
}

function sameTarget(a: Target, b: Target): boolean {
  return 'fd' in a ? 'fd' in b && a.fd === b.fd : 'path' in b && a.path === b.path;
}

/** The master's log, and the routing of worker records to it and to the access log. */
export function createLogOutput(format: LogFormat, level: LogLevel, files: LogFiles = {}): LogOutput {
  const mainTarget = targetOf(files.errorLogFile, 2, { fd: 1 });
  const accessTarget = targetOf(files.accessLogFile, 1, mainTarget);
  const main = openSink(mainTarget, format);
  const access = sameTarget(accessTarget, mainTarget) ? main : openSink(accessTarget, format);
  // Lines about a worker carry the worker's pid; the master's own lines carry the master's.
  const logger = pino(
    {
      level: PINO_LEVEL[level],
      base: null,
      mixin: (fields: object) => ('pid' in fields ? {} : { pid: process.pid }),
    },
    main.stream,
  );
  const writeRecord =
    access === main
      ? main.write
      : (line: string) => (line.startsWith(ACCESS_RECORD_PREFIX) ? access.write(line) : main.write(line));
  return {
    logger,
    writeRecord,
    reopen: () => {
      main.reopen();
      if (access !== main) access.reopen();
    },
  };
}
