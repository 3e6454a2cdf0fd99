import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/exit-codes.js';
import { parseCommandLine, type CorralConfig } from '../../src/options.js';

function run(argv: string[], env: NodeJS.ProcessEnv = {}): CorralConfig {
  const parsed = parseCommandLine(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

describe('parseCommandLine', () => {
  it('has gunicorn and uvicorn defaults', () => {
    const config = run(['app.main:app']);
    expect(config).toMatchObject({
      app: 'app.main:app',
      workers: 1,
      binds: [{ kind: 'tcp', host: '127.0.0.1', port: 8000 }],
      gracefulTimeout: 30,
      timeout: 30,
      accessLog: true,
      factory: false,
      python: 'python3',
    });
    expect(config.uvicorn).toMatchObject({ timeout_keep_alive: 5, backlog: 2048, lifespan: 'auto', loop: 'auto', http: 'auto', proxy_headers: true });
  });

  it('reads WEB_CONCURRENCY, PORT, VIRTUAL_ENV and FORWARDED_ALLOW_IPS', () => {
    const config = run(['app:app'], { WEB_CONCURRENCY: '3', PORT: '5000', VIRTUAL_ENV: '/srv/venv', FORWARDED_ALLOW_IPS: '*' });
    expect(config.workers).toBe(3);
    expect(config.binds).toEqual([{ kind: 'tcp', host: '0.0.0.0', port: 5000, family: 4 }]);
    expect(config.python).toBe('/srv/venv/bin/python');
    expect(config.uvicorn.forwarded_allow_ips).toBe('*');
  });

  it('lets the command line win over the environment', () => {
    const config = run(['-w', '2', '-b', '127.0.0.1:9000', '--python', '/usr/bin/python3', 'app:app'], { WEB_CONCURRENCY: '8', PORT: '5000' });
    expect(config.workers).toBe(2);
    expect(config.binds).toHaveLength(1);
    expect(config.python).toBe('/usr/bin/python3');
  });

  it('takes repeated binds and uvicorn pass-through options', () => {
    const config = run([
      '-b', '127.0.0.1:8000', '--bind', 'unix:/tmp/x.sock', '--keep-alive', '10', '--no-proxy-headers',
      '--root-path', '/api', '--limit-concurrency', '100', '--http', 'h11', '--loop', 'asyncio', '--ws', 'none',
      '--lifespan', 'off', '--ssl-keyfile', 'k.pem', '--ssl-certfile', 'c.pem', '--no-access-log', '--factory', 'app:create',
    ]);
    expect(config.binds.map((bind) => bind.kind)).toEqual(['tcp', 'unix']);
    expect(config.accessLog).toBe(false);
    expect(config.factory).toBe(true);
    expect(config.uvicorn).toMatchObject({
      timeout_keep_alive: 10, proxy_headers: false, root_path: '/api', limit_concurrency: 100, http: 'h11',
      loop: 'asyncio', ws: 'none', lifespan: 'off', ssl_keyfile: 'k.pem', ssl_certfile: 'c.pem',
    });
  });

  it('takes the last value of a single-valued option given twice', () => {
    expect(run(['-w', '2', '-w', '5', 'app:app']).workers).toBe(5);
  });

  it('parses sizes and recycling limits', () => {
    const config = run(['--max-memory', '512M', '--max-requests', '1000', '--max-requests-jitter', '50', '--max-worker-lifetime', '3600', 'app:app']);
    expect(config.maxMemory).toBe(512 * 1024 * 1024);
    expect(config.maxRequests).toBe(1000);
    expect(config.maxRequestsJitter).toBe(50);
    expect(config.maxWorkerLifetime).toBe(3600);
  });

  it('answers --help and --version', () => {
    const help = parseCommandLine(['--help'], {});
    expect(help.kind).toBe('help');
    if (help.kind === 'help') expect(help.text).toContain('--workers');
    expect(parseCommandLine(['--version'], {}).kind).toBe('version');
  });

  it.each([
    [['--bogus', 'app:app'], 'Unknown argument: bogus'],
    [['app:app', 'other:app'], 'one APP expected'],
    [[], 'no APP given'],
    [['app'], 'expected module:attribute'],
    [['-w', '0', 'app:app'], '--workers "0": expected a whole number of 1 or more'],
    [['-w', 'many', 'app:app'], '--workers "many"'],
    [['--graceful-timeout', '-1', 'app:app'], '--graceful-timeout -1'],
    [['--loop', 'trio', 'app:app'], 'Invalid values'],
    [['--max-memory', 'lots', 'app:app'], '--max-memory "lots"'],
    [['--umask', '999', 'app:app'], '--umask "999"'],
    [['-b', 'nowhere:port', 'app:app'], '--bind "nowhere:port"'],
  ])('rejects %j with a usage error: %s', (argv, message) => {
    expect(() => parseCommandLine(argv, {})).toThrowError(UsageError);
    expect(() => parseCommandLine(argv, {})).toThrowError(message);
  });

  it('rejects a bad WEB_CONCURRENCY by name', () => {
    expect(() => parseCommandLine(['app:app'], { WEB_CONCURRENCY: 'x' })).toThrowError('--workers "x"');
  });
});
