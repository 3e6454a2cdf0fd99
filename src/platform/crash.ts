import type { Logger } from 'pino';
import { ExitCode } from '../exit-codes.js';

/** What must not outlive the master even when it dies of a bug: its workers, pid file, socket files. */
const cleanups = new Set<() => void>();
let installed = false;

/** Registers a synchronous cleanup for a crash; returns its remover, for when the master undoes it itself. */
export function onCrash(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => void cleanups.delete(cleanup);
}

/**
 * An uncaught exception (or an unhandled rejection, which Node raises as one) ends the master: its
 * state can no longer be trusted, so it does not try to serve on. Before exiting 1 it logs the error
 * and runs every registered cleanup, so that no pid file names a dead process, no control socket
 * file stays behind and no worker serves without a master.
 */
export function installCrashHandler(log: Logger): void {
  if (installed) return;
  installed = true;
  let crashing = false;
  process.on('uncaughtException', (error, origin) => {
    // A second exception while cleaning up must not run the cleanups twice.
    if (crashing) return;
    crashing = true;
    try {
      log.fatal({ err: error, origin }, 'corral crashed: stopping the workers, removing the pid file and the control socket');
    } catch {
      // The log itself may be what fails: stderr is the last resort.
      try {
        process.stderr.write(`corral: crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      } catch {
        // Nowhere left to say it.
      }
    }
    for (const cleanup of [...cleanups].reverse()) {
      try {
        cleanup();
      } catch {
        // Each cleanup runs whatever the others do.
      }
    }
    process.exit(ExitCode.runtime);
  });
}
