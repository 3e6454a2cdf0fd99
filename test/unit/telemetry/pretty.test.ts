import { describe, expect, it } from 'vitest';
import { createPrettyFormatter } from '../../../src/telemetry/pretty.js';

const MASTER = 4000;
const TRACEBACK = '  File "/srv/app/app.py", line 33\n    def broken(:\n               ^\nSyntaxError: invalid syntax\n';
const HEADLINE = "cannot import the app 'app:app': SyntaxError: invalid syntax (app.py, line 33)";

function formatter(colorize = false) {
  const format = createPrettyFormatter({ colorize, masterPid: MASTER });
  return (record: Record<string, unknown>) => format(JSON.stringify({ time: 1_800_000_000_000, ...record }));
}

/** The records of a reload whose new worker (slot 1, pid 4102) fails on a SyntaxError, as corral writes them. */
function failedReload(pid: number, worker: number): Record<string, unknown>[] {
  const fields = { file: '/srv/app/app.py', line: 33, error: HEADLINE, traceback: TRACEBACK, worker, pid };
  return [
    { level: 50, name: 'corral.worker', msg: `${HEADLINE}\n${TRACEBACK.trimEnd()}`, worker, pid },
    { level: 40, worker, pid, code: 4, signal: null, reason: 'crash', uptime: 0.012, error: HEADLINE, msg: 'new worker exited before it was ready' },
    { level: 50, ...fields, msg: 'rolling restart aborted: a new worker failed to boot; the previous workers keep serving' },
    { level: 50, ...fields, msg: 'reload failed: app.py:33: SyntaxError: invalid syntax; the previous code keeps serving, save again to retry' },
  ];
}

