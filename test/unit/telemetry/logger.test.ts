import { describe, expect, it } from 'vitest';
import { ACCESS_RECORD_PREFIX } from '../../../src/telemetry/logger.js';

describe('access record routing', () => {
  it('matches what the worker writes first', async () => {
    const { readFileSync } = await import('node:fs');
    const entry = readFileSync(new URL('../../../src/python/corral_runtime/logs.py', import.meta.url), 'utf8');
    // The worker's record dict starts with these two fields in this order.
    expect(entry).toMatch(/record = \{\n\s+"level": 30,\n\s+"name": ACCESS_LOGGER_NAME,/);
    expect(entry).toContain('ACCESS_LOGGER_NAME = "corral.access"');
    expect(ACCESS_RECORD_PREFIX).toBe('{"level":30,"name":"corral.access"');
  });
});
