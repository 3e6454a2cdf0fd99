import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorralError } from '../../../src/exit-codes.js';
import { inspectPidPath, parsePid, pidFileVerdict, replacePidFile, writePidFile } from '../../../src/platform/pidfile.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-pidfile-'));
  dirs.push(dir);
  return dir;
}

/** A pid that is certainly not running: a child that has exited and been waited for. */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
}

describe('parsePid', () => {
  it('reads a pid with surrounding whitespace, and nothing else', () => {
    expect(parsePid('1234\n')).toBe(1234);
    expect(parsePid('  42  ')).toBe(42);
    expect(parsePid('')).toBeUndefined();
    expect(parsePid('0\n')).toBeUndefined();
    expect(parsePid('12 34')).toBeUndefined();
    expect(parsePid('-5')).toBeUndefined();
    expect(parsePid('abc')).toBeUndefined();
  });
});

describe('pidFileVerdict', () => {
  const alive = (pid: number) => pid === 500;
  it('writes over nothing, a stale pid, our own pid and garbage', () => {
    expect(pidFileVerdict('/run/c.pid', { kind: 'none' }, 100, alive)).toEqual({ write: true });
    expect(pidFileVerdict('/run/c.pid', { kind: 'file', content: '77\n' }, 100, alive)).toEqual({ write: true });
    expect(pidFileVerdict('/run/c.pid', { kind: 'file', content: '100\n' }, 100, () => true)).toEqual({ write: true });
    expect(pidFileVerdict('/run/c.pid', { kind: 'file', content: 'junk' }, 100, alive)).toEqual({ write: true });
  });

  it('refuses a live pid and anything that is not a regular file', () => {
    expect(pidFileVerdict('/run/c.pid', { kind: 'file', content: '500\n' }, 100, alive)).toEqual({
      write: false,
      reason: 'pid file /run/c.pid names a running process (500): stop that corral first, or pass another --pid',
    });
    expect(pidFileVerdict('/run/c.pid', { kind: 'other', what: 'a directory' }, 100, alive)).toEqual({
      write: false,
      reason: 'pid file /run/c.pid is a directory, not a regular file: remove it, or pass another --pid',
    });
  });

  it('replaces a symlink without reading through it', () => {
    // The target's content is never looked at: a link to a live pid's file is replaced all the same.
    expect(pidFileVerdict('/run/c.pid', { kind: 'symlink', target: '/etc/shadow' }, 100, () => true)).toEqual({ write: true, replacesSymlink: '/etc/shadow' });
  });
});

describe('writePidFile', () => {
  it('writes a 0644 regular file with the pid, whatever the umask, and leaves no temporary file', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'corral.pid');
    const previous = process.umask(0o077);
    try {
      writePidFile(file, { pid: 4242 });
    } finally {
      process.umask(previous);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('4242\n');
    expect(fs.lstatSync(file).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(dir)).toEqual(['corral.pid']);
  });

  it('replaces a symlink to a file by a regular file, leaving the target untouched, and says so', () => {
    const dir = tmpDir();
    const target = path.join(dir, 'precious');
    fs.writeFileSync(target, 'do not overwrite\n');
    const file = path.join(dir, 'corral.pid');
    fs.symlinkSync(target, file);
    const warnings: string[] = [];
    const remove = writePidFile(file, { pid: 4242, warn: (message) => warnings.push(message) });
    expect(fs.readFileSync(target, 'utf8')).toBe('do not overwrite\n');
    expect(fs.lstatSync(file).isFile()).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe('4242\n');
    expect(warnings).toEqual([`pid file ${file} was a symlink (to ${target}): replaced by a regular file; the link's target is left untouched`]);
    remove();
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readFileSync(target, 'utf8')).toBe('do not overwrite\n');
  });

  it('replaces a symlink to a file naming a live process: the link is not read through', () => {
    const dir = tmpDir();
    const target = path.join(dir, 'other.pid');
    fs.writeFileSync(target, `${process.pid}\n`);
    const file = path.join(dir, 'corral.pid');
    fs.symlinkSync(target, file);
    writePidFile(file, { pid: 4242 });
    expect(fs.readFileSync(file, 'utf8')).toBe('4242\n');
    expect(fs.readFileSync(target, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('does not create the target of a dangling symlink', () => {
    const dir = tmpDir();
    const target = path.join(dir, 'created-through-the-link');
    const file = path.join(dir, 'corral.pid');
    fs.symlinkSync(target, file);
    writePidFile(file, { pid: 4242 })();
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a pid file naming a live process, and writes over a stale one', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'corral.pid');
    fs.writeFileSync(file, `${process.pid}\n`);
    expect(() => writePidFile(file, { pid: 4242 })).toThrow(`names a running process (${process.pid})`);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
    fs.writeFileSync(file, `${deadPid()}\n`);
    writePidFile(file, { pid: 4242 });
    expect(fs.readFileSync(file, 'utf8')).toBe('4242\n');
  });

  it('refuses a directory and a named pipe without blocking on it', () => {
    const dir = tmpDir();
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    expect(() => writePidFile(sub, { pid: 4242 })).toThrow(`pid file ${sub} is a directory, not a regular file`);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(() => writePidFile(fifo, { pid: 4242 })).toThrow(`pid file ${fifo} is a named pipe, not a regular file`);
  });

  it('fails with one line and no temporary file when the directory is missing', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'missing', 'corral.pid');
    let error: unknown;
    try {
      replacePidFile(file, 4242);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CorralError);
    expect((error as Error).message).toBe(`cannot write the pid file ${file}: ENOENT: no such file or directory`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('the pid file remover', () => {
  it('removes the file only while it is a regular file holding our pid', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'corral.pid');
    const remove = writePidFile(file, { pid: 4242 });
    // Another master took the path over: its file stays.
    fs.writeFileSync(file, '999\n');
    remove();
    expect(fs.readFileSync(file, 'utf8')).toBe('999\n');
    // A symlink to a file that holds our pid is not ours either: neither it nor its target goes.
    const target = path.join(dir, 'elsewhere');
    fs.writeFileSync(target, '4242\n');
    fs.rmSync(file);
    fs.symlinkSync(target, file);
    remove();
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('4242\n');
  });
});

describe('inspectPidPath', () => {
  it('tells a missing path, a symlink, a file and something else apart', () => {
    const dir = tmpDir();
    expect(inspectPidPath(path.join(dir, 'none'))).toEqual({ kind: 'none' });
    fs.writeFileSync(path.join(dir, 'file'), '12\n');
    expect(inspectPidPath(path.join(dir, 'file'))).toEqual({ kind: 'file', content: '12\n' });
    fs.symlinkSync(path.join(dir, 'file'), path.join(dir, 'link'));
    expect(inspectPidPath(path.join(dir, 'link'))).toEqual({ kind: 'symlink', target: path.join(dir, 'file') });
    expect(inspectPidPath(dir)).toEqual({ kind: 'other', what: 'a directory' });
  });
});
