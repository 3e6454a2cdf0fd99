import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CorralError, ExitCode } from '../exit-codes.js';

/**
 * The pid file, written as gunicorn does (a temporary file renamed over the path) and never through a
 * symlink: a master running as root must not let a link planted at the pid path overwrite, or create,
 * the file it points to. rename() replaces a symlink itself, never its target.
 */

/** What is at the pid path, looked at without following a symlink. */
export type PidPathEntry =
  | { kind: 'none' }
  | { kind: 'symlink'; target: string }
  | { kind: 'file'; content: string }
  | { kind: 'other'; what: string };

export type PidFileVerdict = { write: true; replacesSymlink?: string } | { write: false; reason: string };

const MODE = 0o644;
/** A pid file is a few digits; more than this is not one of ours and is not read further. */
const READ_LIMIT = 64;

function describeNonFile(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a named pipe';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** lstat, then a read with O_NOFOLLOW (a link swapped in after the lstat fails with ELOOP instead of being followed). */
export function inspectPidPath(file: string): PidPathEntry {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw error;
  }
  if (stat.isSymbolicLink()) return { kind: 'symlink', target: fs.readlinkSync(file) };
  if (!stat.isFile()) return { kind: 'other', what: describeNonFile(stat) };
  let fd: number;
  try {
    // O_NONBLOCK: a fifo swapped in after the lstat must not block the master on open().
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'none' };
    if (code === 'ELOOP') return { kind: 'symlink', target: fs.readlinkSync(file) };
    throw error;
  }
  try {
    const opened = fs.fstatSync(fd);
    if (!opened.isFile()) return { kind: 'other', what: describeNonFile(opened) };
    const buffer = Buffer.alloc(READ_LIMIT);
    const length = fs.readSync(fd, buffer, 0, READ_LIMIT, 0);
    return { kind: 'file', content: buffer.subarray(0, length).toString('utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

/** The pid a pid file holds, or undefined when it holds something else. */
export function parsePid(content: string): number | undefined {
  const match = /^\s*(\d{1,10})\s*$/.exec(content);
  if (!match) return undefined;
  const pid = Number(match[1]);
  return pid > 0 ? pid : undefined;
}

/** Pure: whether the pid file may be written over what is there now. */
export function pidFileVerdict(file: string, entry: PidPathEntry, pid: number, isAlive: (pid: number) => boolean): PidFileVerdict {
  switch (entry.kind) {
    case 'none':
      return { write: true };
    case 'symlink':
      // Never read through: the link is replaced by a regular file, its target left as it is.
      return { write: true, replacesSymlink: entry.target };
    case 'other':
      return { write: false, reason: `pid file ${file} is ${entry.what}, not a regular file: remove it, or pass another --pid` };
    case 'file': {
      const other = parsePid(entry.content);
      if (other !== undefined && other !== pid && isAlive(other)) {
        return { write: false, reason: `pid file ${file} names a running process (${other}): stop that corral first, or pass another --pid` };
      }
      return { write: true };
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A system error without Node's ", open '<path>'" tail, which would name our temporary file. */
function errorText(error: unknown): string {
  const { message, syscall } = error as NodeJS.ErrnoException;
  return syscall ? message.split(`, ${syscall}`)[0]! : message;
}

/** The remover of a pid file: it goes only while it is still a regular file holding our pid. */
function remover(file: string, pid: number): () => void {
  return () => {
    try {
      const entry = inspectPidPath(file);
      if (entry.kind === 'file' && parsePid(entry.content) === pid) fs.unlinkSync(file);
    } catch {
      // Gone, or no longer ours to remove.
    }
  };
}

/**
 * Writes `pid` to `file` whatever is there (a regular file or a symlink): a new file beside it,
 * created exclusively and without following links, synced, then renamed over the path. Returns its remover.
 */
export function replacePidFile(file: string, pid = process.pid): () => void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = fs.constants;
    fd = fs.openSync(temporary, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY, MODE);
    // The umask may have narrowed the mode: readers of the pid file (kill $(cat …)) need 0644.
    fs.fchmodSync(fd, MODE);
    fs.writeSync(fd, `${pid}\n`);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temporary, file);
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temporary, { force: true });
    throw new CorralError(`cannot write the pid file ${file}: ${errorText(error)}`, ExitCode.runtime);
  }
  return remover(file, pid);
}

export interface PidFileOptions {
  pid?: number;
  /** Told when a symlink at the path was replaced. */
  warn?: (message: string) => void;
}

/** Writes the pid file, refusing when it names a live process or is not a file; returns its remover. */
export function writePidFile(file: string, options: PidFileOptions = {}): () => void {
  const pid = options.pid ?? process.pid;
  let entry: PidPathEntry;
  try {
    entry = inspectPidPath(file);
  } catch (error) {
    throw new CorralError(`cannot read the pid file ${file}: ${errorText(error)}`, ExitCode.runtime);
  }
  const verdict = pidFileVerdict(file, entry, pid, isAlive);
  if (!verdict.write) throw new CorralError(verdict.reason, ExitCode.runtime);
  const remove = replacePidFile(file, pid);
  if (verdict.replacesSymlink !== undefined) {
    options.warn?.(`pid file ${file} was a symlink (to ${verdict.replacesSymlink}): replaced by a regular file; the link's target is left untouched`);
  }
  return remove;
}
