import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBind } from '../../../src/config/bind.js';
import { bindAll, bindOnlyAdapter, systemdListenFds, type Listener } from '../../../src/platform/sockets.js';

// corral binds without listening through Node's internal net._createServerHandle (what Node's own
// cluster module uses). If a Node upgrade changes it, these tests fail loudly.
let opened: Listener[] = [];
afterEach(() => {
  for (const listener of opened) listener.close();
  opened = [];
});

describe('the bind-only adapter', () => {
  it('exists in this Node.js', () => {
    expect(typeof bindOnlyAdapter()).toBe('function');
  });

  it('binds without listening: a connection is refused until someone listens', async () => {
    opened = await bindAll([parseBind('127.0.0.1:0')], { unixMode: 0o660, env: {} });
    const [listener] = opened;
    expect(listener!.fd).toBeGreaterThan(2);
    const port = Number(listener!.address.split(':').pop());
    expect(port).toBeGreaterThan(0);
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('reports a port in use at bind time, not later', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await expect(bindAll([parseBind(`127.0.0.1:${port}`)], { unixMode: 0o660, env: {} })).rejects.toThrowError(
      `cannot bind 127.0.0.1:${port}: EADDRINUSE`,
    );
    server.close();
  });

  it('reports an address that is not on this host', async () => {
    await expect(bindAll([parseBind('192.0.2.1:8000')], { unixMode: 0o660, env: {} })).rejects.toThrowError('EADDRNOTAVAIL');
  });
});

describe('systemdListenFds', () => {
  it('uses LISTEN_FDS only when LISTEN_PID is this process', () => {
    expect(systemdListenFds({ LISTEN_PID: '42', LISTEN_FDS: '2' }, 42)).toEqual([3, 4]);
    expect(systemdListenFds({ LISTEN_PID: '41', LISTEN_FDS: '2' }, 42)).toEqual([]);
    expect(systemdListenFds({ LISTEN_FDS: '2' }, 42)).toEqual([]);
  });
});
