import pino, { type Logger } from 'pino';
import tty from 'node:tty';
import { LogSink, type SinkReporter } from './log-sink.js';
import { openPathWriter, openPathWriterSync, standardWriter } from './log-writers.js';
import { createPrettyFormatter } from './pretty.js';
import type { LogFormat, LogLevel } from '../config/resolve.js';

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
  /** Records dropped so far by each sink (a full queue, a failing write): corral_log_records_dropped_total. */
  dropped(): { sink: string; records: number }[];
  /** Waits until what is queued is written, or `timeoutMs` (a stdout nobody reads never drains). */
  flush(timeoutMs: number): Promise<void>;
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

function isTerminal(target: Target): boolean {
  return 'fd' in target && tty.isatty(target.fd);
}

/** A target's sink, as the metric and the messages name it. */
function identify(target: Target, role: 'access' | 'error'): { name: string; description: string } {
  if ('fd' in target) return target.fd === 1 ? { name: 'stdout', description: 'stdout' } : { name: 'stderr', description: 'stderr' };
  return { name: `${role}-logfile`, description: `the ${role} log file ${target.path}` };
}

/**
 * Says on stderr when a sink starts dropping records, and, when it writes again, puts a record of
 * what was lost in the sink itself (so the gap shows where it is) and a note on stderr.
 */
function createReporter(stderr: () => LogSink | undefined): SinkReporter {
  const say = (sink: LogSink, line: string) => {
    const channel = stderr();
    // Into a failing stderr, a warning about it would only be dropped too.
    if (channel && channel !== sink) channel.write(line);
  };
  return {
    warn: (sink, text) => say(sink, `corral: warning: ${text}`),
    recovered: (sink, dropped, why) => {
      const msg = `${dropped} log records were dropped: ${sink.description} ${why}`;
      sink.write(JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, name: 'corral.log', sink: sink.name, dropped, msg }));
      say(sink, `corral: note: ${sink.description} is written again; ${dropped} log records were dropped`);
    },
  };
}

function openSink(target: Target, role: 'access' | 'error', format: LogFormat, reporter: SinkReporter): LogSink {
  const terminal = isTerminal(target);
  const pretty = usePretty(format, terminal) ? createPrettyFormatter({ colorize: terminal }) : undefined;
  const path = 'path' in target ? target.path : undefined;
  return new LogSink({
    ...identify(target, role),
    writer: path === undefined ? standardWriter((target as { fd: 1 | 2 }).fd) : openPathWriterSync(path),
    path,
    reopen: openPathWriter,
    format: pretty,
    reporter,
  });
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
  let stderr: LogSink | undefined;
  const reporter = createReporter(() => stderr);
  const main = openSink(mainTarget, 'error', format, reporter);
  const access = sameTarget(accessTarget, mainTarget) ? main : openSink(accessTarget, 'access', format, reporter);
  // Where the warnings about the sinks go: the log's own sink when the log is on stderr, else one
  // for them alone (plain lines, so never pretty-printed).
  const STDERR: Target = { fd: 2 };
  stderr = sameTarget(mainTarget, STDERR) ? main : sameTarget(accessTarget, STDERR) ? access : openSink(STDERR, 'error', 'json', reporter);
  const sinks = [...new Set([main, access, stderr])];
  // Lines about a worker carry the worker's pid; the master's own lines carry the master's.
  const logger = pino(
    {
      level: PINO_LEVEL[level],
      base: null,
      mixin: (fields: object) => ('pid' in fields ? {} : { pid: process.pid }),
    },
    // The master's own records share the queue with the workers', so records keep their order.
    { write: main.write },
  );
  const writeRecord =
    access === main ? main.write : (line: string) => (line.startsWith(ACCESS_RECORD_PREFIX) ? access.write(line) : main.write(line));
  return {
    logger,
    writeRecord,
    reopen: () => {
      for (const sink of sinks) sink.reopen();
    },
    dropped: () => sinks.map((sink) => ({ sink: sink.name, records: sink.dropped })),
    flush: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([Promise.all(sinks.map((sink) => sink.idle())), bound]);
      clearTimeout(timer);
    },
  };
}
