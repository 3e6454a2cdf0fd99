import { getSystemErrorMap } from 'node:util';
import type { Writer } from './log-writers.js';

/** What a sink may hold, queued and being written, before it drops new records. */
export const LOG_QUEUE_LIMIT = 1024 * 1024;
/** How long a failed sink waits before it tries to write again. */
const RETRY_MS = 1000;
/**
 * How long records gather before a write. Under load the records of a few milliseconds share one
 * write: a write per turn of the event loop (per read of a worker's pipe) cost the master more CPU
 * than all else, most of all for a file, whose writes are handed to libuv's thread pool.
 */
const GATHER_MS = 10;

/** "ENOSPC: no space left on device", whether the error came from fs ("…, write") or a stream ("write EPIPE"). */
function describeError(error: Error): string {
  const { errno } = error as NodeJS.ErrnoException;
  const known = typeof errno === 'number' ? getSystemErrorMap().get(errno) : undefined;
  return known ? `${known[0]}: ${known[1]}` : error.message;
}

export interface SinkIdentity {
  /** The `sink` label of corral_log_records_dropped_total: stdout, stderr, access-logfile, error-logfile. */
  readonly name: string;
  /** How messages name it: "stdout", "the access log file /var/log/app/access.log". */
  readonly description: string;
}

/** How a sink tells that it starts dropping records (once), and that it writes again. */
export interface SinkReporter {
  /** One line for stderr; `text` begins with the sink's description. */
  warn(sink: LogSink, text: string): void;
  /** `why` says what was wrong: "could not be written (ENOSPC: …)", "was not read fast enough". */
  recovered(sink: LogSink, dropped: number, why: string): void;
}

export interface LogSinkOptions extends SinkIdentity {
  writer: Writer;
  /** The log file's path, for a sink that can be reopened by name (USR1, or a retry once its stream broke). */
  path?: string | undefined;
  reopen?: ((file: string, opened: (error: Error | null, writer?: Writer) => void) => void) | undefined;
  /** Turns a record line into what is written (the pretty formatter on a terminal); the line has no newline. */
  format?: ((line: string) => string) | undefined;
  reporter: SinkReporter;
  limit?: number;
}

/**
 * One destination of log records (stdout, stderr, a log file) behind a queue bounded in bytes
 * (string length: exact for ASCII records, which they nearly all are). Writing never blocks the
 * event loop and an error never escapes: when the writer fails or does not keep up, new records are
 * dropped and counted, the reporter says so once, and again when the sink writes again.
 */
export class LogSink implements SinkIdentity {
  readonly name: string;
  readonly description: string;
  /** Records dropped since corral started (the metric). */
  dropped = 0;
  private writer: Writer;
  /** A writer replaced by a reopen while its write was in flight: closed once that write ends. */
  private retired: Writer | undefined;
  private queue: string[] = [];
  /** Bytes queued, and bytes of the write in flight: together they stay within the limit. */
  private bytes = 0;
  private flying = 0;
  private inFlight = false;
  private scheduled = false;
  private gatherTimer: NodeJS.Timeout | undefined;
  private reopening = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private state: 'ok' | 'blocked' | 'failed' = 'ok';
  private failure: Error | undefined;
  private droppedSinceReport = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly limit: number;

  constructor(private readonly options: LogSinkOptions) {
    this.name = options.name;
    this.description = options.description;
    this.writer = options.writer;
    this.limit = options.limit ?? LOG_QUEUE_LIMIT;
    process.on('exit', () => this.writeRemaining());
  }

  /** Queues one record (a line, with or without its newline); drops it when the queue is full or the sink failed. */
  readonly write = (line: string): void => {
    // A failed sink drops what comes until its next try, which writes what arrived since: a disk
    // that has room again is not filled up at once with a backlog of old records.
    if (this.retryTimer !== undefined) {
      this.count(1);
      return;
    }
    const ended = line.endsWith('\n');
    const { format } = this.options;
    const text = format ? format(ended ? line.slice(0, -1) : line) : ended ? line : `${line}\n`;
    if (this.bytes + this.flying + text.length > this.limit) {
      this.drop(1);
      return;
    }
    this.queue.push(text);
    this.bytes += text.length;
    if (!this.scheduled && !this.inFlight) this.schedule();
  };

