import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/control/status.js';
import { freePort, get, isAlive, killAllCorrals, startCorral, TEST_APPS, VENV_PYTHON, waitFor, type Corral } from '../helpers/corral.js';

const MiB = 1024 * 1024;
const SHARED_FILE_MIB = 200;
const LIMIT_MIB = 100;

const temporaryDirs: string[] = [];
const holders: ChildProcess[] = [];

afterEach(() => {
  killAllCorrals();
  for (const holder of holders.splice(0)) {
    try {
      process.kill(-holder.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A file of `mib` MiB of data (not a sparse hole) in a temporary directory removed after the test. */
function bigFile(mib: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-memory-'));
  temporaryDirs.push(dir);
  const file = path.join(dir, 'shared.bin');
  const chunk = Buffer.alloc(MiB, 0x5a);
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < mib; written += 1) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/**
 * A process that imports the app module, so it maps and touches the file as the workers do, and
 * holds it: every page is then shared from the first worker on, whatever order the workers boot in.
 */
async function holdMapped(file: string): Promise<void> {
  const script = `import sys; sys.path.insert(0, ${JSON.stringify(TEST_APPS)}); import shared_mmap; print("mapped", flush=True); sys.stdin.read()`;
  const holder = spawn(VENV_PYTHON, ['-c', script], { env: { ...process.env, CORRAL_TEST_SHARED_FILE: file }, stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  holders.push(holder);
  let output = '';
  holder.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await waitFor(() => output.includes('mapped'), 20_000, 'the holder to map the file');
}

/** `corral status` through the control socket, as `corral status --json` gets it. */
function status(socketPath: string): Promise<StatusReport> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let buffered = '';
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`${JSON.stringify({ command: 'status' })}\n`));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      socket.destroy();
      const reply = JSON.parse(buffered.slice(0, newline)) as { ok: boolean; status: StatusReport; error?: string };
      if (reply.ok) resolve(reply.status);
      else reject(new Error(reply.error));
    });
  });
}

const overLimit = (corral: Corral) => corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('worker over --max-memory'));

describe('--max-memory with shared pages', () => {
  it('does not recycle workers that share a big mapped file, and recycles one whose private memory passes the limit', async () => {
    const file = bigFile(SHARED_FILE_MIB);
    await holdMapped(file);
    const port = await freePort();
    const socketPath = path.join(path.dirname(file), 'control.sock');
    const corral = startCorral(
      [
        '-w', '2', '--max-memory', `${LIMIT_MIB}M`, '--memory-check-interval', '1', '-b', `127.0.0.1:${port}`,
        '--control-socket', socketPath, '--app-dir', TEST_APPS, 'shared_mmap:app',
      ],
      { env: { CORRAL_TEST_SHARED_FILE: file } },
    );
    const pids = await corral.waitForReadyWorkers(2);

    // Three sample rounds after the first one: --max-memory acts on two in a row over the limit.
    const sampledAt = (report: StatusReport) => report.workers.map((worker) => worker.sampledAt ?? 0);
    const first = Math.min(...sampledAt(await waitFor(async () => {
      const report = await status(socketPath);
      return report.workers.every((worker) => worker.sampledAt !== null) ? report : undefined;
    }, 20_000, 'the first resource samples')));
    const report = await waitFor(
      async () => {
        const recycled = overLimit(corral);
        if (recycled.length > 0) throw new Error(`a healthy worker was recycled for memory it shares: ${JSON.stringify(recycled[0])}`);
        const current = await status(socketPath);
        return Math.min(...sampledAt(current)) >= first + 3_000 ? current : undefined;
      },
      30_000,
      'three more sample rounds',
    );
    expect(report.workers.map((worker) => worker.pid).sort()).toEqual([...pids].sort());
    for (const worker of report.workers) {
      // The premise: RSS counts the shared file and is over the limit; unique memory is under it.
      expect(worker.rssBytes).toBeGreaterThan(SHARED_FILE_MIB * MiB);
      expect(worker.ussBytes).toBeLessThan(LIMIT_MIB * MiB);
      expect(worker.pssBytes).toBeGreaterThan(worker.ussBytes!);
      expect(worker.pssBytes).toBeLessThan(worker.rssBytes!);
    }
    expect(corral.find((r) => r.msg === 'recycling worker: starting its replacement')).toEqual([]);

    // Private memory past the limit is still recycled, and only that worker.
    const leaker = Number((await get({ port }, `/leak?mb=${LIMIT_MIB + 50}`)).body);
    expect(pids).toContain(leaker);
    const over = await corral.waitForLog((r) => overLimit(corral).includes(r), 15_000, 'the leaking worker over --max-memory');
    expect(over.pid).toBe(leaker);
    expect(over.uss).toBeGreaterThan(LIMIT_MIB * MiB);
    await corral.waitForLog((r) => r.msg === 'worker exited' && r.pid === leaker && r.reason === 'max-memory', 20_000);
    const serving = await corral.waitForReadyWorkers(2);
    expect(serving).not.toContain(leaker);
    const healthy = pids.find((pid) => pid !== leaker)!;
    expect(serving).toContain(healthy);
    expect(isAlive(healthy)).toBe(true);
    expect(overLimit(corral).map((r) => r.pid)).toEqual([leaker]);
  });
});
