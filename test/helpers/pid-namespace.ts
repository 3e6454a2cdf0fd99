import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** unshare, found once on this PATH (a test may give corral an environment without one). */
function unsharePath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v unshare'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const UNSHARE = unsharePath();

/** The Corral wrapper that runs corral as PID 1 of a new PID namespace (with its own /proc). */
export const PID_NAMESPACE_WRAPPER: readonly string[] = [UNSHARE ?? 'unshare', '--pid', '--fork', '--mount-proc'];

/** Whether this machine lets us start a process in a new PID namespace (root, unshare present). */
export function canUnsharePid(): boolean {
  if (!UNSHARE) return false;
  try {
    execFileSync(UNSHARE, ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The host pid of the namespace's PID 1: the one child of `unshare --fork`. */
export function namespaceInit(unsharePid: number): number | undefined {
  try {
    const child = fs.readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(/\s+/)[0];
    return child ? Number(child) : undefined;
  } catch {
    return undefined;
  }
}

/** The PID namespace a process is in, as /proc names it (`pid:[4026532…]`). */
export function pidNamespaceOf(pid: number): string {
  return fs.readlinkSync(`/proc/${pid}/ns/pid`);
}

export interface NamespaceProcess {
  hostPid: number;
  /** Its pid inside the namespace. */
  pid: number;
  /** One letter: R, S, D, Z… */
  state: string;
  comm: string;
}

/** Every process in that namespace, zombies included, read from the host's /proc. */
export function namespaceProcesses(namespace: string): NamespaceProcess[] {
  const found: NamespaceProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/pid`) !== namespace) continue;
      const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
      const nsPids = field('NSpid').split(/\s+/);
      found.push({ hostPid: Number(entry), pid: Number(nsPids[nsPids.length - 1]), state: field('State').charAt(0), comm: field('Name') });
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** The host pid of the process with this pid inside the namespace. */
export function hostPidOf(namespace: string, pid: number): number | undefined {
  return namespaceProcesses(namespace).find((process) => process.pid === pid)?.hostPid;
}