  private schedule(): void {
    this.scheduled = true;
    this.gatherTimer = setTimeout(this.flush, GATHER_MS);
  }

  /** Opens the log file again by name (logrotate renamed it); what is queued goes to the new file. */
  reopen(): void {
    if (this.options.path === undefined || this.options.reopen === undefined || this.reopening) return;
    this.reopening = true;
    this.options.reopen(this.options.path, (error, writer) => {
      this.reopening = false;
      if (writer) {
        if (this.inFlight) this.retired = this.writer;
        else this.writer.close();
        this.writer = writer;
      } else if (!this.writer.broken) {
        this.options.reporter.warn(this, `${this.description} cannot be reopened (${error ? describeError(error) : 'no writer'}); writing on to the file opened before`);
      } else {
        this.failed(error ?? new Error('cannot be reopened'), 0);
        return;
      }
      this.flush();
    });
  }

  /**
   * Resolves once everything queued is written, or a write has failed (for a failed sink, after one
   * more try now). The caller bounds the wait: a stdout nobody reads never drains.
   */
  idle(): Promise<void> {
    if (this.retryTimer || this.gatherTimer) {
      clearTimeout(this.retryTimer);
      clearTimeout(this.gatherTimer);
      this.retryTimer = undefined;
      this.flush();
    }
    if (!this.inFlight && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    if (this.inFlight || this.reopening || this.retryTimer || this.queue.length === 0) return;
    if (this.writer.broken && this.options.path !== undefined) {
      this.reopen();
      return;
    }
    const records = this.queue.length;
    const data = this.queue.length === 1 ? this.queue[0]! : this.queue.join('');
    this.queue = [];
    this.flying = this.bytes;
    this.bytes = 0;
    this.inFlight = true;
    this.writer.write(data, (error) => this.written(records, error));
  };

  private written(records: number, error: Error | undefined): void {
    this.inFlight = false;
    this.flying = 0;
    this.retired?.close();
    this.retired = undefined;
    if (error) {
      this.failed(error, records);
    } else if (this.state === 'failed' || (this.state === 'blocked' && this.bytes <= this.limit / 2)) {
      // Writing again, and (when it was only slow) with room to spare: say what was lost.
      const why = this.state === 'failed' ? `could not be written (${this.failure ? describeError(this.failure) : 'an error'})` : 'was not read fast enough';
      const dropped = this.droppedSinceReport;
      this.state = 'ok';
      this.failure = undefined;
      this.droppedSinceReport = 0;
      this.options.reporter.recovered(this, dropped, why);
    }
    if (this.queue.length > 0 && !this.scheduled && this.retryTimer === undefined) this.schedule();
    if (this.idleWaiters.length > 0 && ((!this.inFlight && this.queue.length === 0) || this.state === 'failed')) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private failed(error: Error, records: number): void {
    const first = this.state !== 'failed';
    this.state = 'failed';
    // What came while the write failed goes too: the next try writes only what arrives after it.
    this.count(records + this.queue.length);
    this.queue = [];
    this.bytes = 0;
    if (first) {
      this.failure = error;
      this.report(`${this.description} cannot be written (${describeError(error)}); log records are dropped until it can be written again`);
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, RETRY_MS);
    // A retry keeps nothing alive: at exit, idle() tries at once.
    this.retryTimer.unref();
  }

  /** Drops records because the queue is full. */
  private drop(records: number): void {
    this.count(records);
    if (this.state !== 'ok') return;
    this.state = 'blocked';
    const reader = this.writer.kind === 'stream' ? 'is not being read' : 'is not keeping up';
    this.report(`${this.description} ${reader}: ${this.limit} bytes of log records wait; newer records are dropped until it drains`);
  }

  private count(records: number): void {
    this.dropped += records;
    this.droppedSinceReport += records;
  }

  private report(text: string): void {
    this.options.reporter.warn(this, `${text} (counted in corral_log_records_dropped_total{sink="${this.name}"})`);
  }

  /** At exit (any exit, a crash's too): one write of what is queued that cannot wait. */
  private writeRemaining(): void {
    if (this.inFlight || this.queue.length === 0) return;
    this.writer.writeNow(this.queue.join(''));
    this.queue = [];
  }
}
