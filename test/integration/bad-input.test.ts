import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Corral, freePort, groupMembers, killAllCorrals, startCorral, TEST_APPS, VENV_PYTHON } from '../helpers/corral.js';

afterEach(() => killAllCorrals());

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-bad-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Runs corral to its exit and checks that it left nothing running. */
async function exitOf(corral: Corral): Promise<number | null> {
  const code = await corral.waitForExit();
  expect(await groupMembers(corral.pid)).toEqual([]);
  return code;
}

/** The one error line: stderr for usage errors, the fatal log record for runtime errors. */
function errorLine(corral: Corral): string {
  const fatal = corral.find((record) => record.level === 60);
  if (fatal.length > 0) {
    expect(fatal).toHaveLength(1);
    return String(fatal[0]!.msg);
  }
  const lines = corral.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('bad input', () => {
  it('an unknown flag: exit 2, naming it', async () => {
    const corral = startCorral(['--workerz', '2', 'app:app']);
    expect(await exitOf(corral)).toBe(2);
    expect(errorLine(corral)).toBe('corral: error: command line: unknown option --workerz (did you mean --workers?); see corral --help');
  });

  it('a malformed address: exit 2, naming the option, the value and the forms allowed', async () => {
    const corral = startCorral(['-b', '127.0.0.1:99999', 'app:app']);
    expect(await exitOf(corral)).toBe(2);
    expect(errorLine(corral)).toContain('--bind "127.0.0.1:99999": the port 99999 is out of range');
  });

  it('a port in use: exit 1, naming the address and the fix', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const corral = startCorral(['-b', `127.0.0.1:${port}`, '--app-dir', TEST_APPS, 'app:app']);
      expect(await exitOf(corral)).toBe(1);
      expect(errorLine(corral)).toBe(`cannot bind 127.0.0.1:${port}: EADDRINUSE; stop the other server or pick another port with --bind`);
      expect(corral.find((record) => record.msg === 'worker booting')).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('an address not on this host: exit 1', async () => {
    const corral = startCorral(['-b', '192.0.2.1:8000', '--app-dir', TEST_APPS, 'app:app']);
    expect(await exitOf(corral)).toBe(1);
    expect(errorLine(corral)).toContain('cannot bind 192.0.2.1:8000: EADDRNOTAVAIL');
  });

  it('a unix socket in a directory that does not exist: exit 1', async () => {
    const corral = startCorral(['-b', `unix:${scratch}/missing/app.sock`, '--app-dir', TEST_APPS, 'app:app']);
    expect(await exitOf(corral)).toBe(1);
    expect(errorLine(corral)).toContain(`cannot bind unix:${scratch}/missing/app.sock: ENOENT`);
  });

  it('a unix socket path that another live server holds: exit 1', async () => {
    const socketPath = path.join(scratch, 'held.sock');
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(socketPath, resolve));
    try {
      const corral = startCorral(['-b', `unix:${socketPath}`, '--app-dir', TEST_APPS, 'app:app']);
      expect(await exitOf(corral)).toBe(1);
      expect(errorLine(corral)).toContain('another server is listening on it');
    } finally {
      holder.close();
    }
  });

  it('a missing Python: exit 1, naming the interpreter tried', async () => {
    const port = await freePort();
    const corral = new Corral(['--python', '/nonexistent/python3', '--log-format', 'json', '-b', `127.0.0.1:${port}`, 'app:app']);
    expect(await exitOf(corral)).toBe(1);
    expect(errorLine(corral)).toContain('Python "/nonexistent/python3" not found');
    expect(errorLine(corral)).toContain('--python');
  });

  it('a Python without uvicorn: exit 1, naming the interpreter and the install command', async () => {
    const bare = path.join(scratch, 'bare-venv');
    execFileSync(VENV_PYTHON, ['-m', 'venv', '--without-pip', bare]);
    const python = path.join(bare, 'bin', 'python');
    const port = await freePort();
    const corral = new Corral(['--python', python, '--log-format', 'json', '-b', `127.0.0.1:${port}`, 'app:app']);
    expect(await exitOf(corral)).toBe(1);
    expect(errorLine(corral)).toBe(`uvicorn is not installed for ${python}: run ${python} -m pip install 'uvicorn[standard]'`);
  });

  it('--version and --help exit 0', async () => {
    const version = startCorral(['--version']);
    expect(await exitOf(version)).toBe(0);
    expect(version.stdoutLines[0]).toMatch(/^corral \d+\.\d+\.\d+/);
    const help = startCorral(['--help']);
    expect(await exitOf(help)).toBe(0);
    expect(help.output).toContain('--graceful-timeout');
  });
});
