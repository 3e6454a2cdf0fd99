import { expect } from 'vitest';
import { UsageError } from '../../src/exit-codes.js';

/** The message of the UsageError `action` throws; the test fails, saying so, when it throws nothing or something else. */
export function usageError(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  return expect.fail('expected a UsageError, and nothing was thrown');
}
