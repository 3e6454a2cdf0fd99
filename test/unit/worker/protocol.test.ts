import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../../src/exit-codes.js';
import {
  CHANNEL_STREAMS,
  EXIT_CODES,
  FORK_SERVER_MESSAGES,
  FORK_SERVER_REQUESTS,
  MASTER_MESSAGES,
  parseForkServerMessage,
  parseWorkerMessage,
  WORKER_MESSAGES,
} from '../../../src/worker/protocol.js';
import { ROOT, VENV_PYTHON } from '../../helpers/corral.js';

/** The Python runtime's protocol module, as JSON: what the worker side believes the contract is. */
const PYTHON_DUMP = [
  'import json, sys',
  "sys.path.insert(0, 'src/python')",
  'from corral_runtime import protocol as p',
  "print(json.dumps({'worker': {k: list(v) for k, v in p.WORKER_MESSAGES.items()}, 'master': {k: list(v) for k, v in p.MASTER_MESSAGES.items()}, 'exit': p.EXIT_CODES,",
  "  'forkServer': {k: list(v) for k, v in p.FORK_SERVER_MESSAGES.items()}, 'forkRequests': {k: list(v) for k, v in p.FORK_SERVER_REQUESTS.items()}, 'streams': list(p.CHANNEL_STREAMS)}))",
].join('\n');

interface Contract {
  worker: Record<string, readonly string[]>;
  master: Record<string, readonly string[]>;
  exit: Record<string, number>;
  forkServer: Record<string, readonly string[]>;
  forkRequests: Record<string, readonly string[]>;
  streams: readonly string[];
}

const typescript: Contract = {
  worker: WORKER_MESSAGES,
  master: MASTER_MESSAGES,
  exit: EXIT_CODES,
  forkServer: FORK_SERVER_MESSAGES,
  forkRequests: FORK_SERVER_REQUESTS,
  streams: CHANNEL_STREAMS,
};

describe('the control-channel protocol', () => {
  it('is the same in src/worker/protocol.ts and corral_runtime/protocol.py: message names, fields and exit codes', () => {
    const python = JSON.parse(execFileSync(VENV_PYTHON, ['-c', PYTHON_DUMP], { cwd: ROOT, encoding: 'utf8' })) as Contract;
    expect(typescript.worker).toEqual(python.worker);
    expect(typescript.master).toEqual(python.master);
    expect(typescript.exit).toEqual(python.exit);
  });

  it('is the same for the fork server: its messages, the requests it takes, and a forked worker\'s channel streams', () => {
    const python = JSON.parse(execFileSync(VENV_PYTHON, ['-c', PYTHON_DUMP], { cwd: ROOT, encoding: 'utf8' })) as Contract;
    expect(typescript.forkServer).toEqual(python.forkServer);
    expect(typescript.forkRequests).toEqual(python.forkRequests);
    expect(typescript.streams).toEqual(python.streams);
    expect(parseForkServerMessage('{"type":"forked","pid":12,"token":"t"}')).toEqual({ type: 'forked', pid: 12, token: 't' });
    expect(parseForkServerMessage('{"type":"heartbeat"}')).toBeUndefined();
  });

  it('lists each message’s fields sorted, so the two sides compare as lists', () => {
    for (const fields of [...Object.values(WORKER_MESSAGES), ...Object.values(MASTER_MESSAGES), ...Object.values(FORK_SERVER_MESSAGES), ...Object.values(FORK_SERVER_REQUESTS)]) {
      expect([...fields]).toEqual([...fields].sort());
    }
  });

  it('gives the master its exit codes 3 and 4', () => {
    expect(ExitCode.bootFailure).toBe(EXIT_CODES.boot_failure);
    expect(ExitCode.appLoadFailure).toBe(EXIT_CODES.app_load_failure);
  });

  it('reads only the worker messages of the table', () => {
    expect(parseWorkerMessage('{"type":"heartbeat","requests":3,"connections":1}')).toEqual({ type: 'heartbeat', requests: 3, connections: 1 });
    expect(parseWorkerMessage('{"type":"loaded","seconds":0.1}')).toBeUndefined();
    expect(parseWorkerMessage('{"type":"toString"}')).toBeUndefined();
    expect(parseWorkerMessage('not json')).toBeUndefined();
    expect(parseWorkerMessage('null')).toBeUndefined();
  });
});
