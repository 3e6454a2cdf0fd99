import fs from 'node:fs';
import net from 'node:net';

/** What is at a path where corral wants to create a unix socket. */
export type UnixSocketPathState = 'free' | 'stale' | 'live' | 'not-a-socket';

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Looks at the path, and removes a stale socket file (one nothing answers on, left by a process
 * that died). A live socket or another kind of file is left for the caller to report.
 */
export async function clearStaleUnixSocket(path: string): Promise<UnixSocketPathState> {
  const stat = fs.lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return 'free';
  if (!stat.isSocket()) return 'not-a-socket';
  if (await answers(path)) return 'live';
  fs.unlinkSync(path);
  return 'stale';
}
