import { describe, expect, it } from 'vitest';
import { defaultBind, describeBind, parseBind } from '../../../src/config/bind.js';
import { UsageError } from '../../../src/exit-codes.js';

describe('parseBind', () => {
  it.each([
    ['127.0.0.1:8000', { kind: 'tcp', host: '127.0.0.1', port: 8000, family: 4 }],
    ['0.0.0.0:80', { kind: 'tcp', host: '0.0.0.0', port: 80, family: 4 }],
    [':9000', { kind: 'tcp', host: '0.0.0.0', port: 9000, family: 4 }],
    ['localhost:8080', { kind: 'tcp', host: '127.0.0.1', port: 8080, family: 4 }],
    ['127.0.0.1', { kind: 'tcp', host: '127.0.0.1', port: 8000, family: 4 }],
    ['[::1]:8000', { kind: 'tcp', host: '::1', port: 8000, family: 6 }],
    ['[::]:443', { kind: 'tcp', host: '::', port: 443, family: 6 }],
    ['[::1]', { kind: 'tcp', host: '::1', port: 8000, family: 6 }],
    ['::1', { kind: 'tcp', host: '::1', port: 8000, family: 6 }],
    ['example.internal:81', { kind: 'tcp', host: 'example.internal', port: 81, family: 4 }],
    ['unix:/run/app.sock', { kind: 'unix', path: '/run/app.sock' }],
    ['unix:relative.sock', { kind: 'unix', path: 'relative.sock' }],
    ['fd://3', { kind: 'fd', fd: 3 }],
  ])('%s', (text, expected) => {
    expect(parseBind(text)).toEqual(expected);
  });

  it.each([
    ['', 'empty'],
    ['127.0.0.1:http', 'not a number'],
    ['127.0.0.1:70000', 'out of range'],
    ['[::1:8000', 'no closing bracket'],
    ['[127.0.0.1]:80', 'not an IPv6 address'],
    ['::1:8000:x', 'needs brackets'],
    ['unix:', 'path is empty'],
    ['fd://three', 'not a number'],
    ['bad host:80', 'not an IP address or host name'],
  ])('rejects %j (%s) with a usage error naming the value', (text, why) => {
    expect(() => parseBind(text)).toThrowError(UsageError);
    expect(() => parseBind(text)).toThrowError(why);
    expect(() => parseBind(text)).toThrowError(`--bind ${JSON.stringify(text)}`);
  });

  it('round-trips through describeBind', () => {
    for (const text of ['127.0.0.1:8000', '[::1]:8000', 'unix:/tmp/a.sock', 'fd://4']) {
      expect(describeBind(parseBind(text))).toBe(text);
    }
  });

  it('defaults to 127.0.0.1:8000, or every interface on $PORT', () => {
    expect(defaultBind({})).toBe('127.0.0.1:8000');
    expect(defaultBind({ PORT: '5000' })).toBe('0.0.0.0:5000');
  });
});
