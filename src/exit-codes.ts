import { EXIT_CODES } from './worker/protocol.js';

/** The master's exit codes, documented in the README; 3 and 4 are a worker's (src/worker/protocol.ts), passed on. */
export const ExitCode = {
  /** A clean stop. */
  ok: 0,
  /** A runtime error: a bind failure, no Python, no uvicorn. */
  runtime: 1,
  /** A usage or configuration error. */
  usage: 2,
  /** A worker could not start (its lifespan start-up failed, or a boot timed out). */
  bootFailure: EXIT_CODES.boot_failure,
  /** The app could not be imported. */
  appLoadFailure: EXIT_CODES.app_load_failure,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends corral with a given exit code and one line for the user (after `detail`, a traceback, when there is one). */
export class CorralError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'CorralError';
  }
}

export class UsageError extends CorralError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = 'UsageError';
  }
}
