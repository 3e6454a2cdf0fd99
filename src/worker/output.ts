import type { LogOutput } from '../telemetry/logger.js';
import { markTruncated } from './line-splitter.js';
import type { Worker, WorkerStream } from './worker.js';

/** How every record of the worker runtime begins (its logs module writes `level` first). */
const RECORD_START = '{"level":';

/**
 * Turns a worker's lines into the master's log records. Whatever the app prints on stdout or stderr is
 * text, wrapped in a record of its own (a line shaped like a record included: it cannot forge one).
 * The runtime's records come on their own channel and pass through unparsed; the master closes each
 * with the worker's slot and pid, so they name the worker the master knows, whatever the record says.
 */
export function routeWorkerOutput(output: LogOutput) {
  const text = (worker: Worker, stream: WorkerStream, line: string, droppedBytes: number): void => {
    const fields = { worker: worker.slot, pid: worker.pid, stream };
    if (stream === 'stdout') output.logger.info(fields, markTruncated(line, droppedBytes));
    else output.logger.warn(fields, markTruncated(line, droppedBytes));
  };
  return (worker: Worker, stream: WorkerStream, line: string, droppedBytes: number): void => {
    if (stream === 'records' && droppedBytes === 0 && line.startsWith(RECORD_START) && line.endsWith('}')) {
      // Appended last: a key the record had already would lose to these in any JSON reader.
      output.writeRecord(`${line.slice(0, -1)},"worker":${worker.slot},"pid":${worker.pid ?? null}}`);
      return;
    }
    // A record over its limit (or not a record at all) is shown as the text it is.
    text(worker, stream, line, droppedBytes);
  };
}

/** A fork server's output, labelled with its generation and pid as a worker's is with its slot. */
export type ForkServerOutput = (server: { generation: number; pid: number | undefined }, stream: WorkerStream, line: string, droppedBytes: number) => void;

export function routeForkServerOutput(output: LogOutput): ForkServerOutput {
  return (server, stream, line, droppedBytes) => {
    if (stream === 'records' && droppedBytes === 0 && line.startsWith(RECORD_START) && line.endsWith('}')) {
      output.writeRecord(`${line.slice(0, -1)},"forkServer":${server.generation},"pid":${server.pid ?? null}}`);
      return;
    }
    const fields = { forkServer: server.generation, pid: server.pid, stream };
    if (stream === 'stdout') output.logger.info(fields, markTruncated(line, droppedBytes));
    else output.logger.warn(fields, markTruncated(line, droppedBytes));
  };
}
