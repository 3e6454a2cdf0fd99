import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { MAX_REQUEST_BYTES, parseControlRequest, type ControlReply, type ControlRequest } from './protocol.js';
import { CorralError, ExitCode } from '../exit-codes.js';
import { capConnections } from '../platform/connection-cap.js';
import { onCrash } from '../platform/crash.js';
import type { StatusReport } from './status.js';

/** What the control socket can ask of the master: the same effects as its signals. */
export interface ControlTarget {
  status(): StatusReport;
  reload(): void;
  scale(workers: number): void;
  stop(mode: 'graceful' | 'quick'): void;
}

/** Bounds on what clients may hold: `corral status` needs one connection for a moment. */
export const CONTROL_LIMITS = {
  maxConnections: 32,
  /** A connection with no request this long is closed; one waiting for a stop to finish is not. */
  idleTimeoutMs: 10_000,
  /** How long the probe of a live socket at the path waits for a control protocol reply. */
  probeTimeoutMs: 2_000,
} as const;

/** The control socket's path cannot be used; `reason` says why, for the log or the error line. */
export class ControlSocketUnavailable extends CorralError {
  constructor(
    readonly path: string,
    readonly reason: string,
    /** Another corral answers there: two masters would share one control socket. */
    readonly heldByCorral = false,
  ) {
    const advice = heldByCorral ? 'stop it first, or pass another --control-socket' : 'remove it, or pass another --control-socket';
    super(`--control-socket ${path}: ${reason}; ${advice}`, ExitCode.runtime);
  }
}

/** What listens on a unix socket path: nothing (a stale file), a corral (its pid), or another program. */
async function probe(path: string): Promise<{ kind: 'nothing' } | { kind: 'corral'; pid: number } | { kind: 'other'; detail: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    let buffered = '';
    const done = (result: Awaited<ReturnType<typeof probe>>) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ kind: 'other', detail: 'it does not answer corral\'s control protocol' }), CONTROL_LIMITS.probeTimeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify({ command: 'status' })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0 && buffered.length < MAX_REQUEST_BYTES) return;
      let reply: { ok?: unknown; status?: { pid?: unknown } } | undefined;
      try {
        reply = JSON.parse(buffered.slice(0, newline)) as typeof reply;
      } catch {
        reply = undefined;
      }
      const pid = reply?.ok === true ? reply.status?.pid : undefined;
      done(typeof pid === 'number' ? { kind: 'corral', pid } : { kind: 'other', detail: 'it does not answer corral\'s control protocol' });
    });
    socket.once('close', () => done({ kind: 'other', detail: 'it closed the connection without a reply to corral\'s control protocol' }));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code === 'ECONNREFUSED' ? { kind: 'nothing' } : { kind: 'other', detail: `a connection to it fails with ${error.code ?? error.message}` }),
    );
  });
}

/**
 * Makes the path free for the control socket, or throws ControlSocketUnavailable. Only a socket file
 * of this user that nothing listens on (left by a corral that died) is removed. A file of another
 * user is neither removed nor connected to: in a shared directory it may be anyone's, put there to
 * be trusted.
 */
async function claimPath(path: string): Promise<void> {
  const stat = fs.lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isSocket()) throw new ControlSocketUnavailable(path, 'the path exists and is not a socket');
  const uid = process.geteuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new ControlSocketUnavailable(path, `a socket of another user (uid ${stat.uid}) is there, which corral neither uses nor removes`);
  }
  const listener = await probe(path);
  if (listener.kind === 'corral') throw new ControlSocketUnavailable(path, `another corral is listening there (pid ${listener.pid})`, true);
  if (listener.kind === 'other') throw new ControlSocketUnavailable(path, `another program is listening there (${listener.detail})`);
  fs.unlinkSync(path);
}

/**
 * The control socket (`corral status|reload|scale|stop`): a unix socket only its owner may use
 * (mode 0600), speaking line-delimited JSON. A stop request's connection stays open until the
 * master has stopped, so `corral stop` can wait for the end.
 */
export class ControlServer {
  private readonly connections = new Set<net.Socket>();
  /** Even a master that crashes leaves no socket file behind. */
  private readonly forgetCrash = onCrash(() => this.removeFile());

  private constructor(
    private readonly server: net.Server,
    readonly path: string,
    private readonly target: ControlTarget,
    private readonly log: Logger,
  ) {
    server.on('connection', (socket) => this.serve(socket));
  }

  static async listen(path: string, target: ControlTarget, log: Logger): Promise<ControlServer> {
    await claimPath(path);
    const server = net.createServer();
    // The socket file is created 0600 from the start: no window in which others could connect.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException) =>
          reject(
            error.code === 'EADDRINUSE'
              ? new ControlSocketUnavailable(path, 'another program created a socket there first')
              : new CorralError(`--control-socket ${path}: cannot listen: ${error.code ?? error.message}`, ExitCode.runtime),
          );
        server.once('error', onError);
        server.listen(path, () => {
          server.off('error', onError);
          resolve();
        });
      });
    } finally {
      process.umask(previousUmask);
    }
    fs.chmodSync(path, 0o600);
    capConnections(server, { what: 'control socket', maxConnections: CONTROL_LIMITS.maxConnections, idleSeconds: CONTROL_LIMITS.idleTimeoutMs / 1000 }, log);
    return new ControlServer(server, path, target, log);
  }

  private serve(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => undefined);
    // A client that holds the connection without a request gives its descriptor back.
    socket.setTimeout(CONTROL_LIMITS.idleTimeoutMs, () => socket.destroy());
    socket.setEncoding('utf8');
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') this.reply(socket, this.handle(line, socket));
      }
      if (Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) {
        this.reply(socket, { ok: false, error: `request longer than ${MAX_REQUEST_BYTES} bytes` });
        socket.end();
      }
    });
  }

  private reply(socket: net.Socket, reply: ControlReply): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
  }

  private handle(line: string, socket: net.Socket): ControlReply {
    const parsed = parseControlRequest(line);
    if ('error' in parsed) {
      this.log.warn({ error: parsed.error }, 'control socket: request refused');
      return { ok: false, error: parsed.error };
    }
    return this.run(parsed.request, socket);
  }

  private run(request: ControlRequest, socket: net.Socket): ControlReply {
    if (request.command !== 'status') this.log.info({ request }, `control socket: ${request.command}`);
    if ((request.command === 'reload' || request.command === 'scale') && this.target.status().stopping) {
      return { ok: false, error: `corral is stopping: ${request.command} refused` };
    }
    switch (request.command) {
      case 'status':
        return { ok: true, status: this.target.status() };
      case 'reload':
        this.target.reload();
        return { ok: true, message: 'rolling restart requested' };
      case 'scale':
        this.target.scale(request.workers);
        return { ok: true, message: `scaling to ${request.workers} workers`, workers: request.workers };
      case 'stop':
        // The reply goes out first; this connection closes when the master has stopped, however long that takes.
        socket.setTimeout(0);
        setImmediate(() => this.target.stop(request.mode));
        return { ok: true, message: request.mode === 'graceful' ? 'stopping gracefully' : 'stopping' };
    }
  }

  /** Stops listening, closes every connection (telling waiting `corral stop`s it is over), removes the file. */
  close(): void {
    this.server.close();
    for (const socket of this.connections) socket.end();
    this.forgetCrash();
    this.removeFile();
  }

  private removeFile(): void {
    try {
      fs.unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}
