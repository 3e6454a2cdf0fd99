import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { ChannelStream } from './channel-server.js';
import { CONTROL_LINE_LIMIT, LineSplitter, type LineSplitterOptions, PARTIAL_LINE_DELAY_MS, RECORD_LINE_LIMIT, TEXT_LINE_LIMIT } from './line-splitter.js';
import { CHANNEL_STREAMS } from './protocol.js';
import type { WorkerExit, WorkerStream } from './worker.js';

/**
 * The four channels every Python process of the runtime has to the master: its control channel, its
 * record channel (the runtime's log records: a channel of their own, so nothing the app prints can
 * pass for one), its stdout and its stderr. A spawned worker and a fork server have them as pipes
 * (spawnWithChannels); a forked worker as connections to the channel socket (src/worker/channel-server.ts).
 * However they come, they are read the same way: readChannel.
 */

export interface ChannelHandlers {
  /** One line of output, at most its stream's line limit long; `droppedBytes` is what it lost past the limit. */
  onOutput(stream: WorkerStream, line: string, droppedBytes: number): void;
  /** One whole line of the control channel. */
  onControl(line: string): void;
}

/** Each channel's line limit, and whether a line may go out before its newline (only the app's text). */
function lineOptions(stream: ChannelStream, handlers: ChannelHandlers): LineSplitterOptions {
  if (stream === 'control') {
    // A truncated message cannot be parsed: it is dropped as any other unreadable line.
    return {
      limit: CONTROL_LINE_LIMIT,
      onLine: (line, dropped) => {
        if (dropped === 0) handlers.onControl(line);
      },
    };
  }
  const onLine = (line: string, dropped: number) => handlers.onOutput(stream, line, dropped);
  if (stream === 'records') return { limit: RECORD_LINE_LIMIT, onLine };
  // Text may stop mid-line (a prompt, a progress bar): what has arrived is logged after a short delay.
  return { limit: TEXT_LINE_LIMIT, partialDelayMs: PARTIAL_LINE_DELAY_MS, onLine };
}

/**
 * Reads one channel line by line, with bounded memory whatever the process writes. Its end is not the
 * process's: a subprocess of the app may hold stdout long after; the process's exit decides.
 */
export function readChannel(stream: ChannelStream, readable: Readable, handlers: ChannelHandlers): void {
  const lines = new LineSplitter(lineOptions(stream, handlers));
  // A process that dies with unread data resets the channel (ECONNRESET): its exit reports it.
  readable.on('error', () => undefined);
  readable.setEncoding('utf8');
  readable.on('data', (text: string) => lines.push(text));
  readable.on('end', () => lines.end());
}

/** The channels' fd numbers in a spawned process; the listen sockets follow them. */
const CONTROL_FD = 3;
const RECORD_FD = 4;

/** How to start a runtime process: what a spawned worker's and a fork server's options share. */
export interface ChannelSpawnOptions {
  python: string;
  /** The runtime's entry script (corral_worker.py). */
  entry: string;
  listenerFds: readonly number[];
  env: NodeJS.ProcessEnv;
  /** The runtime's settings (CORRAL_WORKER_CONFIG); where its channels and sockets are is added here. */
  settings: Record<string, unknown>;
  /** -u/-g: the user and group it runs as (the master stays as it is, to hold privileged ports). */
  uid?: number;
  gid?: number;
}

export interface ChannelSpawnHandlers extends ChannelHandlers {
  /** It could not be started: at once (Node threw), or on a later turn of the loop. */
  onSpawnError(error: unknown): void;
  onExit(exit: WorkerExit): void;
}

/**
 * Spawns a runtime process (`what` names it in errors) with its channels as pipes and the listen sockets
 * after them, and reads the channels. Undefined when spawn threw (nothing was started); `onSpawnError`
 * has been told.
 */
export function spawnWithChannels(
  what: string,
  options: ChannelSpawnOptions & { args?: readonly string[] },
  handlers: ChannelSpawnHandlers,
): ChildProcess | undefined {
  const settings = {
    ...options.settings,
    control_fd: CONTROL_FD,
    record_fd: RECORD_FD,
    listen_fds: options.listenerFds.map((_fd, index) => RECORD_FD + 1 + index),
    master_pid: process.pid,
  };
  let child: ChildProcess;
  try {
    child = spawn(options.python, ['-u', options.entry, ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', ...options.listenerFds],
      env: { ...options.env, PYTHONUNBUFFERED: '1', CORRAL_WORKER_CONFIG: JSON.stringify(settings) },
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    });
  } catch (error) {
    // Node throws for some errnos (ENOMEM, EPERM, …) instead of emitting 'error'.
    handlers.onSpawnError(error);
    return undefined;
  }
  // Once the process has started, 'error' only reports a failed kill: its exit event follows.
  child.on('error', (error) => {
    if (child.pid === undefined) handlers.onSpawnError(error);
  });
  child.once('exit', (code, signal) => handlers.onExit({ code, signal }));
  const control = child.stdio?.[CONTROL_FD] as Readable | null | undefined;
  const records = child.stdio?.[RECORD_FD] as Readable | null | undefined;
  if (!child.stdout || !child.stderr || !control || !records) {
    // At EMFILE or ENFILE Node sets up no pipes and reports the errno with 'error' on the next
    // tick: that message wins; this one is the fallback should no 'error' come.
    if (child.pid !== undefined) child.kill('SIGKILL');
    setImmediate(() => handlers.onSpawnError(new Error(`spawn ${options.python}: the pipes to the ${what} could not be set up`)));
    return child;
  }
  const streams: Record<ChannelStream, Readable> = { control, records, stdout: child.stdout, stderr: child.stderr };
  for (const stream of CHANNEL_STREAMS) readChannel(stream, streams[stream], handlers);
  return child;
}

/** The write end of a spawned process's control channel, while it has one. */
export function controlChannel(child: ChildProcess | undefined): Writable | undefined {
  return (child?.stdio?.[CONTROL_FD] as Writable | null | undefined) ?? undefined;
}
