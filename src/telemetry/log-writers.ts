import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tty from 'node:tty';

/**
 * Where a log sink's bytes go, written without ever blocking the event loop. The sink issues one
 * write at a time and waits for its `done` before the next.
 */
export interface Writer {
  /** 'stream' for a pipe, socket or terminal (it can stop reading); 'file' for a file or device. */
  readonly kind: 'file' | 'stream';
  /** Writes all of `data`, then calls `done`; on an error calls `done(error)` and stops. */
  write(data: string, done: (error?: Error) => void): void;
  /** For the exit: one write that cannot wait (to a file, or non-blocking), errors ignored. Only with no write in flight. */
  writeNow(data: string): void;
  /** The writer cannot write again (a stream of ours closed on an error): reopen its path to retry. */
  readonly broken: boolean;
  /** Lets go of what the writer owns (never stdout or stderr). */
  close(): void;
}

/**
 * A file (or a device that never makes a writer wait, such as /dev/null): fs.write on libuv's
 * thread pool. Never used for what can block for good (a pipe, a socket, a terminal): a thread
 * stuck in write() keeps process.exit() waiting for it.
 */
class FileWriter implements Writer {
  readonly kind = 'file';
  readonly broken = false;
  /** The last write failed part way through a line (a disk filling up): the next write ends that line first. */
  private midLine = false;

  constructor(
    private readonly fd: number,
    private readonly owned: boolean,
  ) {}

  write(data: string, done: (error?: Error) => void): void {
    const buffer = Buffer.from(this.midLine ? `\n${data}` : data);
    const from = (offset: number): void =>
      fs.write(this.fd, buffer, offset, buffer.length - offset, null, (error, written) => {
        const end = offset + (error ? 0 : written);
        if (!error && written > 0 && end < buffer.length) return from(end);
        if (end === buffer.length) {
          this.midLine = false;
          return done();
        }
        // Stopped part way: when anything went out, the file may now end inside a line.
        if (end > 0) this.midLine = buffer[end - 1] !== 0x0a;
        done(error ?? new Error('the write made no progress'));
      });
    from(0);
  }

  writeNow(data: string): void {
    try {
      fs.writeSync(this.fd, this.midLine ? `\n${data}` : data);
    } catch {
      // The exit goes on: nothing is left to report the error to.
    }
  }

  close(): void {
    if (this.owned) fs.close(this.fd, () => undefined);
  }
}

/**
 * A pipe, socket or terminal through libuv's stream: a non-blocking fd, the rest of a write kept
 * until the fd becomes writable again (epoll), never a thread or a retry loop waiting on it.
 */
class StreamWriter implements Writer {
  readonly kind = 'stream';

  constructor(
    private readonly stream: net.Socket,
    private readonly owned: boolean,
  ) {
    // Errors reach the write callback; without a listener the 'error' event would end the master.
    stream.on('error', () => undefined);
  }

  get broken(): boolean {
    return this.stream.destroyed;
  }

  write(data: string, done: (error?: Error) => void): void {
    if (this.stream.destroyed) {
      done(new Error('the stream is closed'));
      return;
    }
    this.stream.write(data, (error) => done(error ?? undefined));
  }

  writeNow(data: string): void {
    // The fd libuv writes to (a terminal's is a reopened, non-blocking one): a write to it returns
    // EAGAIN rather than wait for a reader.
    const fd = (this.stream as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0 || this.stream.writableLength > 0) return;
    try {
      fs.writeSync(fd, data);
    } catch {
      // EAGAIN or a gone reader: what is left is lost with the exit.
    }
  }

  close(): void {
    if (this.owned) this.stream.destroy();
  }
}

/**
 * Node makes a terminal's writes blocking (so output is not lost at exit); a terminal that stops
 * reading (Ctrl-S, a paused pager) would then stop the master. libuv reopens a terminal for its
 * stream, so making that fd non-blocking reaches no other process. When it could not reopen it
 * (the fd is the one shared with the shell), the writes stay blocking.
 */
function nonBlockingTerminal(stream: tty.WriteStream, fd: number): tty.WriteStream {
  const handle = (stream as unknown as { _handle?: { fd?: unknown; setBlocking?: (blocking: boolean) => unknown } })._handle;
  if (typeof handle?.fd === 'number' && handle.fd !== fd) handle.setBlocking?.(false);
  return stream;
}

function isStream(fd: number): boolean {
  try {
    const stat = fs.fstatSync(fd);
    return stat.isFIFO() || stat.isSocket() || (stat.isCharacterDevice() && tty.isatty(fd));
  } catch {
    // A closed fd: writes to it fail, and the sink counts what it drops.
    return false;
  }
}

/** A writer for stdout or stderr, by what the fd is. */
export function standardWriter(fd: 1 | 2): Writer {
  if (isStream(fd)) {
    // Node's own stream for the fd: non-blocking for a pipe or socket, and never closes the fd.
    const stream: unknown = fd === 1 ? process.stdout : process.stderr;
    if (stream instanceof tty.WriteStream) return new StreamWriter(nonBlockingTerminal(stream, fd), false);
    if (stream instanceof net.Socket) return new StreamWriter(stream, false);
  }
  return new FileWriter(fd, false);
}

/** O_NONBLOCK: opening a FIFO that has no reader fails at once (ENXIO) instead of waiting for one. */
const OPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK;

function ownedWriter(fd: number): Writer {
  if (!isStream(fd)) return new FileWriter(fd, true);
  if (tty.isatty(fd)) return new StreamWriter(nonBlockingTerminal(new tty.WriteStream(fd), fd), true);
  return new StreamWriter(new net.Socket({ fd, readable: false, writable: true }), true);
}

/** Opens a log file for appending (its directory made if missing), when corral starts. */
export function openPathWriterSync(file: string): Writer {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return ownedWriter(fs.openSync(file, OPEN_FLAGS, 0o666));
}

/** Opens a log file again by name (USR1 after logrotate, or a retry), without waiting on the loop. */
export function openPathWriter(file: string, opened: (error: Error | null, writer?: Writer) => void): void {
  fs.open(file, OPEN_FLAGS, 0o666, (error, fd) => {
    if (error) return opened(error);
    try {
      opened(null, ownedWriter(fd));
    } catch (failure) {
      fs.close(fd, () => undefined);
      opened(failure as Error);
    }
  });
}
