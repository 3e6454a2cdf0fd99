import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { MAX_REQUEST_BYTES, parseControlRequest, type ControlReply, type ControlRequest } from './control-protocol.js';
import { CorralError, ExitCode } from './exit-codes.js';
import { clearStaleUnixSocket } from './unix-socket-path.js';
import type { StatusReport } from './status.js';

/** What the control socket can ask of the master: the same effects as its signals. */
export interface ControlTarget {
  status(): StatusReport;
  reload(): void;
  scale(workers: number): void;
  stop(mode: 'graceful' | 'quick'): void;
}

/** Removes a socket file left by a corral that died, refusing to touch a live one or a non-socket. */
async function removeStale(path: string): Promise<void> {
  const state = await clearStaleUnixSocket(path);
  if (state === 'not-a-socket') {
    throw new CorralError(`--control-socket ${path}: the path exists and is not a socket; remove it or choose another path`, ExitCode.runtime);
  }
  if (state === 'live') {
    throw new CorralError(`--control-socket ${path}: another corral is listening there; stop it first, or pass another --control-socket`, ExitCode.runtime);
  }
}

/**
 * The control socket (`corral status|reload|scale|stop`): a unix socket only its owner may use
 * (mode 0600), speaking line-delimited JSON. A stop request's connection stays open until the
 * master has stopped, so `corral stop` can wait for the end.
 */
export class ControlServer {
  private readonly connections = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly path: string,
    private readonly target: ControlTarget,
    private readonly log: Logger,
  ) {
    server.on('connection', (socket) => this.serve(socket));
  }

  static async listen(path: string, target: ControlTarget, log: Logger): Promise<ControlServer> {
    await removeStale(path);
    const server = net.createServer();
    // The socket file is created 0600 from the start: no window in which others could connect.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(new CorralError(`--control-socket ${path}: cannot listen: ${error.code ?? error.message}`, ExitCode.runtime)),
        );
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(previousUmask);
    }
    fs.chmodSync(path, 0o600);
    return new ControlServer(server, path, target, log);
  }

  private serve(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') this.reply(socket, this.handle(line));
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

  private handle(line: string): ControlReply {
    const parsed = parseControlRequest(line);
    if ('error' in parsed) {
      this.log.warn({ error: parsed.error }, 'control socket: request refused');
      return { ok: false, error: parsed.error };
    }
    return this.run(parsed.request);
  }

  private run(request: ControlRequest): ControlReply {
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
        // The reply goes out first; this connection closes when the master has stopped.
        setImmediate(() => this.target.stop(request.mode));
        return { ok: true, message: request.mode === 'graceful' ? 'stopping gracefully' : 'stopping' };
    }
  }

  /** Stops listening, closes every connection (telling waiting `corral stop`s it is over), removes the file. */
  close(): void {
    this.server.close();
    for (const socket of this.connections) socket.end();
    try {
      fs.unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}
