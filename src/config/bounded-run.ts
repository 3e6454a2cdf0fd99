import { spawn } from 'node:child_process';

export interface BoundedRunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Past this the command is killed. */
  timeoutMs: number;
  /** Past this many bytes on stdout or on stderr the command is killed. */
  maxOutputBytes: number;
  /** Aborting kills the command (the master is stopping). */
  signal?: AbortSignal;
}

export type BoundedRunResult =
  | { outcome: 'exited'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
  | { outcome: 'timeout' }
  | { outcome: 'too-much-output'; stream: 'stdout' | 'stderr' }
  | { outcome: 'aborted' }
  | { outcome: 'failed'; error: Error };

/**
 * Runs a command to its end without blocking the event loop (spawnSync would stop signals,
 * heartbeats and the control socket for as long as the command runs). Its output is held up to a
 * bound and its time is bounded; past either it is killed, and the result says which bound it passed.
 */
export function runBounded(command: string, args: readonly string[], options: BoundedRunOptions): Promise<BoundedRunResult> {
  return new Promise((resolve) => {
    if (options.signal?.aborted) {
      resolve({ outcome: 'aborted' });
      return;
    }
    const child = spawn(command, args, { cwd: options.cwd, ...(options.env ? { env: options.env } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const sizes = { stdout: 0, stderr: 0 };
    let verdict: BoundedRunResult | undefined;
    // The first bound passed decides the result; the kill's own exit is not the command's.
    const stop = (result: BoundedRunResult): void => {
      if (verdict) return;
      verdict = result;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop({ outcome: 'timeout' }), options.timeoutMs);
    const onAbort = () => stop({ outcome: 'aborted' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    for (const stream of ['stdout', 'stderr'] as const) {
      // Absent when the spawn itself failed (EMFILE): the error event reports it.
      child[stream]?.on('data', (chunk: Buffer) => {
        sizes[stream] += chunk.length;
        if (sizes[stream] > options.maxOutputBytes) stop({ outcome: 'too-much-output', stream });
        else output[stream].push(chunk);
      });
    }
    let settled = false;
    const settle = (result: BoundedRunResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    child.once('error', (error) => {
      // The spawn itself failed (ENOENT, EACCES, EMFILE): the command never ran.
      if (child.pid === undefined) settle(verdict ?? { outcome: 'failed', error });
    });
    child.once('close', (code, signal) => {
      settle(
        verdict ?? {
          outcome: 'exited',
          code,
          signal,
          stdout: Buffer.concat(output.stdout).toString('utf8'),
          stderr: Buffer.concat(output.stderr).toString('utf8'),
        },
      );
    });
  });
}
