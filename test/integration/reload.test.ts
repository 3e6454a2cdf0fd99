import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, get, isAlive, killAllCorrals, pollUntil, startCorral, waitFor, type Corral, type LogRecord } from '../helpers/corral.js';

afterEach(() => killAllCorrals());

const temporaryDirs: string[] = [];
afterEach(() => {
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** The app under test: `pkg.main:app` answers with MESSAGE, plus the optional pkg.extra and a stream. */
function mainModule(message: string): string {
  return `
import asyncio
import os

MESSAGE = ${JSON.stringify(message)}
try:
    from pkg.extra import EXTRA
except ImportError:
    EXTRA = "no extra"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        while True:
            await send({"type": "http.response.body", "body": b"data: tick\\n\\n", "more_body": True})
            await asyncio.sleep(0.2)
    body = f"{MESSAGE} {EXTRA} {os.getpid()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
`;
}

interface Project {
  root: string;
  write(relative: string, text: string): string;
}

/** A copy of the app in a fresh temporary directory: the tests edit it, never the repository. */
function makeProject(message = 'one'): Project {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-reload-'));
  temporaryDirs.push(root);
  const write = (relative: string, text: string) => {
    const file = path.join(root, relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };
  write('pkg/__init__.py', '');
  write('pkg/main.py', mainModule(message));
  return { root, write };
}

async function startReloading(project: Project, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ corral: Corral; port: number }> {
  const port = await freePort();
  const corral = startCorral(['--reload', '--app-dir', project.root, '-b', `127.0.0.1:${port}`, ...extra, 'pkg.main:app'], { env });
  await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('reload: watching'), 20_000, 'the watcher');
  return { corral, port };
}

/**
 * The app's answer once its first word is `word`: asks until then or `timeoutMs`, and expects it, so a
 * failure shows what the app answered instead (the old code, an error) rather than a timeout.
 */
async function expectServing(port: number, word: string, timeoutMs = 15_000): Promise<string> {
  const answer = async () => (await get({ port }).catch((error: Error) => ({ body: `no answer: ${error.message}` }))).body;
  const body = await pollUntil(answer, (text) => text.startsWith(`${word} `), timeoutMs);
  expect(body, `what the app answered within ${timeoutMs} ms`).toMatch(new RegExp(`^${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `));
  return body;
}

const isMessage = (prefix: string) => (r: LogRecord) => typeof r.msg === 'string' && r.msg.startsWith(prefix);
const reloadsStarted = (corral: Corral) => corral.find(isMessage('reload: ')).filter((r) => Array.isArray(r.changes));
const reloadsDone = (corral: Corral) => corral.find(isMessage('reload: new code serving'));

/** The parent of a live process, from /proc. */
function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The fork servers that reported ready, in order. */
const forkServers = (corral: Corral) => corral.find((r) => r.msg === 'fork server ready').map((r) => r.pid as number);
/** The pid that answered (the app puts it last). */
const answeredBy = (body: string) => Number(body.split(' ').pop());

/** A directory on the import path outside the watched code, standing in for site-packages. */
function sitePackages(): string {
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-site-'));
  temporaryDirs.push(site);
  // Present from the start, as in a real site-packages: the first byte-compile must not change the directory.
  fs.mkdirSync(path.join(site, '__pycache__'));
  return site;
}

describe('--reload forks from a fork server kept across saves (the default start method)', () => {
  it('answers a save with a held child of the fork server, and keeps that fork server', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    const first = answeredBy(await expectServing(port, 'one'));
    // The master's log may trail the answer: wait for the record rather than read what has arrived.
    const server = (await corral.waitForLog(isMessage('fork server ready'))).pid;
    expect(parentOf(first)).toBe(server);
    const held = await corral.waitForLog(isMessage('reload: warm standby ready'), 20_000, 'the held child');
    expect(parentOf(held.pid as number)).toBe(server);
    project.write('pkg/main.py', mainModule('two'));
    const second = answeredBy(await expectServing(port, 'two'));
    // The held child became the worker: no fork on the save's path.
    expect(second).toBe(held.pid);
    expect(parentOf(second)).toBe(server);
    expect(await corral.waitForLog(isMessage('reload: new code serving'))).toMatchObject({ workers: 1, warm: 1 });
    await waitFor(() => corral.find(isMessage('reload: warm standby ready')).length >= 2, 20_000, 'the next held child');
    project.write('pkg/main.py', mainModule('three'));
    expect(parentOf(answeredBy(await expectServing(port, 'three')))).toBe(server);
    expect(forkServers(corral)).toEqual([server]);
  });

  it('has a new fork server preload a module the app imported that the fork server had not', async () => {
    const project = makeProject('one');
    const site = sitePackages();
    // Imported by name at run time: the fork server's reading of the app's imports cannot see it.
    fs.writeFileSync(path.join(site, 'lazylib.py'), 'import os\nprint(f"lazylib imported by {os.getpid()}", flush=True)\n');
    project.write('pkg/main.py', `import importlib\nimportlib.import_module("lazy" + "lib")\n${mainModule('one')}`);
    const { corral, port } = await startReloading(project, [], { PYTHONPATH: site });
    await expectServing(port, 'one');
    const firstServer = (await corral.waitForLog(isMessage('fork server ready'))).pid as number;
    const learnt = await corral.waitForLog(isMessage('reload: the app imports'), 20_000, 'the missing module noticed');
    expect(learnt).toMatchObject({ forkServer: 1, modules: 1, examples: ['lazylib'] });
    await waitFor(() => forkServers(corral).length === 2, 20_000, 'the second fork server');
    const secondServer = forkServers(corral)[1]!;
    const importers = () => corral.find((r) => typeof r.msg === 'string' && r.msg.startsWith('lazylib imported by')).map((r) => r.pid);
    expect(importers()).toContain(secondServer);
    // The first save takes the child held by the first fork server; the next is held by the second.
    project.write('pkg/main.py', `import importlib\nimportlib.import_module("lazy" + "lib")\n${mainModule('two')}`);
    await expectServing(port, 'two');
    await waitFor(
      () => corral.find(isMessage('reload: warm standby ready')).some((r) => parentOf(r.pid as number) === secondServer),
      20_000,
      'a child held by the second fork server',
    );
    project.write('pkg/main.py', `import importlib\nimportlib.import_module("lazy" + "lib")\n${mainModule('three')}`);
    const third = answeredBy(await expectServing(port, 'three'));
    expect(parentOf(third)).toBe(secondServer);
    // It had the module from its fork server: it did not import it itself.
    expect(importers()).not.toContain(third);
    // The first fork server exits once its children are gone.
    await waitFor(() => !isAlive(firstServer!), 15_000, 'the first fork server to exit');
    expect(forkServers(corral), corral.output).toHaveLength(2);
  });

  it('forks the workers of a save from a new fork server when the Python environment changed', async () => {
    const project = makeProject('one');
    const site = sitePackages();
    fs.writeFileSync(path.join(site, 'extlib.py'), 'NAME = "extlib"\n');
    project.write('pkg/main.py', `import extlib\n${mainModule('one')}`);
    const { corral, port } = await startReloading(project, [], { PYTHONPATH: site });
    const first = answeredBy(await expectServing(port, 'one'));
    const firstServer = parentOf(first);
    await corral.waitForLog(isMessage('reload: warm standby ready'), 20_000, 'the held child');
    fs.writeFileSync(path.join(site, 'newlib.py'), 'NAME = "newlib"\n');
    project.write('pkg/main.py', `import newlib\nimport extlib\n${mainModule('two')}`);
    const second = answeredBy(await expectServing(port, 'two'));
    expect(await corral.waitForLog(isMessage('reload: the Python environment changed'))).toMatchObject({ directory: site });
    expect(await corral.waitForLog(isMessage('reload: new code serving'))).toMatchObject({ warm: 0 });
    const secondServer = parentOf(second);
    expect(secondServer).not.toBe(firstServer);
    // The latest fork server (one may have started in between to preload extlib, which the app's
    // reading counts as the app's own code: it is outside site-packages).
    expect(forkServers(corral).at(-1)).toBe(secondServer);
    await waitFor(() => forkServers(corral).slice(0, -1).every((pid) => !isAlive(pid)), 15_000, 'the older fork servers to exit once their workers are gone');
  });
});

describe('--reload --start-method spawn', () => {
  it('answers a save from a spawned warm standby, a child of the master', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project, ['--start-method', 'spawn']);
    expect(parentOf(answeredBy(await expectServing(port, 'one')))).toBe(corral.pid);
    const standby = await corral.waitForLog(isMessage('reload: warm standby ready'), 20_000, 'a warm standby');
    project.write('pkg/main.py', mainModule('two'));
    const second = answeredBy(await expectServing(port, 'two'));
    expect(second).toBe(standby.pid);
    expect(parentOf(second)).toBe(corral.pid);
    expect(await corral.waitForLog(isMessage('reload: new code serving'))).toMatchObject({ workers: 1, warm: 1 });
    expect(forkServers(corral)).toEqual([]);
  });

  it('starts cold when the Python environment changed', async () => {
    const project = makeProject('one');
    const site = sitePackages();
    fs.writeFileSync(path.join(site, 'extlib.py'), 'NAME = "extlib"\n');
    project.write('pkg/main.py', `import extlib\n${mainModule('one')}`);
    const { corral, port } = await startReloading(project, ['--start-method', 'spawn'], { PYTHONPATH: site });
    await expectServing(port, 'one');
    await corral.waitForLog(isMessage('reload: warm standby ready'), 20_000, 'a warm standby');
    fs.writeFileSync(path.join(site, 'newlib.py'), 'NAME = "newlib"\n');
    project.write('pkg/main.py', `import newlib\nimport extlib\n${mainModule('two')}`);
    expect(parentOf(answeredBy(await expectServing(port, 'two')))).toBe(corral.pid);
    expect(await corral.waitForLog(isMessage('reload: new code serving'))).toMatchObject({ warm: 0 });
    expect(corral.find(isMessage('reload: the Python environment changed since the standby started'))[0]).toMatchObject({ directory: site });
  });
});