describe('pretty formatter', () => {
  it('prints the level as uvicorn does, then the worker as [slot:pid], then the message', () => {
    const format = formatter();
    expect(format({ level: 30, name: 'uvicorn.error', msg: 'Started server process [4102]', worker: 1, pid: 4102 })).toBe(
      'INFO:     [1:4102] Started server process [4102]\n',
    );
    expect(format({ level: 40, msg: 'x', worker: 2, pid: 9 })).toBe('WARNING:  [2:9] x\n');
    expect(format({ level: 50, msg: 'x', pid: MASTER })).toBe('ERROR:    x\n');
    expect(format({ level: 60, msg: 'x', pid: MASTER })).toBe('CRITICAL: x\n');
    expect(format({ level: 20, msg: 'x', pid: MASTER })).toBe('DEBUG:    x\n');
    expect(format({ level: 10, msg: 'x', pid: MASTER })).toBe('TRACE:    x\n');
  });

  it('prints an access record as uvicorn\'s access line plus the duration, with no fields repeated', () => {
    const line = formatter()({
      level: 30,
      name: 'corral.access',
      msg: '127.0.0.1:55324 - "GET /a?b=1 HTTP/1.1" 404 1.272ms 9B',
      method: 'GET',
      path: '/a?b=1',
      status: 404,
      duration: 1.272,
      client: '127.0.0.1:55324',
      size: 9,
      http_version: '1.1',
      worker: 3,
      pid: 31090,
    });
    expect(line).toBe('INFO:     [3:31090] 127.0.0.1:55324 - "GET /a?b=1 HTTP/1.1" 404 Not Found 1.272ms\n');
  });

  it('colours the level and the status as uvicorn does, only when asked', () => {
    const access = { level: 30, name: 'corral.access', method: 'GET', path: '/', status: 200, duration: 1, client: 'c', worker: 1, pid: 2 };
    expect(formatter(true)(access)).toContain('\x1b[32mINFO:\x1b[0m');
    expect(formatter(true)(access)).toContain('\x1b[32m200 OK\x1b[0m');
    expect(formatter(false)(access)).not.toContain('\x1b[');
  });

  it('shows the master\'s other fields as key=value after the message, leaving out what the message says', () => {
    const line = formatter()({
      level: 30,
      pid: MASTER,
      version: '0.1.0',
      binds: ['127.0.0.1:8000'],
      workers: 2,
      app: 'app:app',
      dirs: [],
      signal: null,
      note: 'two words',
      msg: 'corral 0.1.0 listening on 127.0.0.1:8000',
    });
    expect(line).toBe('INFO:     corral 0.1.0 listening on 127.0.0.1:8000  workers=2 app=app:app note="two words"\n');
  });

  it('names a process that is not a worker by its pid (a standby), and an app\'s logger by its name', () => {
    const format = formatter();
    expect(format({ level: 30, pid: 4200, modules: 284, msg: 'reload: warm standby ready' })).toBe('INFO:     [4200] reload: warm standby ready  modules=284\n');
    expect(format({ level: 30, name: 'myapp.db', msg: 'connected', worker: 1, pid: 4102 })).toBe('INFO:     [1:4102] myapp.db: connected\n');
    expect(format({ level: 40, stream: 'stderr', msg: 'printed', worker: 1, pid: 4102 })).toBe('WARNING:  [1:4102] printed\n');
    // The master's pid on a record about a slot whose process does not exist yet is not the worker's.
    expect(format({ level: 30, worker: 3, workers: 3, pid: MASTER, msg: 'scaling up' })).toBe('INFO:     [3] scaling up  workers=3\n');
  });

  it('prints a failed reload\'s traceback once, with real newlines, and each record on its line', () => {
    const format = formatter();
    const text = failedReload(4102, 1).map(format).join('');
    expect(text).toBe(
      [
        `ERROR:    [1:4102] ${HEADLINE}`,
        TRACEBACK.trimEnd(),
        'WARNING:  [1:4102] new worker exited before it was ready  code=4 reason=crash uptime=0.012',
        'ERROR:    [1:4102] rolling restart aborted: a new worker failed to boot; the previous workers keep serving',
        'ERROR:    [1:4102] reload failed: app.py:33: SyntaxError: invalid syntax; the previous code keeps serving, save again to retry',
        '',
      ].join('\n'),
    );
  });

  it('points to the traceback another worker printed a moment ago instead of printing it again', () => {
    const format = formatter();
    const [first, second] = [failedReload(4102, 1), failedReload(4103, 2)];
    const text = [first[0]!, second[0]!, ...second.slice(1)].map(format).join('');
    expect(text.match(/line 33\n/g)).toHaveLength(1);
    expect(text).toContain(`ERROR:    [2:4103] ${HEADLINE}  (traceback as for [1:4102] above)\n`);
    expect(text).toContain('ERROR:    [2:4103] reload failed: app.py:33: SyntaxError: invalid syntax; the previous code keeps serving, save again to retry\n');
  });

  it('prints a traceback in a field the worker did not print (another sink got its record) in full', () => {
    const [, , aborted] = failedReload(4102, 1);
    const text = formatter()(aborted!);
    expect(text).toBe(
      `ERROR:    [1:4102] rolling restart aborted: a new worker failed to boot; the previous workers keep serving  file=/srv/app/app.py line=33 error="${HEADLINE}"\n${TRACEBACK}`,
    );
  });

  it('prints the same traceback again once it is a while ago', () => {
    const format = createPrettyFormatter({ colorize: false, masterPid: MASTER });
    const record = (time: number, pid: number) => JSON.stringify({ level: 50, time, name: 'corral.worker', msg: `${HEADLINE}\n${TRACEBACK.trimEnd()}`, worker: 1, pid });
    format(record(1_000_000, 4102));
    expect(format(record(1_000_000 + 60_000, 4200))).toContain(TRACEBACK);
  });

  it('prints an exception\'s stack below its message, and a repeat of it by the same worker as a pointer', () => {
    const format = formatter();
    const stack = 'Traceback (most recent call last):\n  File "/srv/app/app.py", line 9, in app\n    1 / 0\nZeroDivisionError: division by zero\n';
    const record = { level: 50, name: 'uvicorn.error', msg: 'Exception in ASGI application', err: { type: 'ZeroDivisionError', message: 'division by zero', stack }, worker: 1, pid: 4102 };
    expect(format(record)).toBe(`ERROR:    [1:4102] Exception in ASGI application\n${stack}`);
    expect(format(record)).toBe('ERROR:    [1:4102] Exception in ASGI application  (traceback as above)\n');
  });

  it('passes a line that is not a JSON record through as it is', () => {
    const format = createPrettyFormatter({ colorize: false, masterPid: MASTER });
    expect(format('corral: plain text')).toBe('corral: plain text\n');
    expect(format('[1,2]')).toBe('[1,2]\n');
  });
});
