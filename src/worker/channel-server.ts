import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { CHANNEL_STREAMS } from './protocol.js';

/** One of a forked worker's connections (protocol.ts CHANNEL_STREAMS). */
export type ChannelStream = (typeof CHANNEL_STREAMS)[number];

/** Who waits for a token's connections. */
export type ChannelClaim = (stream: ChannelStream, socket: net.Socket) => void;

/** The channel socket's directory: `corral-workers-<master pid>-XXXXXX` in the temporary directory. */
const DIRECTORY_PREFIX = 'corral-workers-';
const SOCKET_NAME = 'workers.sock';

/** Whether a unix socket has no listener: a connect is refused (ENOENT, EACCES and the rest: not known, so kept). */
function refused(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    const done = (answer: boolean) => {
      probe.destroy();
      resolve(answer);
    };
    probe.setTimeout(1_000, () => done(false));
    probe.once('connect', () => done(false));
    probe.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED'));
  });
}

/**
 * Removes the channel directories of masters that are gone (SIGKILL, a crash past its handler): those
 * holding only a socket nobody listens on any more. Decided by a connect, not by the pid in the name:
 * a master in another PID namespace sharing this directory (a container, corral as PID 1) has pids
 * that mean nothing here.
 */
export async function removeStaleDirectories(tmp: string): Promise<void> {
  let entries: string[];
  try {
    entries = fs.readdirSync(tmp).filter((entry) => entry.startsWith(DIRECTORY_PREFIX));
  } catch {
    return;
  }
  await Promise.all(
    entries.map(async (entry) => {
      const directory = path.join(tmp, entry);
      try {
        if (!fs.readdirSync(directory).every((name) => name === SOCKET_NAME)) return;
        if (await refused(path.join(directory, SOCKET_NAME))) fs.rmSync(directory, { recursive: true, force: true });
      } catch {
        // Another user's, or gone meanwhile.
      }
    }),
  );
}

/** A hello line is short: a token and a stream name. */
const HELLO_LIMIT = 512;
/** A connection that has not said who it is by then is closed. */
const HELLO_TIMEOUT_MS = 10_000;

/**
 * The master's private unix socket that forked workers connect back to: a worker's parent is its fork
 * server, not the master, so its channels cannot be pipes the master made at spawn. Each connection
 * begins with a hello line `{"token","stream"}`; the token is the one the master put in the fork
 * request, so only the worker it forked for that request can take its place. The socket sits in a
 * directory of its own (mode 0700, owned by the workers' user when -u is given).
 */
export class ChannelServer {
  private readonly claims = new Map<string, ChannelClaim>();
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    private readonly directory: string,
    readonly path: string,
  ) {}

  static async open(owner?: { uid: number; gid: number }, tmp = os.tmpdir()): Promise<ChannelServer> {
    // What SIGKILLed masters left: removed meanwhile (never blocking the start; never this master's own).
    const sweep = removeStaleDirectories(tmp);
    // The master's pid in the name tells whose it is.
    const directory = fs.mkdtempSync(path.join(tmp, `${DIRECTORY_PREFIX}${process.pid}-`));
    const socketPath = path.join(directory, SOCKET_NAME);
    if (owner) fs.chownSync(directory, owner.uid, owner.gid);
    const server = net.createServer();
    const channels = new ChannelServer(server, directory, socketPath);
    server.on('connection', (socket) => channels.greet(socket));
    // Accept errors (EMFILE) leave the connection in the backlog; the worker's boot timeout covers it.
    server.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // Connecting takes write permission on the socket file: the workers' user's alone (the directory
      // already keeps everyone else out).
      fs.chmodSync(socketPath, 0o600);
      if (owner) fs.chownSync(socketPath, owner.uid, owner.gid);
      await sweep;
    } catch (error) {
      fs.rmSync(directory, { recursive: true, force: true });
      throw error;
    }
    return channels;
  }

  /** Routes the connections that present `token` to `claim` until the returned function is called. */
  expect(token: string, claim: ChannelClaim): () => void {
    this.claims.set(token, claim);
    return () => this.claims.delete(token);
  }

  /** Reads the hello line, then hands the socket (with whatever followed the line put back) to its claim. */
  private greet(socket: net.Socket): void {
    let received = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf(10);
        if (end === -1) {
          if (received.length > HELLO_LIMIT) socket.destroy();
          continue;
        }
        socket.off('readable', onReadable);
        socket.setTimeout(0);
        const rest = received.subarray(end + 1);
        if (rest.length > 0) socket.unshift(rest);
        this.route(socket, received.subarray(0, end).toString('utf8'));
        return;
      }
    };
    socket.on('readable', onReadable);
  }

  private route(socket: net.Socket, line: string): void {
    let hello: { token?: unknown; stream?: unknown };
    try {
      hello = JSON.parse(line) as { token?: unknown; stream?: unknown };
    } catch {
      socket.destroy();
      return;
    }
    const claim = typeof hello.token === 'string' ? this.claims.get(hello.token) : undefined;
    const stream = CHANNEL_STREAMS.find((name) => name === hello.stream);
    if (!claim || !stream) {
      socket.destroy();
      return;
    }
    claim(stream, socket);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    fs.rmSync(this.directory, { recursive: true, force: true });
  }

  /** For a crash handler: synchronous, and safe to call more than once. */
  removeFiles(): void {
    fs.rmSync(this.directory, { recursive: true, force: true });
  }
}
