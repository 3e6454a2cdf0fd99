import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfigFile } from '../../../src/config/config-file.js';
import { VENV_PYTHON, waitFor } from '../../helpers/corral.js';
import { expectExited } from '../../helpers/process-group.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-config-file-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('readConfigFile', () => {
  it('reads a config file without blocking the event loop', async () => {
    const file = configFile('slow.py', ['import time', 'time.sleep(1)', 'workers = 3']);
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 50);
    try {
      const contents = await readConfigFile(file, VENV_PYTHON, dir);
      expect(contents.settings).toEqual({ workers: 3 });
    } finally {
      clearInterval(timer);
    }
    // A blocking read (spawnSync) lets no timer run until the file has finished.
    expect(ticks).toBeGreaterThan(5);
  });

  it('names the file and the time bound when the file runs too long, and kills it', async () => {
    const pidFile = path.join(dir, 'sleeper.pid');
    const file = configFile('sleeper.py', ['import os, pathlib, time', `pathlib.Path(${JSON.stringify(pidFile)}).write_text(str(os.getpid()))`, 'time.sleep(60)']);
    await expect(readConfigFile(file, VENV_PYTHON, dir, { limits: { timeoutMs: 1_500, maxOutputBytes: 1024 * 1024 } })).rejects.toThrow(
      `--config ${JSON.stringify(file)}: still running after 1.5 s, the time corral gives a config file; make it finish sooner`,
    );
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await expectExited([pid], 5_000, 'the config file still running after its time bound');
  });

  it('names the file and the output bound when the file prints too much', async () => {
    const file = configFile('chatty.py', ['print("x" * 5000)']);
    await expect(readConfigFile(file, VENV_PYTHON, dir, { limits: { timeoutMs: 30_000, maxOutputBytes: 4096 } })).rejects.toThrow(
      `--config ${JSON.stringify(file)}: printed more than 4096 bytes while it ran; a config file should set values, not print`,
    );
  });

  it('names the file when its settings are too large to read', async () => {
    const file = configFile('huge.py', ['raw_env = ["X=" + "y" * 5000]']);
    await expect(readConfigFile(file, VENV_PYTHON, dir, { limits: { timeoutMs: 30_000, maxOutputBytes: 4096 } })).rejects.toThrow(
      `--config ${JSON.stringify(file)}: its settings take more than 4096 bytes as JSON`,
    );
  });

  it('stops the file when the read is abandoned', async () => {
    const pidFile = path.join(dir, 'abandoned.pid');
    const file = configFile('abandoned.py', ['import os, pathlib, time', `pathlib.Path(${JSON.stringify(pidFile)}).write_text(str(os.getpid()))`, 'time.sleep(60)']);
    const abort = new AbortController();
    const reading = readConfigFile(file, VENV_PYTHON, dir, { signal: abort.signal });
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '', 10_000, 'the config file to run');
    abort.abort();
    await expect(reading).rejects.toThrow('reading it was abandoned (corral is stopping)');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await expectExited([pid], 5_000, 'the config file still running after the read was abandoned');
  });

  it('names the Python that cannot run', async () => {
    const file = configFile('plain.py', ['workers = 2']);
    await expect(readConfigFile(file, path.join(dir, 'no-python'), dir)).rejects.toThrow(
      `--config ${JSON.stringify(file)}: cannot run Python ${JSON.stringify(path.join(dir, 'no-python'))} to read it: spawn ${path.join(dir, 'no-python')} ENOENT`,
    );
  });
});
