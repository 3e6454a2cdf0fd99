import { describe, expect, it } from 'vitest';
import { editDistance, suggestName } from '../../../src/config/misspelling.js';

describe('misspellings', () => {
  it('uses the table, then a distance that shrinks with the name', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(suggestName('preload', ['preload_app', 'workers'])).toBe('preload_app');
    expect(suggestName('wokers', ['workers', 'timeout'])).toBe('workers');
    expect(suggestName('host', ['user', 'bind'])).toBeUndefined();
    expect(suggestName('workers', ['workers'])).toBeUndefined();
  });
});
