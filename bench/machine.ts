// The machine a run was taken on: cores, CPU model, memory, kernel, Node/Python and server versions.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { MachineInfo } from './report.js';
import { ROOT, VENV_BIN, getCorralRoot } from './servers.js';

const run = (cmd: string, args: string[], cwd = ROOT): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd }).trim();
  } catch {
    return '?';
  }
};

function pythonVersions(): Record<string, string> {
  const code =
    'import json, importlib.metadata as m\n' +
    'out = {}\n' +
    'for d in ("uvicorn", "gunicorn", "uvicorn-worker", "granian", "fastapi", "uvloop", "httptools"):\n' +
    '    try: out[d] = m.version(d)\n' +
    '    except Exception: pass\n' +
    'print(json.dumps(out))';
  try {
    return JSON.parse(run(join(VENV_BIN, 'python'), ['-c', code])) as Record<string, string>;
  } catch {
    return {};
  }
}

export function describeMachine(): MachineInfo {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?';
  let corralVersion = '?';
  try {
    const pkg = [join(getCorralRoot(), 'package.json'), join(ROOT, 'package.json')].find((p) => existsSync(p))!;
    corralVersion = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    // keep '?'
  }
  return {
    nproc: Number(run('nproc', [])) || os.availableParallelism(),
    cpuModel: model,
    memTotalGiB: os.totalmem() / 1024 ** 3,
    kernel: os.release(),
    node: process.versions.node,
    python: run(join(VENV_BIN, 'python'), ['-c', 'import platform; print(platform.python_version())']),
    versions: { corral: corralVersion, ...pythonVersions(), wrk: run('sh', ['-c', 'wrk -v 2>&1 | head -1']).split(' ')[1] ?? '?' },
    commit:
      (getCorralRoot() === ROOT ? '' : `corral from ${getCorralRoot()} `) +
      run('git', ['rev-parse', '--short', 'HEAD'], getCorralRoot()) +
      (run('git', ['status', '--porcelain', '--', 'src', 'bin'], getCorralRoot()) ? ' (+ uncommitted changes in src/ or bin/)' : ''),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}
