import fs from 'node:fs';
import { CorralError, ExitCode } from './exit-codes.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes the pid file, refusing when it names a live process; returns its remover. */
export function writePidFile(path: string, pid = process.pid): () => void {
  const existing = fs.readFileSync(path, { encoding: 'utf8', flag: 'a+' }).trim();
  const other = Number(existing);
  if (existing !== '' && Number.isInteger(other) && other > 0 && other !== pid && isAlive(other)) {
    throw new CorralError(
      `pid file ${path} names a running process (${other}): stop that corral first, or pass another --pid`,
      ExitCode.runtime,
    );
  }
  fs.writeFileSync(path, `${pid}\n`);
  return () => {
    try {
      if (fs.readFileSync(path, 'utf8').trim() === String(pid)) fs.unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
}
