import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { parseControlCommand } from '../../src/control/client.js';
import { parseControlRequest } from '../../src/control/protocol.js';
import { UsageError } from '../../src/exit-codes.js';
import { ACCESS_RECORD_PREFIX } from '../../src/telemetry/logger.js';
import { isReady } from '../../src/telemetry/observability.js';
import { controlSocketForPidFile, parseMetricsBind, resolveControlSocket } from '../../src/config/telemetry-options.js';
import { parseCommandLine } from '../../src/config/resolve.js';
import { RestartLedger } from '../../src/supervisor/restart-ledger.js';
import { formatAge, formatStatusTable, type StatusReport } from '../../src/control/status.js';
import type { Worker } from '../../src/worker/worker.js';
import { parsePrometheusText, samplesOf } from '../helpers/prometheus.js';

describe('control requests', () => {
  it('accepts the four commands', () => {
    expect(parseControlRequest('{"command":"status"}')).toEqual({ request: { command: 'status' } });
    expect(parseControlRequest('{"command":"reload"}')).toEqual({ request: { command: 'reload' } });
    expect(parseControlRequest('{"command":"scale","workers":4}')).toEqual({ request: { command: 'scale', workers: 4 } });
    expect(parseControlRequest('{"command":"stop"}')).toEqual({ request: { command: 'stop', mode: 'graceful' } });
    expect(parseControlRequest('{"command":"stop","mode":"quick"}')).toEqual({ request: { command: 'stop', mode: 'quick' } });
  });

  it.each([
    ['garbage', 'malformed request'],
    ['"status"', 'expected a JSON object'],
    ['null', 'expected a JSON object'],
    ['{"command":"restart"}', 'unknown command "restart"'],
    ['{"cmd":"status"}', 'unknown command undefined'],
    ['{"command":"status","verbose":true}', 'unknown field "verbose"'],
    ['{"command":"scale"}', 'workers undefined'],
    ['{"command":"scale","workers":0}', 'workers 0'],
    ['{"command":"scale","workers":2.5}', 'workers 2.5'],
    ['{"command":"scale","workers":"3"}', 'workers "3"'],
    ['{"command":"stop","mode":"kill"}', 'mode "kill"'],
  ])('refuses %s', (line, message) => {
    const parsed = parseControlRequest(line);
    expect('error' in parsed && parsed.error).toContain(message);
  });
});

describe('corral status|reload|scale|stop command line', () => {
  it('finds the socket from --pid or --control-socket', () => {
    expect(parseControlCommand(['status', '--pid', '/run/app.pid'])).toMatchObject({ socket: '/run/app.control.sock', request: { command: 'status' }, json: false });
    expect(parseControlCommand(['status', '--json', '--control-socket', '/tmp/c.sock'])).toMatchObject({ socket: '/tmp/c.sock', json: true });
    expect(parseControlCommand(['scale', '3', '-p', 'x.pid'])).toMatchObject({ request: { command: 'scale', workers: 3 } });
    expect(parseControlCommand(['stop', '--quick', '--pid', 'x.pid'])).toMatchObject({ request: { command: 'stop', mode: 'quick' }, wait: true });
    expect(parseControlCommand(['stop', '--no-wait', '--pid', 'x.pid'])).toMatchObject({ wait: false });
  });

  it.each([
    [['status'], '--control-socket PATH or --pid FILE'],
    [['scale', '--pid', 'x.pid'], 'expected the number of workers'],
    [['scale', '0', '--pid', 'x.pid'], 'corral scale "0"'],
    [['scale', 'three', '--pid', 'x.pid'], 'corral scale "three"'],
    [['reload', 'now', '--pid', 'x.pid'], 'takes no arguments'],
    [['status', '--verbose', '--pid', 'x.pid'], 'verbose'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseControlCommand(argv)).toThrow(UsageError);
    expect(() => parseControlCommand(argv)).toThrow(message);
  });
});

describe('observability options', () => {
  it('parses --metrics-bind', () => {
    expect(parseMetricsBind('0.0.0.0:9100')).toEqual({ host: '0.0.0.0', port: 9100, family: 4 });
    expect(parseMetricsBind('[::1]:9100')).toEqual({ host: '::1', port: 9100, family: 6 });
    expect(parseMetricsBind('localhost:9100')).toEqual({ host: '127.0.0.1', port: 9100, family: 4 });
  });

  it.each(['9100x', 'localhost', 'unix:/tmp/m.sock', 'host:99999', '::1:9100'])('refuses --metrics-bind %s naming the option', (value) => {
    expect(() => parseMetricsBind(value)).toThrow(UsageError);
    expect(() => parseMetricsBind(value)).toThrow(`--metrics-bind ${JSON.stringify(value)}`);
  });

  it('derives the control socket from the pid file, and refuses a path too long for a unix socket', () => {
    expect(controlSocketForPidFile('/run/corral.pid')).toBe('/run/corral.control.sock');
    expect(controlSocketForPidFile('/run/corral')).toBe('/run/corral.control.sock');
    expect(resolveControlSocket(undefined, undefined)).toBeUndefined();
    expect(resolveControlSocket('/tmp/c.sock', '/run/corral.pid')).toBe('/tmp/c.sock');
    expect(resolveControlSocket(undefined, '/run/corral.pid')).toBe('/run/corral.control.sock');
    expect(() => resolveControlSocket(`/tmp/${'x'.repeat(120)}`, undefined)).toThrow('--control-socket');
  });

  it('is all off by default, and reaches the configuration', () => {
    const defaults = parseCommandLine(['app:app'], {});
    expect(defaults.kind === 'run' && defaults.config).toMatchObject({ metricsBind: undefined, controlSocket: undefined, accessLogFile: undefined, errorLogFile: undefined });
    const given = parseCommandLine(['--metrics-bind', '127.0.0.1:9100', '--pid', '/tmp/a.pid', '--access-logfile', '-', '--error-logfile', 'e.log', 'app:app'], {});
    expect(given.kind === 'run' && given.config).toMatchObject({
      metricsBind: { host: '127.0.0.1', port: 9100 },
      controlSocket: '/tmp/a.control.sock',
      accessLogFile: '-',
      errorLogFile: 'e.log',
    });
    expect(() => parseCommandLine(['--access-logfile', '', 'app:app'], {})).toThrow('--access-logfile ""');
  });
});

