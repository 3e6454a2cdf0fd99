/**
 * The control channel's vocabulary and the worker's exit codes: the contract between the master and
 * the Python worker runtime. src/python/corral_runtime/protocol.py says the same on the Python side;
 * test/unit/worker/protocol.test.ts dumps that module as JSON and fails when the two disagree.
 *
 * The channel is the worker's fd 3, one JSON object a line both ways, each with `type` and the fields
 * named here (sorted). A message the master does not act on is not sent: the worker used to report
 * `loaded` and `draining`, which nothing read.
 */

/** Worker → master: each message's fields. */
export const WORKER_MESSAGES = {
  /** Why the boot failed, sent before an exit with boot_failure or app_load_failure. */
  boot_error: ['exception', 'file', 'kind', 'line', 'message', 'traceback'],
  /** From a task on the worker's event loop, so a blocked loop stops it: the master's hang detection. */
  heartbeat: ['connections', 'requests'],
  /** Reload mode: the worker's sys.modules (name → file), once after ready, for the next standby. */
  modules: ['modules'],
  /** The lifespan start-up is done and the worker listens: the boot is over. */
  ready: [],
  /** max-requests reached: the master starts a replacement, then drains this worker. */
  retiring: ['reason', 'requests'],
  /**
   * Reload mode: a warm standby has preloaded its modules; paths are the import path's mtimes, imported
   * the modules it imported itself (a forked one: those its fork server had not preloaded).
   */
  standby: ['imported', 'paths'],
} as const satisfies Record<string, readonly string[]>;

/** Master → worker: each message's fields. Only a warm standby reads the channel. */
export const MASTER_MESSAGES = {
  /** The standby becomes the worker of this slot and generation, and boots. */
  go: ['generation', 'slot'],
  /** The modules a standby imports ahead of the app (a list that long could pass the limit of one environment string). */
  preload: ['modules'],
} as const satisfies Record<string, readonly string[]>;

/** How a worker ends. The master exits with 3 or 4 too when a worker fails so at first start. */
export const EXIT_CODES = {
  /** A drained worker, or one whose master is gone. */
  ok: 0,
  /** Start-up failed: a server hook, the lifespan start-up, uvicorn's own start. */
  boot_failure: 3,
  /** The app (or a -k worker class) could not be imported. */
  app_load_failure: 4,
} as const;

export type WorkerMessageType = keyof typeof WORKER_MESSAGES;
export type MasterMessageType = keyof typeof MASTER_MESSAGES;

/** What `boot_error` says of the failure; `exception`, `file` and `line` only when known. */
export interface BootErrorFields {
  /** `spawn` is the master's own: the process could not be started at all (EMFILE, EAGAIN, ENOMEM, …). */
  kind: 'app-load' | 'startup' | 'spawn';
  message: string;
  traceback: string;
  /** Where the error is in the app's code (a SyntaxError's location, else the deepest frame). */
  file?: string;
  line?: number;
  /** The exception alone, e.g. `SyntaxError: invalid syntax`. */
  exception?: string;
}

/** Each worker message's fields with their types; checked against WORKER_MESSAGES below. */
interface WorkerMessageFields {
  boot_error: BootErrorFields;
  heartbeat: { connections: number; requests: number };
  modules: { modules: Record<string, string> };
  ready: Record<never, never>;
  retiring: { reason: string; requests: number };
  standby: { imported: string[]; paths: Record<string, string> };
}

/** Each master message's fields with their types; checked against MASTER_MESSAGES below. */
interface MasterMessageFields {
  go: { generation: number; slot: number };
  preload: { modules: readonly string[] };
}

type Messages<F> = { [T in keyof F]: { type: T } & F[T] }[keyof F];

/** A message from a worker, as the master reads it. */
export type WorkerMessage = Messages<WorkerMessageFields>;
/** A message to a worker, as the master writes it. */
export type MasterMessage = Messages<MasterMessageFields>;

/** Compiles only when the typed messages have exactly the names and fields of the tables. */
type SameFields<F, Table extends Record<string, readonly string[]>> = [{ [T in keyof F]-?: keyof F[T] }] extends [{ [T in keyof Table]: Table[T][number] }]
  ? [{ [T in keyof Table]: Table[T][number] }] extends [{ [T in keyof F]-?: keyof F[T] }]
    ? true
    : false
  : false;
export type ProtocolTypesMatchTables = [SameFields<WorkerMessageFields, typeof WORKER_MESSAGES>, SameFields<MasterMessageFields, typeof MASTER_MESSAGES>] extends [true, true] ? true : never;
const typesMatchTables: ProtocolTypesMatchTables = true;
void typesMatchTables;

/**
 * A line of a channel as a message of `table`, or undefined when it is none (unreadable, or a type not
 * in the table). Both channels (a worker's, a fork server's) read their lines so: one JSON object a line.
 */
