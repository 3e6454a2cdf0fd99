import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Corral, ROOT, VENV_PYTHON, freePort, get, killAllCorrals, waitFor } from '../helpers/corral.js';

afterEach(() => killAllCorrals());

const temporaryDirs: string[] = [];
afterEach(() => {
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs argv with its stdout and stderr on a pseudo-terminal and copies what it prints to our stdout.
 * No setsid: the command stays in the process group the helper made, so killGroup ends it all.
 * (A terminal for corral needs only isatty(1), not a controlling terminal.)
 */
const PTY_DRIVER = `
import os, subprocess, sys
master, slave = os.openpty()
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
os.close(slave)
while True:
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    os.write(1, data)
sys.exit(child.wait())
`;

const ANSI = /\x1b\[[0-9;]*m/g;

/** What the terminal shows, without colours and carriage returns. */
function screen(corral: Corral): string {
  return corral.stdoutLines.join('\n').replace(ANSI, '').replace(/\r/g, '');
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

describe('pretty output on a terminal', () => {
  it('shows a failed reload\'s traceback once, as Python prints it, and access lines as uvicorn does', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-pretty-'));
    temporaryDirs.push(dir);
    const appFile = path.join(dir, 'app.py');
    const original = fs.readFileSync(path.join(ROOT, 'examples', 'hello', 'app.py'), 'utf8');
    fs.writeFileSync(appFile, original);
    const port = await freePort();
    // No --log-format: on a terminal the default is the pretty output.
    const corral = new Corral(['--python', VENV_PYTHON, '--reload', '-w', '2', '--app-dir', dir, '-b', `127.0.0.1:${port}`, 'app:app'], {
      wrapper: [VENV_PYTHON, '-c', PTY_DRIVER],
    });
    await waitFor(() => screen(corral).includes('reload: watching'), 20_000, `the watcher; screen:\n${screen(corral)}`);
    await waitFor(() => count(screen(corral), /worker ready/g) >= 2, 20_000, `two ready workers; screen:\n${screen(corral)}`);

    expect((await get({ port }, '/hello?x=1')).status).toBe(200);
    const access = await waitFor(
      () => screen(corral).split('\n').find((line) => line.includes('"GET /hello?x=1 HTTP/1.1"')),
      10_000,
      `the access line; screen:\n${screen(corral)}`,
    );
    // uvicorn's access line (client - "request line" status phrase), the worker first, and the duration;
    // no JSON tail repeating the fields.
    expect.soft(access).toMatch(/^INFO: {5}\[[12]:\d+\] 127\.0\.0\.1:\d+ - "GET \/hello\?x=1 HTTP\/1\.1" 200 OK [\d.]+ms$/);

    fs.writeFileSync(appFile, `${original}\n\ndef broken(:\n    pass\n`);
    await waitFor(() => screen(corral).includes('reload failed'), 20_000, `the failed reload; screen:\n${screen(corral)}`);
    fs.writeFileSync(appFile, original.replaceAll('Hello, world!', 'Hello again!'));
    await waitFor(async () => (await get({ port }).catch(() => undefined))?.body === 'Hello again!', 20_000, 'the fixed code serving').catch((error: Error) => {
      throw new Error(`${error.message}; screen:\n${screen(corral)}`);
    });
    await waitFor(() => screen(corral).includes('reload: new code serving'), 10_000, `the reload's success; screen:\n${screen(corral)}`);

    const text = screen(corral);
    // The traceback's frame, escaped (a JSON string) or not, and its last line, each exactly once, though
    // two workers failed and the master logged the failure three times.
    expect(count(text, /File \\?"[^"\n]*app\.py\\?", line \d+/g), text).toBe(1);
    expect(count(text, /^SyntaxError: invalid syntax$/gm), text).toBe(1);
    expect(text).toMatch(/^ {4}def broken\(:$/m);
    expect(text).not.toContain('\\n');
    // Every event still has its line: each worker's error, the aborted restart, the failed reload.
    expect(count(text, /^ERROR: {4}\[[12]:\d+\] cannot import the app 'app:app': SyntaxError/gm), text).toBe(2);
    expect(text).toMatch(/^ERROR: {4}\[[12]:\d+\] rolling restart aborted/m);
    expect(text).toMatch(/^ERROR: {4}\[[12]:\d+\] reload failed: app\.py:\d+: SyntaxError: invalid syntax;/m);
    // No line carries a JSON object.
    expect(text).not.toMatch(/\{"/);
  }, 90_000);
});
