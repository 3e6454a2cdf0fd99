import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelServer } from '../../../src/worker/channel-server.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-channel-test-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(tmp: string): Promise<ChannelServer> {
  const server = await ChannelServer.open(undefined, tmp);
  cleanups.push(() => server.close());
  return server;
}

function connect(socketPath: string, first: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => {
      socket.write(first);
      resolve(socket);
    });
    socket.once('error', reject);
    cleanups.push(() => socket.destroy());
  });
}

describe('the channel socket forked workers connect back to', () => {
  it('lives in a directory of its own, 0700, the socket 0600; close() removes both', async () => {
    const tmp = tempDir();
    const server = await open(tmp);
    const directory = path.dirname(server.path);
    expect(path.basename(directory)).toMatch(new RegExp(`^corral-workers-${process.pid}-`));
    expect(fs.statSync(directory).mode & 0o777).toBe(0o700);
    expect(fs.statSync(server.path).mode & 0o777).toBe(0o600);
    server.close();
    expect(fs.existsSync(directory)).toBe(false);
  });

  it('hands a connection to the claim of its token, with what followed the hello line; closes unknown tokens and streams', async () => {
    const server = await open(tempDir());
    const received: { stream: string; text: string }[] = [];
    server.expect('t1', (stream, socket) => {
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => received.push({ stream, text }));
    });
    await connect(server.path, '{"token":"t1","stream":"control"}\n{"type":"ready"}\n');
    const stranger = await connect(server.path, '{"token":"nope","stream":"control"}\n');
    const wrongStream = await connect(server.path, '{"token":"t1","stream":"stdin"}\n');
    await new Promise<void>((resolve) => stranger.once('close', () => resolve()));
    await new Promise<void>((resolve) => wrongStream.once('close', () => resolve()));
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    expect(received).toEqual([{ stream: 'control', text: '{"type":"ready"}\n' }]);
  });

  it('removes the directories whose socket nobody listens on, and keeps a live master\'s, whatever pid its name has', async () => {
    const tmp = tempDir();
    // A socket file left by a master killed with SIGKILL: bound once, its listener gone. (A server's
    // close unlinks its path, so the file is moved aside meanwhile.)
    const stale = path.join(tmp, `corral-workers-${process.pid + 1}-abcdef`);
    fs.mkdirSync(stale);
    const left = net.createServer();
    await new Promise<void>((resolve) => left.listen(path.join(stale, 'workers.sock'), resolve));
    fs.renameSync(path.join(stale, 'workers.sock'), path.join(stale, 'aside'));
    await new Promise<void>((resolve) => left.close(() => resolve()));
    fs.renameSync(path.join(stale, 'aside'), path.join(stale, 'workers.sock'));
    // A live master in another PID namespace: its pid means nothing here (1 is alive in ours, 999999 not).
    const other = await ChannelServer.open(undefined, tmp);
    cleanups.push(() => other.close());
    const renamed = path.join(tmp, 'corral-workers-999999-abcdef');
    fs.renameSync(path.dirname(other.path), renamed);
    await open(tmp);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(renamed)).toBe(true);
  });
});
