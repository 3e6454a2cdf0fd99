import { describe, expect, it } from 'vitest';
import { parseControlCommand } from '../../../src/control/client.js';
import { UsageError } from '../../../src/exit-codes.js';

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
