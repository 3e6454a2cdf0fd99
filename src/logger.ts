import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './options.js';

const PINO_LEVEL: Record<LogLevel, pino.Level> = {
  critical: 'fatal',
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
  trace: 'trace',
};

export interface LogOutput {
  logger: Logger;
  /** Writes a record that is already a pino-compatible JSON line (a worker's), unparsed. */
  writeRecord(line: string): void;
}

export function usePretty(format: LogFormat, isTerminal: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && isTerminal);
}

/**
 * The master's log. Writes are synchronous on purpose: an asynchronous destination can keep
 * process.exit() waiting forever once the reader of stdout is gone.
 */
export function createLogOutput(format: LogFormat, level: LogLevel): LogOutput {
  const pretty = usePretty(format, process.stdout.isTTY === true);
  const stream = pretty
    ? pinoPretty({ sync: true, destination: 1, colorize: process.stdout.isTTY === true, ignore: 'hostname', singleLine: true })
    : pino.destination({ dest: 1, sync: true });
  // Lines about a worker carry the worker's pid; the master's own lines carry the master's.
  const logger = pino(
    {
      level: PINO_LEVEL[level],
      base: null,
      mixin: (fields: object) => ('pid' in fields ? {} : { pid: process.pid }),
    },
    stream,
  );
  return { logger, writeRecord: (line) => void stream.write(line.endsWith('\n') ? line : `${line}\n`) };
}
