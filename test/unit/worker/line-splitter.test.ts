import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineSplitter, markTruncated } from '../../../src/worker/line-splitter.js';

function collect(limit: number, partialDelayMs?: number) {
  const lines: [string, number][] = [];
  const splitter = new LineSplitter({ limit, ...(partialDelayMs !== undefined ? { partialDelayMs } : {}), onLine: (line, dropped) => lines.push([line, dropped]) });
  return { lines, splitter };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('LineSplitter', () => {
  it('splits lines across pieces and drops the CR of a CRLF', () => {
    const { lines, splitter } = collect(100);
    splitter.push('one\ntw');
    splitter.push('o\r\nthree\n\nfour');
    expect(lines).toEqual([['one', 0], ['two', 0], ['three', 0], ['', 0]]);
    splitter.end();
    expect(lines.at(-1)).toEqual(['four', 0]);
  });

  it('keeps the first `limit` characters of a long line and counts the dropped UTF-8 bytes, across pieces', () => {
    const { lines, splitter } = collect(4);
    splitter.push('abcdé');
    splitter.push('fgh');
    splitter.push('ij\nok\n');
    // 'é' is two bytes: 2 + 3 + 2 dropped.
    expect(lines).toEqual([['abcd', 7], ['ok', 0]]);
    expect(markTruncated('abcd', 7)).toBe('abcd… [truncated 7 bytes]');
  });

  it('never splits a surrogate pair at the limit', () => {
    const { lines, splitter } = collect(2);
    splitter.push('a😀b\n');
    expect(lines).toEqual([['a', 5]]);
  });

  it('emits a partial line after the delay, and its late newline adds no empty line', () => {
    vi.useFakeTimers();
    const { lines, splitter } = collect(100, 150);
    splitter.push('prompt> ');
    vi.advanceTimersByTime(149);
    expect(lines).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(lines).toEqual([['prompt> ', 0]]);
    splitter.push('\nnext\n');
    expect(lines).toEqual([['prompt> ', 0], ['next', 0]]);
  });

  it('emits a line that never ends once per delay, each at most `limit` long', () => {
    vi.useFakeTimers();
    const { lines, splitter } = collect(3, 150);
    splitter.push('x'.repeat(10));
    vi.advanceTimersByTime(150);
    splitter.push('y'.repeat(5));
    vi.advanceTimersByTime(150);
    expect(lines).toEqual([['xxx', 7], ['yyy', 2]]);
  });

  it('waits for the newline without a delay (the record channel)', () => {
    vi.useFakeTimers();
    const { lines, splitter } = collect(100);
    splitter.push('{"level":30');
    vi.advanceTimersByTime(10_000);
    expect(lines).toEqual([]);
    splitter.push('}\n');
    expect(lines).toEqual([['{"level":30}', 0]]);
  });
});
