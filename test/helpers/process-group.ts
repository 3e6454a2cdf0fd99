import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { groupMembers, isAlive } from './corral.js';

/** How often the checks below look. */
const LOOK_EVERY_MS = 25;

/** `PID NAME` of each process (its /proc comm), so that a failure says what was left. */
function named(pids: readonly number[]): string[] {
  return pids.map((pid) => {
    try {
      return `${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`;
    } catch {
      return `${pid} (gone)`;
    }
  });
}

/**
 * Expects every process of the group `pgid` (a master started detached, its workers, what they
 * started) to be gone within `timeoutMs`, a deadline for the machine's speed; a failure lists them.
 */
export async function expectGroupGone(pgid: number, timeoutMs = 10_000): Promise<void> {
  await expect
    .poll(async () => named(await groupMembers(pgid)), { timeout: timeoutMs, interval: LOOK_EVERY_MS, message: `processes left in group ${pgid}` })
    .toEqual([]);
}

/** Expects each of `pids` to have exited within `timeoutMs`, a deadline for the machine's speed; a failure lists those alive. */
export async function expectExited(pids: readonly number[], timeoutMs: number, what: string): Promise<void> {
  await expect.poll(() => named(pids.filter(isAlive)), { timeout: timeoutMs, interval: LOOK_EVERY_MS, message: what }).toEqual([]);
}

/**
 * The pids of `pids` alive at `deadline` (a performance.now() time) or later: [] as soon as all have
 * exited, else those that a look begun at or after the deadline still found alive. Only a process seen
 * alive after the deadline counts, so a look that a busy machine delays never blames one that exited
 * in time; what the delay costs is that the bound checked is looser by it, never tighter.
 */
export async function aliveAfter(pids: readonly number[], deadline: number): Promise<number[]> {
  for (;;) {
    const lookedAt = performance.now();
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || lookedAt >= deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, Math.min(LOOK_EVERY_MS, deadline - lookedAt)));
  }
}