describe('corral status table', () => {
  const report: StatusReport = {
    version: '0.1.0',
    pid: 100,
    uptimeSeconds: 3725,
    workersWanted: 2,
    stopping: false,
    workers: [
      { slot: 1, pid: 101, state: 'ready', generation: 1, startedAt: 0, ageSeconds: 3720, requests: 15321, connections: 2, cpuPercent: 3.25, rssBytes: 52_428_800, restarts: 0 },
      { slot: 2, pid: 2345, state: 'booting', generation: 1, startedAt: 0, ageSeconds: 4, requests: 0, connections: 0, cpuPercent: null, rssBytes: null, restarts: 3 },
    ],
  };

  it('has one row per worker under the header, numbers right-aligned', () => {
    const lines = formatStatusTable(report).split('\n');
    expect(lines[0]).toBe('corral 0.1.0, master pid 100, up 1h02m, 1 of 2 workers ready');
    expect(lines[1]).toBe('SLOT   PID  STATE    AGE    REQUESTS  CPU %       RSS  RESTARTS');
    expect(lines[2]).toBe('1      101  ready    1h02m     15321    3.3  50.0 MiB         0');
    expect(lines[3]).toBe('2     2345  booting  4s            0      -         -         3');
    expect(lines).toHaveLength(4);
  });

  it('formats ages with two units', () => {
    expect([0, 59.9, 60, 3599, 3600, 86399, 90000].map(formatAge)).toEqual(['0s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '1d01h']);
  });
});

describe('restart ledger', () => {
  function fakeWorker(slot: number, stopReason?: string): Worker {
    return { slot, stopReason } as unknown as Worker;
  }

  it('counts exits while running, by slot and reason, but not shutdown or scale-down', () => {
    const arbiter = Object.assign(new EventEmitter(), { stopping: false });
    const ledger = new RestartLedger(arbiter as never);
    const seen: string[] = [];
    ledger.onRestart((reason) => seen.push(reason));
    arbiter.emit('worker-exit', fakeWorker(1), { code: 1, signal: null });
    arbiter.emit('worker-exit', fakeWorker(1), { code: null, signal: 'SIGKILL' });
    arbiter.emit('worker-exit', fakeWorker(2, 'max-requests'), { code: 0, signal: null });
    arbiter.emit('worker-exit', fakeWorker(2, 'scale-down'), { code: 0, signal: null });
    arbiter.stopping = true;
    arbiter.emit('worker-exit', fakeWorker(1), { code: 1, signal: null });
    expect(seen).toEqual(['crash', 'signal', 'max-requests']);
    expect(ledger.restartsOf(1)).toBe(2);
    expect(ledger.restartsOf(2)).toBe(1);
    expect(ledger.restartsOf(3)).toBe(0);
  });
});

describe('/readyz', () => {
  const arbiter = (stopping: boolean, states: string[]) => ({ stopping, liveWorkers: () => states.map((state) => ({ state }) as Worker) });
  it('is ready with a ready worker and not stopping', () => {
    expect(isReady(arbiter(false, []))).toBe(false);
    expect(isReady(arbiter(false, ['booting']))).toBe(false);
    expect(isReady(arbiter(false, ['booting', 'ready']))).toBe(true);
    expect(isReady(arbiter(true, ['ready']))).toBe(false);
  });
});

describe('access record routing', () => {
  it('matches what the worker writes first', async () => {
    const { readFileSync } = await import('node:fs');
    const entry = readFileSync(new URL('../../src/python/corral_runtime/logs.py', import.meta.url), 'utf8');
    // The worker's record dict starts with these two fields in this order.
    expect(entry).toMatch(/record = \{\n\s+"level": 30,\n\s+"name": ACCESS_LOGGER_NAME,/);
    expect(entry).toContain('ACCESS_LOGGER_NAME = "corral.access"');
    expect(ACCESS_RECORD_PREFIX).toBe('{"level":30,"name":"corral.access"');
  });
});

describe('the test helpers: Prometheus text parser', () => {
  it('parses families, labels with escapes and histogram samples', () => {
    const families = parsePrometheusText(
      [
        '# HELP a_total Things.',
        '# TYPE a_total counter',
        'a_total{reason="x\\"y",b="2"} 3',
        '# HELP h Latency.',
        '# TYPE h histogram',
        'h_bucket{le="0.5"} 1',
        'h_bucket{le="+Inf"} 2',
        'h_sum 0.7',
        'h_count 2',
        '# HELP m Mean.',
        '# TYPE m gauge',
        'm Nan',
        '',
      ].join('\n'),
    );
    expect(samplesOf(families, 'a_total', { reason: 'x"y' })[0]?.value).toBe(3);
    expect(samplesOf(families, 'h_bucket', { le: '+Inf' })[0]?.value).toBe(2);
    expect(samplesOf(families, 'h_count')[0]?.value).toBe(2);
    expect(samplesOf(families, 'm')[0]?.value).toBeNaN();
  });

  it.each(['orphan 1', '# TYPE a counter\na{b=1} 2', '# TYPE a counter\na nope', '# TYPE a bogus'])('rejects %j', (text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
