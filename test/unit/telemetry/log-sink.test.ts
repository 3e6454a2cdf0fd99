import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogSink, type SinkReporter } from '../../../src/telemetry/log-sink.js';
import type { Writer } from '../../../src/telemetry/log-writers.js';

/** A writer the test steers: each write waits until the test ends it, with or without an error. */
class HeldWriter implements Writer {
  readonly kind = 'stream';
  readonly broken = false;
  readonly writes: string[] = [];
  private pending: ((error?: Error) => void) | undefined;

  write(data: string, done: (error?: Error) => void): void {
    this.writes.push(data);
    this.pending = done;
  }

  /** Ends the write in flight. */
  finish(error?: Error): void {
    const done = this.pending;
    this.pending = undefined;
    done?.(error);
  }

  get inFlight(): boolean {
    return this.pending !== undefined;
  }

  writeNow(): void {}
  close(): void {}
}

interface Said {
  warnings: string[];
  recoveries: { dropped: number; why: string }[];
}

function sinkWith(writer: Writer, limit = 100): { sink: LogSink; said: Said } {
  const said: Said = { warnings: [], recoveries: [] };
  const reporter: SinkReporter = {
    warn: (_sink, text) => said.warnings.push(text),
    recovered: (_sink, dropped, why) => said.recoveries.push({ dropped, why }),
  };
  return { sink: new LogSink({ name: 'stdout', description: 'stdout', writer, reporter, limit }), said };
}

/** A record of `size` characters with its newline. */
const record = (size: number, fill = 'x') => `${fill.repeat(size - 1)}\n`;

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('LogSink', () => {
  it('gathers the records of a moment into one write, and adds the newline a worker line lacks', async () => {
    const writer = new HeldWriter();
    const { sink } = sinkWith(writer);
    sink.write('{"a":1}\n');
    sink.write('{"b":2}');
    expect(writer.writes).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    expect(writer.writes).toEqual(['{"a":1}\n{"b":2}\n']);
  });

  it('holds at most its limit while the writer is stuck, drops and counts the rest with one warning, and says how many were lost once it drains', async () => {
    const writer = new HeldWriter();
    const { sink, said } = sinkWith(writer, 100);
    sink.write(record(40));
    await vi.advanceTimersByTimeAsync(20);
    expect(writer.inFlight).toBe(true);
    // 40 in flight + 2 × 30 queued = 100: the limit; every record after that is dropped.
    for (let index = 0; index < 5; index += 1) sink.write(record(30));
    expect(sink.dropped).toBe(3);
    expect(said.warnings).toEqual(['stdout is not being read: 100 bytes of log records wait; newer records are dropped until it drains (counted in corral_log_records_dropped_total{sink="stdout"})']);

    writer.finish();
    await vi.advanceTimersByTimeAsync(20);
    expect(writer.writes[1]).toBe(record(30) + record(30));
    // 60 bytes still wait, more than half the limit: not drained yet.
    expect(said.recoveries).toEqual([]);
    writer.finish();
    expect(said.recoveries).toEqual([{ dropped: 3, why: 'was not read fast enough' }]);
    sink.write(record(30));
    expect(sink.dropped).toBe(3);
    expect(said.warnings).toHaveLength(1);
  });

  it('after a write error drops what comes until it retries, warns once however often it fails, and reports the loss when a write succeeds', async () => {
    const writer = new HeldWriter();
    const { sink, said } = sinkWith(writer, 1000);
    sink.write(record(10));
    sink.write(record(10));
    await vi.advanceTimersByTimeAsync(20);
    sink.write(record(10));
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    writer.finish(full);
    // The two records of the failed write and the one that waited are lost.
    expect(sink.dropped).toBe(3);
    expect(said.warnings).toEqual([
      'stdout cannot be written (ENOSPC: no space left on device, write); log records are dropped until it can be written again (counted in corral_log_records_dropped_total{sink="stdout"})',
    ]);
    sink.write(record(10));
    expect(sink.dropped).toBe(4);
    expect(writer.writes).toHaveLength(1);

    // The retry writes what arrives after it; it fails again: no second warning.
    await vi.advanceTimersByTimeAsync(1000);
    sink.write(record(10, 'a'));
    await vi.advanceTimersByTimeAsync(20);
    expect(writer.writes[1]).toBe(record(10, 'a'));
    writer.finish(full);
    expect(sink.dropped).toBe(5);
    expect(said.warnings).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(1000);
    sink.write(record(10, 'b'));
    await vi.advanceTimersByTimeAsync(20);
    writer.finish();
    expect(said.recoveries).toEqual([{ dropped: 5, why: 'could not be written (ENOSPC: no space left on device, write)' }]);
  });

  it('idle() resolves once the queue is written, at once for a failed sink, and never for a stuck one (the caller bounds it)', async () => {
    const writer = new HeldWriter();
    const { sink } = sinkWith(writer, 1000);
    await expect(sink.idle()).resolves.toBeUndefined();

    sink.write(record(10));
    let idle = false;
    void sink.idle().then(() => (idle = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(writer.inFlight).toBe(true);
    expect(idle).toBe(false);
    writer.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(idle).toBe(true);

    sink.write(record(10));
    await vi.advanceTimersByTimeAsync(20);
    writer.finish(new Error('EIO: i/o error, write'));
    await expect(sink.idle()).resolves.toBeUndefined();
  });
});
