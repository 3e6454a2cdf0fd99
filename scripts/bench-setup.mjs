#!/usr/bin/env node
// Installs what the benchmark needs beyond scripts/setup.mjs, idempotently: wrk (Debian's package)
// and the anchors of bench/requirements.txt (gunicorn, uvicorn-worker, granian) in .venv.
// Node built-ins only. Run after scripts/setup.mjs, which creates .venv.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');

function say(message) {
  if (!quiet) process.stderr.write(`bench-setup: ${message}\n`);
}

function fail(message) {
  process.stderr.write(`bench-setup: error: ${message}\n`);
  process.exit(1);
}

function run(command, args, options = {}) {
  execFileSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...options });
}

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

// 1. wrk, from Debian's packages.
if (!onPath('wrk')) {
  if (!onPath('apt-get')) fail('wrk is not installed and there is no apt-get here; install wrk with your package manager');
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const prefix = asRoot ? [] : onPath('sudo') ? ['sudo', '-n'] : null;
  if (prefix === null) fail('wrk is not installed; run: sudo apt-get install -y wrk');
  const apt = (args) => {
    const [cmd, ...rest] = [...prefix, 'apt-get', ...args];
    run(cmd, rest, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  };
  say('installing wrk with apt-get');
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', '--no-install-recommends', 'wrk']);
  if (!onPath('wrk')) fail('apt-get ran but wrk is still not on PATH');
}

// 2. The anchors in .venv, when bench/requirements.txt changed since they were installed or one
//    of their executables is missing or does not run (a script's #! names the interpreter pip ran
//    with: a .venv reached through a symlink from a checkout that is gone leaves them dangling).
const venvBin = path.join(root, '.venv', 'bin');
const venvPython = path.join(venvBin, 'python');
if (!fs.existsSync(venvPython)) fail('.venv does not exist; run node scripts/setup.mjs first');
const requirements = path.join(root, 'bench', 'requirements.txt');
const wanted = createHash('sha256').update(fs.readFileSync(requirements)).digest('hex');
const stamp = path.join(root, '.venv', '.corral-bench-requirements');
const executables = ['gunicorn', 'granian'];
const stale = !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== wanted;
const missing = executables.filter((exe) => spawnSync(path.join(venvBin, exe), ['--version'], { stdio: 'ignore' }).status !== 0);
const workerImport = spawnSync(venvPython, ['-c', 'import uvicorn_worker'], { stdio: 'ignore' }).status === 0;
if (stale || missing.length > 0 || !workerImport) {
  say('installing bench/requirements.txt into .venv');
  // --force-reinstall for a script that does not run: pip would call the package installed already.
  const force = missing.length > 0 ? ['--force-reinstall', '--no-deps'] : [];
  run(venvPython, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...force, '-r', requirements]);
  fs.writeFileSync(stamp, wanted);
}