function parseLine<M>(line: string, table: Record<string, readonly string[]>): M | undefined {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const type = (message as { type?: unknown }).type;
  return typeof type === 'string' && Object.hasOwn(table, type) ? (message as M) : undefined;
}

/** One message as the line written to a channel. */
function encodeLine(message: { type: string }): string {
  return `${JSON.stringify(message)}\n`;
}

/** A line read from the channel as a worker message, or undefined when it is none. */
export function parseWorkerMessage(line: string): WorkerMessage | undefined {
  return parseLine<WorkerMessage>(line, WORKER_MESSAGES);
}

/** One master message as the line written to the channel. */
export function encodeMasterMessage(message: MasterMessage): string {
  return encodeLine(message);
}

/**
 * The fork server's pipe (fd 3 of `corral_worker.py --fork-server`; src/worker/fork-server.ts), one
 * JSON object a line both ways, as protocol.py's FORK_SERVER_MESSAGES and FORK_SERVER_REQUESTS.
 */
export const FORK_SERVER_MESSAGES = {
  /** --preload: the app could not be imported (sent before the fork server exits with app_load_failure). */
  boot_error: ['exception', 'file', 'kind', 'line', 'message', 'traceback'],
  /** A child was reaped: its exit code, or the signal that ended it. */
  exited: ['code', 'pid', 'signal'],
  /** os.fork() failed (EAGAIN, ENOMEM): a failed spawn. */
  fork_failed: ['error', 'token'],
  /** The worker of this token is the child with this pid. */
  forked: ['pid', 'token'],
  /** The preload is done; threads other than the main one make forking unsafe. */
  ready: ['modules', 'preloaded', 'seconds', 'sockets', 'threads'],
  /** A refresh is done: what the new generation's code added to the preload. */
  refreshed: ['modules', 'preloaded', 'seconds', 'sockets', 'threads'],
  /** A refresh found preloaded files changed on disk: the new generation needs a fresh fork server. */
  stale: ['changed', 'files'],
  /** A fork request found threads running: the worker is spawned instead. */
  unsafe: ['threads', 'token'],
} as const satisfies Record<string, readonly string[]>;

/** Master → fork server. */
export const FORK_SERVER_REQUESTS = {
  /** Fork one worker with these settings; its channels connect back with the token. */
  fork: ['settings', 'token'],
  /** Serve a new code generation too: check the preloaded files, import what the new code adds. */
  refresh: ['settings'],
  /** Reload mode: the modules the app's workers imported, sent at the start and read before `ready`. */
  preload: ['modules'],
  /** A newer generation serves: exit once the last child is gone. */
  retire: [],
  /** Signal a child, unless it has been reaped already. */
  signal: ['pid', 'signal'],
} as const satisfies Record<string, readonly string[]>;

/** A forked worker's connections to the master's channel socket, in the order it opens them. */
export const CHANNEL_STREAMS = ['control', 'records', 'stdout', 'stderr'] as const;

interface ForkServerMessageFields {
  boot_error: BootErrorFields;
  exited: { code: number | null; pid: number; signal: NodeJS.Signals | null };
  fork_failed: { error: string; token: string };
  forked: { pid: number; token: string };
  ready: { modules: number; preloaded: number; seconds: number; sockets: number; threads: string[] };
  refreshed: { modules: number; preloaded: number; seconds: number; sockets: number; threads: string[] };
  stale: { changed: number; files: string[] };
  unsafe: { threads: string[]; token: string };
}

interface ForkServerRequestFields {
  fork: { settings: Record<string, unknown>; token: string };
  refresh: { settings: Record<string, unknown> };
  preload: { modules: readonly string[] };
  retire: Record<never, never>;
  signal: { pid: number; signal: NodeJS.Signals };
}

/** A message from a fork server, as the master reads it. */
export type ForkServerMessage = Messages<ForkServerMessageFields>;
/** A request to a fork server, as the master writes it. */
export type ForkServerRequest = Messages<ForkServerRequestFields>;

export type ForkServerTypesMatchTables = [
  SameFields<ForkServerMessageFields, typeof FORK_SERVER_MESSAGES>,
  SameFields<ForkServerRequestFields, typeof FORK_SERVER_REQUESTS>,
] extends [true, true]
  ? true
  : never;
const forkServerTypesMatchTables: ForkServerTypesMatchTables = true;
void forkServerTypesMatchTables;

/** A line of the fork server's pipe as a message, or undefined when it is none. */
export function parseForkServerMessage(line: string): ForkServerMessage | undefined {
  return parseLine<ForkServerMessage>(line, FORK_SERVER_MESSAGES);
}

/** One request to a fork server as the line written to its pipe. */
export function encodeForkServerRequest(request: ForkServerRequest): string {
  return encodeLine(request);
}
