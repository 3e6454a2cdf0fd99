import { describe, expect, it } from 'vitest';
import { parseControlRequest } from '../../../src/control/protocol.js';

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
