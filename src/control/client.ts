import net from 'node:net';
import yargs from 'yargs';
import type { ControlReply, ControlRequest } from './protocol.js';
import { CorralError, ExitCode, UsageError, type ExitCodeValue } from '../exit-codes.js';
import { controlSocketForPidFile } from '../config/telemetry-options.js';
import { formatStatusTable, type StatusReport } from './status.js';

import type { ControlCommand } from './commands.js';

interface ClientInvocation {
  socket: string;
  request: ControlRequest;
  json: boolean;
  wait: boolean;
}

const USAGE = `Usage: corral COMMAND (--control-socket PATH | --pid FILE) [options]

Talks to a running corral through its control socket.
  corral status [--json]   the workers: slot, pid, state, age, requests, CPU %, USS, PSS, restarts
  corral reload            rolling restart with the configuration re-read (as SIGHUP)
  corral scale N           run N workers (as TTIN/TTOU)
  corral stop [--quick]    graceful stop (as TERM; --quick: as INT), waiting for the exit`;

/** Parses `corral status|reload|scale|stop …`. Pure: throws UsageError. */
export function parseControlCommand(argv: readonly string[]): ClientInvocation | { help: string } {
  const command = argv[0] as ControlCommand;
  const parser = yargs([...argv.slice(1)])
    .scriptName(`corral ${command}`)
    .usage(USAGE)
    .options({
      'control-socket': { type: 'string', describe: 'The control socket of the corral to talk to' },
      pid: { alias: 'p', type: 'string', describe: 'The pid file of the corral to talk to (its control socket is next to it)' },
      json: { type: 'boolean', default: false, describe: 'status: print the status as JSON' },
      quick: { type: 'boolean', default: false, describe: 'stop: quick stop instead of graceful' },
      wait: { type: 'boolean', default: true, describe: 'stop: wait until corral has exited (--no-wait to return at once)' },
    })
    .strictOptions()
    .help(false)
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parserConfiguration({ 'camel-case-expansion': false })
    .fail((message, error) => {
      throw new UsageError(`corral ${command}: ${error?.message ?? message}`);
    });
  if (argv.includes('--help') || argv.includes('-h')) {
    let text = USAGE;
    parser.showHelp((help: string) => (text = help));
    return { help: text };
  }
  const args = parser.parseSync();
  const positionals = args._.map(String);
  const socketOption = args['control-socket'];
  const pidOption = args.pid;
  const last = <T>(value: T | T[]): T => (Array.isArray(value) ? value[value.length - 1]! : value);
  const socketPath = socketOption !== undefined ? last(socketOption) : pidOption !== undefined ? controlSocketForPidFile(last(pidOption)) : undefined;
  if (socketPath === undefined || socketPath === '') {
    throw new UsageError(`corral ${command}: no corral named: pass --control-socket PATH or --pid FILE`);
  }
  const expectArguments = (count: number, what: string) => {
    if (positionals.length !== count) {
      throw new UsageError(`corral ${command}: ${count === 0 ? 'takes no arguments' : `expected ${what}`}, got ${JSON.stringify(positionals.join(' '))}`);
    }
  };
  let request: ControlRequest;
  switch (command) {
    case 'scale': {
      expectArguments(1, 'the number of workers, e.g. corral scale 4 --pid corral.pid');
      const text = positionals[0]!;
      const workers = Number(text);
      if (!/^\d+$/.test(text) || workers < 1 || workers > 10_000) {
        throw new UsageError(`corral scale ${JSON.stringify(text)}: expected a whole number of workers from 1 to 10000`);
      }
      request = { command, workers };
      break;
    }
    case 'stop':
      expectArguments(0, '');
      request = { command, mode: args.quick ? 'quick' : 'graceful' };
      break;
    default:
      expectArguments(0, '');
      request = { command } as ControlRequest;
  }
  return { socket: socketPath, request, json: args.json, wait: args.wait };
}

function connect(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const hint = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? ' (is corral running, with this control socket?)' : '';
      reject(new CorralError(`cannot reach corral at ${path}: ${error.code ?? error.message}${hint}`, ExitCode.runtime));
    });
  });
}

/** Sends one request; resolves with the reply and a promise of the connection's end. */
async function ask(path: string, request: ControlRequest): Promise<{ reply: ControlReply; closed: Promise<void> }> {
  const socket = await connect(path);
  socket.setEncoding('utf8');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reply = await new Promise<ControlReply>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      socket.off('data', onData);
      try {
        resolve(JSON.parse(buffered.slice(0, newline)) as ControlReply);
      } catch {
        reject(new CorralError(`corral at ${path} sent a reply that is not JSON`, ExitCode.runtime));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new CorralError(`corral at ${path} closed the connection without a reply`, ExitCode.runtime)));
    socket.write(`${JSON.stringify(request)}\n`);
  });
  return { reply, closed: closed.finally(() => socket.destroy()) };
}

/** Runs `corral status|reload|scale|stop`; resolves with the exit code. */
export async function runControlCommand(argv: readonly string[]): Promise<ExitCodeValue> {
  try {
    const invocation = parseControlCommand(argv);
    if ('help' in invocation) {
      process.stdout.write(`${invocation.help}\n`);
      return ExitCode.ok;
    }
    const { reply, closed } = await ask(invocation.socket, invocation.request);
    if (!reply.ok) throw new CorralError(`corral refused ${invocation.request.command}: ${reply.error}`, ExitCode.runtime);
    if (invocation.request.command === 'status') {
      const status = reply.status as StatusReport;
      process.stdout.write(invocation.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatusTable(status)}\n`);
    } else {
      process.stdout.write(`corral: ${String(reply.message)}\n`);
    }
    if (invocation.request.command === 'stop' && invocation.wait) {
      // The master closes this connection once every worker has exited.
      await closed;
      process.stdout.write('corral: stopped\n');
    }
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CorralError) {
      process.stderr.write(`corral: error: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
