import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/exit-codes.js';
import { controlSocketForPidFile, parseMetricsBind, resolveControlSocket } from '../../../src/config/telemetry-options.js';
import { parseCommandLine } from '../../../src/config/resolve.js';

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