describe('--reload', () => {
  it('serves the new code after a module is edited, from a warm standby', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    await expectServing(port, 'one');
    await corral.waitForLog(isMessage('reload: warm standby ready'), 20_000, 'a warm standby');
    project.write('pkg/main.py', mainModule('two'));
    await expectServing(port, 'two');
    const done = await corral.waitForLog(isMessage('reload: new code serving'));
    expect(done).toMatchObject({ workers: 1, warm: 1 });
    expect(reloadsStarted(corral)[0]?.changes).toEqual([path.join(project.root, 'pkg/main.py')]);
  });

  it('keeps the old code serving on a syntax error, names the file and line, and reloads once it is fixed', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    await expectServing(port, 'one');
    const broken = project.write('pkg/main.py', `${mainModule('two')}\n\ndef broken(:\n    pass\n`);
    const brokenLine = mainModule('two').split('\n').length + 2;
    const failure = await corral.waitForLog(isMessage('reload failed'), 20_000, 'the reload failure');
    expect(failure).toMatchObject({ level: 50, file: broken, line: brokenLine });
    expect(String(failure.error)).toContain('SyntaxError');
    expect(String(failure.msg)).toContain(`pkg/main.py:${brokenLine}: SyntaxError: invalid syntax`);
    // The traceback starts at the app's code, not in the import machinery.
    expect(String(failure.traceback)).toContain('def broken(:');
    expect(String(failure.traceback)).not.toContain('corral_worker.py');
    expect(String(failure.traceback)).not.toContain('corral_runtime');
    expect((await get({ port })).body).toMatch(/^one /);
    project.write('pkg/main.py', mainModule('three'));
    await expectServing(port, 'three');
    await corral.waitForLog(isMessage('reload: new code serving'));
    expect(reloadsDone(corral)).toHaveLength(1);
  });

  it('counts an editor’s atomic save (write a temporary file, rename it over) as one change', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    await expectServing(port, 'one');
    const target = path.join(project.root, 'pkg/main.py');
    const temporary = project.write('pkg/.main.py.swx', mainModule('two'));
    fs.renameSync(temporary, target);
    await expectServing(port, 'two');
    // A later plain save: had the atomic save counted twice, a reload would sit between the two.
    project.write('pkg/main.py', mainModule('three'));
    await expectServing(port, 'three');
    await waitFor(() => reloadsDone(corral).length >= 2, 10_000, 'the second reload to finish');
    expect(reloadsStarted(corral).map((r) => r.changes)).toEqual([[target], [target]]);
  });

  it('keeps the old code serving when the new code’s lifespan start-up fails', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    await expectServing(port, 'one');
    const failingStartup = mainModule('two').replace(
      'async def app(scope, receive, send):\n',
      'async def app(scope, receive, send):\n    if scope["type"] == "lifespan":\n        await receive()\n        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})\n        return\n',
    );
    expect(failingStartup).toContain('lifespan.startup.failed');
    project.write('pkg/main.py', failingStartup);
    const failure = await corral.waitForLog(isMessage('reload failed'), 20_000, 'the reload failure');
    expect(String(failure.msg)).toContain('lifespan start-up failed');
    expect(corral.find((r) => typeof r.msg === 'string' && r.msg.includes('database unreachable')).length).toBeGreaterThan(0);
    expect((await get({ port })).body).toMatch(/^one /);
    project.write('pkg/main.py', mainModule('three'));
    await expectServing(port, 'three');
  });

  it('keeps running when the app does not import at start, and serves once it is fixed', async () => {
    const project = makeProject('one');
    const broken = project.write('pkg/main.py', `${mainModule('one')}\nimport no_such_module_anywhere\n`);
    const { corral, port } = await startReloading(project);
    const parked = await corral.waitForLog(isMessage('worker failed to boot'), 20_000, 'the boot failure');
    expect(parked).toMatchObject({ file: broken, line: mainModule('one').split('\n').length + 1 });
    expect(String(parked.error)).toContain("No module named 'no_such_module_anywhere'");
    expect(corral.exitCode).toBeUndefined();
    project.write('pkg/main.py', mainModule('two'));
    await expectServing(port, 'two');
  });

  it('reloads when a new file appears in a package', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    expect(await expectServing(port, 'one')).toContain('no extra');
    const added = project.write('pkg/extra.py', 'EXTRA = "extra module"\n');
    const body = await pollUntil(async () => (await get({ port })).body, (text) => text.includes('extra module'), 15_000);
    expect(body).toMatch(/^one extra module /);
    // The master's log line may trail the new worker's first answer.
    await corral.waitForLog(isMessage('reload: new code serving'), 10_000, 'the reload to finish');
    expect(reloadsStarted(corral)[0]?.changes).toEqual([added]);
  });

  it('ignores changes inside .venv, venv, __pycache__, .git and to .pyc files', async () => {
    const project = makeProject('one');
    // Present at start, as a project's virtualenv would be.
    project.write('.venv/lib/python3/site-packages/dep/__init__.py', 'X = 1\n');
    const { corral, port } = await startReloading(project);
    await expectServing(port, 'one');
    project.write('.venv/lib/python3/site-packages/dep/__init__.py', 'X = 2\n');
    project.write('.venv/lib/python3/site-packages/newdep.py', 'Y = 1\n');
    project.write('venv/lib/other.py', 'Z = 1\n');
    project.write('pkg/__pycache__/main.cpython-312.pyc', 'not really bytecode');
    project.write('pkg/__pycache__/stray.py', 'W = 1\n');
    project.write('.git/hooks/post-commit.py', 'V = 1\n');
    project.write('pkg/main.pyc', 'stale');
    // A watched change after the ignored ones: its reload must list it alone.
    const marker = project.write('pkg/main.py', mainModule('two'));
    await expectServing(port, 'two');
    // The master's log line may trail the new worker's first answer.
    await corral.waitForLog(isMessage('reload: new code serving'), 10_000, 'the reload to finish');
    const started = reloadsStarted(corral);
    expect(started).toHaveLength(1);
    expect(started[0]?.changes).toEqual([marker]);
  });

  it('completes a reload while a streaming response is open, and ends the old worker within the drain bound', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project);
    const first = await expectServing(port, 'one');
    const oldPid = Number(first.split(' ').pop());
    let streamEnded = false;
    let received = 0;
    const stream = http.get({ port, host: '127.0.0.1', path: '/stream', agent: false }, (response) => {
      response.on('data', () => (received += 1));
      response.on('end', () => (streamEnded = true));
      response.on('error', () => (streamEnded = true));
    });
    stream.on('error', () => (streamEnded = true));
    await waitFor(() => received > 0, 10_000, 'the stream to start');
    project.write('pkg/main.py', mainModule('two'));
    await expectServing(port, 'two');
    const done = await corral.waitForLog(isMessage('reload: new code serving'));
    // The swap did not wait for the stream.
    expect(streamEnded).toBe(false);
    // The drain bound in reload mode is 3 s; the old worker ends within it plus the kill backstop.
    const doneAt = Number(done.time);
    const exited = await corral.waitForLog((r) => r.msg === 'worker exited' && r.pid === oldPid, 20_000, 'the old worker to exit');
    // On the master's clock: the 3 s drain and the 0.5 s kill backstop; the 2 s on top are for a loaded
    // machine's timers and process exit, not for corral.
    expect(Number(exited.time) - doneAt).toBeLessThanOrEqual(3_000 + 500 + 2_000);
    await expect.poll(() => streamEnded, { timeout: 10_000, message: 'the stream closed once its worker exited' }).toBe(true);
    stream.destroy();
  });

  it('replaces every worker with -w 2, both from warm standbys', async () => {
    const project = makeProject('one');
    const { corral, port } = await startReloading(project, ['-w', '2']);
    const oldPids = await corral.waitForReadyWorkers(2);
    await expectServing(port, 'one');
    await waitFor(() => corral.find(isMessage('reload: warm standby ready')).length >= 2, 20_000, 'a standby per worker');
    project.write('pkg/main.py', mainModule('two'));
    const done = await corral.waitForLog(isMessage('reload: new code serving'), 20_000, 'the reload');
    expect(done).toMatchObject({ workers: 2, warm: 2 });
    // The old workers drain in the background: wait until they are gone, then only new code answers.
    await waitFor(() => oldPids.every((pid) => !isAlive(pid)), 10_000, 'the old workers to exit');
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const reply = await get({ port });
        expect(reply.body).toMatch(/^two /);
        seen.add(reply.body.split(' ').pop()!);
        return seen.size === 2;
      },
      15_000,
      'both new workers to answer',
    );
    for (const pid of seen) expect(oldPids).not.toContain(Number(pid));
  });

  it('reloads on a change to a --reload-extra-file', async () => {
    const project = makeProject('one');
    const template = project.write('templates/page.html', '<p>first</p>');
    project.write(
      'pkg/main.py',
      mainModule('one').replace('MESSAGE = "one"', `MESSAGE = open(${JSON.stringify(template)}).read()`),
    );
    const { corral, port } = await startReloading(project, ['--reload-extra-file', template]);
    await expectServing(port, '<p>first</p>');
    fs.writeFileSync(template, '<p>second</p>');
    await expectServing(port, '<p>second</p>');
    // One reload, for the extra file alone.
    // The master's log line may trail the new worker's first answer.
    await corral.waitForLog(isMessage('reload: new code serving'), 10_000, 'the reload to finish');
    expect(reloadsStarted(corral).map((r) => r.changes)).toEqual([[template]]);
  });

  it('exits 2 naming a --reload-dir that does not exist', async () => {
    const project = makeProject('one');
    const missing = path.join(project.root, 'no-such-dir');
    const corral = startCorral(['--reload', '--reload-dir', missing, '--app-dir', project.root, '-b', `127.0.0.1:${await freePort()}`, 'pkg.main:app']);
    expect(await corral.waitForExit()).toBe(2);
    const fatal = corral.find((r) => r.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toBe(`--reload-dir ${JSON.stringify(missing)}: not a directory; expected an existing directory to watch`);
  });

  it('starts cold when the Python environment changed, then warm again', async () => {
    const project = makeProject('one');
    // A directory on the import path outside the watched code, standing in for site-packages.
    const site = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-site-'));
    temporaryDirs.push(site);
    fs.writeFileSync(path.join(site, 'extlib.py'), 'NAME = "extlib"\n');
    const withExtlib = (message: string) => `import extlib\n${mainModule(message)}`;
    project.write('pkg/main.py', withExtlib('one'));
    const { corral, port } = await startReloading(project, [], { PYTHONPATH: site });
    await expectServing(port, 'one');
    await corral.waitForLog(isMessage('reload: warm standby ready'), 20_000, 'a warm standby');
    // "Installing a package": a new module in a directory of the import path.
    fs.writeFileSync(path.join(site, 'newlib.py'), 'NAME = "newlib"\n');
    project.write('pkg/main.py', `import newlib\n${withExtlib('two')}`);
    await expectServing(port, 'two');
    const cold = await corral.waitForLog(isMessage('reload: new code serving'));
    expect(cold).toMatchObject({ warm: 0 });
    expect(await corral.waitForLog(isMessage('reload: the Python environment changed'))).toMatchObject({ directory: site });
    await waitFor(() => corral.find(isMessage('reload: warm standby ready')).length >= 2, 20_000, `a new standby; log so far:\n${corral.output.slice(-4000)}`);
    project.write('pkg/main.py', `import newlib\n${withExtlib('three')}`);
    await expectServing(port, 'three');
    await waitFor(() => reloadsDone(corral).length === 2, 10_000, 'the second reload');
    expect(reloadsDone(corral)[1]).toMatchObject({ warm: 1 });
  });
});
