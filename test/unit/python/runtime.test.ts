import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, VENV_PYTHON } from '../../helpers/corral.js';

const PYTHON_DIR = path.join(ROOT, 'src', 'python');
const RUNTIME_DIR = path.join(PYTHON_DIR, 'corral_runtime');

/** Runs a Python snippet with the runtime package importable; returns what it prints. */
function python(lines: string[], env: NodeJS.ProcessEnv = {}): string {
  const script = ['import sys', `sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)})`, ...lines].join('\n');
  return execFileSync(VENV_PYTHON, ['-c', script], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** The runtime's Python sources, by file name. */
function runtimeSources(): Map<string, string> {
  const files = fs.readdirSync(RUNTIME_DIR).filter((name) => name.endsWith('.py'));
  return new Map([...files.map((name) => [name, fs.readFileSync(path.join(RUNTIME_DIR, name), 'utf8')] as const), ['corral_worker.py', fs.readFileSync(path.join(PYTHON_DIR, 'corral_worker.py'), 'utf8')]]);
}

const temporaryDirs: string[] = [];
afterEach(() => {
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the worker runtime (src/python/corral_runtime)', () => {
  it('sends exactly the messages of protocol.py: none outside it, and none of it left unsent', () => {
    const declared = Object.keys(JSON.parse(python(['import json', 'from corral_runtime.protocol import WORKER_MESSAGES', 'print(json.dumps(WORKER_MESSAGES))'])) as Record<string, string[]>);
    const sent = new Set<string>();
    for (const source of runtimeSources().values()) {
      for (const match of source.matchAll(/\.send\(\s*"(\w+)"/g)) sent.add(match[1]!);
    }
    expect([...sent].sort()).toEqual([...declared].sort());
  });

  it('the fork server reports exactly the messages of protocol.py FORK_SERVER_MESSAGES, and handles every request', () => {
    const protocol = JSON.parse(
      python(['import json', 'from corral_runtime.protocol import FORK_SERVER_MESSAGES, FORK_SERVER_REQUESTS', 'print(json.dumps([FORK_SERVER_MESSAGES, FORK_SERVER_REQUESTS]))']),
    ) as [Record<string, string[]>, Record<string, string[]>];
    const source = runtimeSources().get('fork_server.py')!;
    const reported = new Set([...source.matchAll(/\.report\(\s*"(\w+)"/g)].map((match) => match[1]!));
    expect([...reported].sort()).toEqual(Object.keys(protocol[0]).sort());
    // Each request the master sends (src/worker/fork-server.ts) is one the fork server handles.
    for (const request of Object.keys(protocol[1])) expect(source).toContain(`kind == "${request}"`);
  });

  it("finds the app's third-party imports by reading its own modules, never running them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-runtime-'));
    temporaryDirs.push(dir);
    fs.mkdirSync(path.join(dir, 'shop'));
    const files: Record<string, string[]> = {
      'shop/__init__.py': ['import json', 'raise SystemExit("the app ran")'],
      'shop/main.py': [
        'from __future__ import annotations',
        'import decimal, shop.models',
        'from . import views',
        'from typing import TYPE_CHECKING',
        'if TYPE_CHECKING:',
        '    import tomllib',
        'try:',
        '    import csv',
        'except ImportError:',
        '    csv = None',
        'class Handler:',
        '    import fractions',
        'def later():',
        '    import sqlite3',
        'app = None',
      ],
      'shop/models.py': ['from email.mime import text', 'from .views import render'],
      'shop/views.py': ['import html', 'def render(): pass'],
    };
    for (const [name, lines] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), `${lines.join('\n')}\n`);
    const found = python(
      ['import json', 'from corral_runtime.preload import third_party_imports', `print(json.dumps(third_party_imports("shop.main", {"app_dir": ${JSON.stringify(dir)}})))`],
      {},
    );
    expect(JSON.parse(found)).toEqual([
      ['decimal', []],
      ['typing', ['TYPE_CHECKING']],
      ['csv', []],
      ['fractions', []],
      ['json', []],
      ['email.mime', ['text']],
      ['html', []],
    ]);
  });

  it('a fork server\'s snapshot of what it preloaded sees an upgraded module, a removed one and a package installed beside them, not the app\'s own edits', () => {
    const site = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-site-'));
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-app-'));
    temporaryDirs.push(site, app);
    fs.writeFileSync(path.join(site, 'libone.py'), 'VERSION = 1\n');
    fs.writeFileSync(path.join(site, 'libtwo.py'), 'VERSION = 1\n');
    fs.writeFileSync(path.join(app, 'main.py'), 'import libone\n');
    const out = python([
      'import json, os, time',
      `site, app = ${JSON.stringify(site)}, ${JSON.stringify(app)}`,
      'sys.path[:0] = [site, app]',
      'import libone, libtwo',
      'from corral_runtime.fork_server import changed_files, preloaded_files',
      'settings = {"app_dir": app}',
      'snapshot = preloaded_files(settings)',
      'seen = [changed_files(snapshot)]',
      'os.replace(os.path.join(app, "main.py"), os.path.join(app, "main.py"))',
      'open(os.path.join(app, "new_module.py"), "w").write("X = 1\\n")',
      'seen.append(changed_files(snapshot))',
      'time.sleep(0.01)',
      'open(os.path.join(site, "libone.py"), "w").write("VERSION = 22\\n")',
      'seen.append(changed_files(snapshot))',
      'snapshot = preloaded_files(settings)',
      'os.remove(os.path.join(site, "libtwo.py"))',
      'seen.append(changed_files(snapshot))',
      'print(json.dumps(seen))',
    ]);
    const [before, ownEdits, upgraded, removed] = JSON.parse(out) as string[][];
    expect(before).toEqual([]);
    // The app's own directory is not watched: its modules are imported by each worker, never preloaded.
    expect(ownEdits).toEqual([]);
    expect(upgraded).toEqual([path.join(site, 'libone.py')]);
    // Removing a file changes its directory too: that is how a package installed or removed is seen.
    expect(removed).toEqual([site, path.join(site, 'libtwo.py')].sort());
  });

  it('refuses to send a message or a field protocol.py does not name', () => {
    const verdicts = python([
      'from corral_runtime.channel import ControlChannel',
      'channel = ControlChannel(None)',
      'for name, fields in [("heartbeat", {"requests": 1, "connections": 0}), ("loaded", {"seconds": 1}), ("ready", {"pid": 1}), ("boot_error", {"kind": "startup", "message": "m", "traceback": ""})]:',
      '    try:',
      '        channel.send(name, **fields)',
      '        print(name, "sent")',
      '    except AssertionError:',
      '        print(name, "refused")',
    ]);
    expect(verdicts.trim().split('\n')).toEqual(['heartbeat sent', 'loaded refused', 'ready refused', 'boot_error sent']);
  });

  it('rebinds no module global, and leaves the exit codes to main.py but for the exits that must be immediate', () => {
    const withExit: string[] = [];
    for (const [name, source] of runtimeSources()) {
      expect(source, name).not.toMatch(/^\s*global\s/m);
      if (/os\._exit\(/.test(source)) withExit.push(name);
    }
    // The control channel's EOF thread, the signal handlers' backstops (server, standby), a failed boot's
    // end, a forked worker's end without the interpreter's teardown (fork_child.py).
    expect(withExit.sort()).toEqual(['channel.py', 'corral_worker.py', 'fork_child.py', 'server.py', 'standby.py']);
  });

  it('runs a config file once per process, for the config reader, the hooks and a worker class alike', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-runtime-'));
    temporaryDirs.push(dir);
    const file = path.join(dir, 'gunicorn.conf.py');
    fs.writeFileSync(file, ['print("config ran")', 'class Worker: pass', 'def post_fork(server, worker): pass', ''].join('\n'));
    const output = python([
      `file = ${JSON.stringify(file)}`,
      'from corral_runtime.config_module import load_config_module',
      'from corral_runtime.hooks import Hooks',
      'from corral_runtime.worker_class import load_worker_class',
      'module = load_config_module(file, quiet=False)',
      'print(load_config_module(file, quiet=False) is module)',
      'hooks = Hooks.load({"file": file, "names": ["post_fork"], "cfg": {}}, pid=1, slot=1, age=1)',
      'print(hooks.functions["post_fork"] is module.post_fork, load_worker_class("__config__.Worker", file) is module.Worker)',
    ]);
    expect(output.trim().split('\n')).toEqual(['config ran', 'True', 'True True']);
  });
});
