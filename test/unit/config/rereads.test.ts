import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigRereads } from '../../../src/config/rereads.js';

const log = pino({ level: 'silent' });

/** A re-read the test finishes by hand. */
function controlledRereads() {
  const started: string[] = [];
  const finishers: (() => void)[] = [];
  const signals: AbortSignal[] = [];
  const rereads = new ConfigRereads(
    (reason, signal) =>
      new Promise<void>((resolve) => {
        started.push(reason);
        signals.push(signal);
        finishers.push(resolve);
      }),
    log,
  );
  const finishNext = async () => {
    finishers.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { rereads, started, signals, finishNext };
}

describe('ConfigRereads', () => {
  it('runs one re-read at a time; requests during one make exactly one more', async () => {
    const { rereads, started, finishNext } = controlledRereads();
    rereads.request('SIGHUP');
    rereads.request('SIGHUP');
    rereads.request('control');
    rereads.request('SIGHUP');
    expect(started).toEqual(['SIGHUP']);
    await finishNext();
    expect(started).toEqual(['SIGHUP', 'SIGHUP']);
    await finishNext();
    expect(started).toHaveLength(2);
    rereads.request('control');
    expect(started).toEqual(['SIGHUP', 'SIGHUP', 'control']);
  });

  it('abandons the running re-read on close and starts no more', async () => {
    const { rereads, started, signals, finishNext } = controlledRereads();
    rereads.request('SIGHUP');
    rereads.request('SIGHUP');
    rereads.close();
    expect(signals[0]!.aborted).toBe(true);
    await finishNext();
    rereads.request('SIGHUP');
    expect(started).toEqual(['SIGHUP']);
  });
});
