import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Corral, freePort, get, killAllCorrals, pollUntil, ROOT } from '../helpers/corral.js';

afterEach(() => killAllCorrals());

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

interface Dockerfile {
  stages: string[];
  env: Record<string, string>;
  user: string | undefined;
  entrypoint: unknown;
  cmd: unknown;
  healthcheck: unknown;
}

/** Just enough of the Dockerfile syntax for the final stage: continuation lines, ENV, USER, exec forms. */
function parseDockerfile(text: string): Dockerfile {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const result: Dockerfile = { stages: [], env: {}, user: undefined, entrypoint: undefined, cmd: undefined, healthcheck: undefined };
  for (const line of instructions) {
    const [keyword, ...rest] = line.split(/\s+/);
    const argument = rest.join(' ');
    switch (keyword!.toUpperCase()) {
      case 'FROM':
        result.stages.push(argument);
        result.env = {};
        result.user = undefined;
        break;
      case 'ENV':
        for (const [, name, value] of argument.matchAll(/(\w+)=("[^"]*"|\S+)/g)) result.env[name!] = value!.replace(/^"|"$/g, '');
        break;
      case 'USER':
        result.user = argument;
        break;
      case 'ENTRYPOINT':
        result.entrypoint = JSON.parse(argument);
        break;
      case 'CMD':
        result.cmd = JSON.parse(argument);
        break;
      case 'HEALTHCHECK': {
        const exec = argument.slice(argument.indexOf('CMD') + 3).trim();
        result.healthcheck = JSON.parse(exec);
        break;
      }
    }
  }
  return result;
}

/** Where the image's paths are on this checkout: /app is the repository, /opt/venv the test virtualenv. */
function onHost(value: string): string {
  return value.replaceAll('/opt/venv', path.join(ROOT, '.venv')).replaceAll('/app/', `${ROOT}/`);
}

describe('the Dockerfile', () => {
  const dockerfile = parseDockerfile(read('Dockerfile'));

  /** The image's CMD with the image's ENV, run on the host; PORT and CORRAL_METRICS_BIND as `docker run -e` would set them. */
  function runImageCmd(port: number, metricsPort: number): Corral {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(dockerfile.env)) env[name] = onHost(value.replace('$PATH', process.env.PATH ?? ''));
    env.PORT = String(port);
    env.CORRAL_METRICS_BIND = `127.0.0.1:${metricsPort}`;
    return new Corral((dockerfile.cmd as string[]).slice(2).map(onHost), { env });
  }

  it('is multi-stage, runs as a non-root user, with tini as ENTRYPOINT and exec-form CMD and HEALTHCHECK', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile.stages.at(-1)).toMatch(/^python:\S*slim/);
    expect(dockerfile.user).toBeDefined();
    expect(['root', '0']).not.toContain(dockerfile.user);
    expect(dockerfile.entrypoint).toEqual(['/usr/bin/tini', '--']);
    // The current Node LTS by default; package.json's engines keeps the floor it still works on.
    expect(read('Dockerfile')).toMatch(/^ARG NODE_VERSION=24$/m);
    expect(JSON.parse(read('package.json')).engines.node).toBe('>=20.19');
    expect(Array.isArray(dockerfile.cmd)).toBe(true);
    expect((dockerfile.healthcheck as string[]).join(' ')).toContain('/readyz');
    const ignored = read('.dockerignore').split('\n');
    for (const heavy of ['node_modules', '.venv', '.git', 'dist']) expect(ignored).toContain(heavy);
  });

  it("runs its CMD with its ENV on the host: serves the example app, config from the environment, stops on TERM", async () => {
    const cmd = dockerfile.cmd as string[];
    expect(cmd.slice(0, 2)).toEqual(['node', '/app/bin/corral.js']);
    const port = await freePort();
    const metricsPort = await freePort();
    const corral = runImageCmd(port, metricsPort);
    await corral.waitForReadyWorkers(Number(dockerfile.env.WEB_CONCURRENCY));
    const reply = await get({ port });
    expect(reply).toMatchObject({ status: 200, body: 'Hello, world!' });
    const started = await corral.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('corral '));
    // The bind came from $PORT, the worker count from $WEB_CONCURRENCY, the interpreter from $VIRTUAL_ENV.
    expect(started).toMatchObject({ binds: [`0.0.0.0:${port}`], workers: Number(dockerfile.env.WEB_CONCURRENCY) });
    expect(String(started.python)).toContain(path.join(ROOT, '.venv'));
    process.kill(corral.pid, 'SIGTERM');
    expect(await corral.waitForExit()).toBe(0);
  });

  it('HEALTHCHECK passes against the running CMD', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const corral = runImageCmd(port, metricsPort);
    await corral.waitForReadyWorkers(Number(dockerfile.env.WEB_CONCURRENCY));
    /** The HEALTHCHECK command, aimed at `port` instead of the image's metrics port. */
    const check = (port: number) => {
      const [python, ...args] = (dockerfile.healthcheck as string[]).map((word) => word.replace(':9000/', `:${port}/`));
      const result = spawnSync(python === 'python' ? path.join(ROOT, '.venv', 'bin', 'python') : python!, args, { encoding: 'utf8' });
      return { status: result.status, stderr: result.stderr };
    };
    // The workers are ready, so /readyz answers 200 and the check exits 0 (tried until then, as Docker
    // retries it: the test may read the ready record before the master has taken it).
    const running = await pollUntil(() => check(metricsPort), (result) => result.status === 0, 15_000);
    expect(running.status, `the HEALTHCHECK's stderr: ${running.stderr}`).toBe(0);
    // And it is a check: where nothing answers, it fails.
    expect(check(await freePort()).status).not.toBe(0);
  });
});

describe('examples/kubernetes', () => {
  const manifest = read('examples/kubernetes/deployment.yaml');

  it('has a Deployment and a Service, probes on /readyz and /healthz, a shutdown delay, and a grace period longer than the delay plus --graceful-timeout', () => {
    expect(manifest).toMatch(/^kind: Deployment$/m);
    expect(manifest).toMatch(/^kind: Service$/m);
    expect(manifest).toMatch(/readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz/);
    expect(manifest).toMatch(/livenessProbe:\s*\n\s*httpGet: \{ path: \/healthz/);
    const grace = Number(manifest.match(/terminationGracePeriodSeconds: (\d+)/)?.[1]);
    const graceful = Number(manifest.match(/name: CORRAL_GRACEFUL_TIMEOUT\s*\n\s*value: "(\d+)"/)?.[1]);
    const delay = Number(manifest.match(/name: CORRAL_SHUTDOWN_DELAY\s*\n\s*value: "(\d+)"/)?.[1]);
    const preStop = Number(manifest.match(/command: \["sleep", "(\d+)"\]/)?.[1] ?? 0);
    expect(graceful).toBeGreaterThan(0);
    // Traffic keeps coming for a few seconds after SIGTERM: corral's delay covers it (no preStop sleep needed).
    expect(delay).toBeGreaterThan(0);
    expect(grace).toBeGreaterThan(preStop + delay + graceful);
  });
});
