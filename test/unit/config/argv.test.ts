import { describe, expect, it } from 'vitest';
import { parseArgv } from '../../../src/config/argv.js';
import { usageError } from '../../helpers/errors.js';

describe('argv forms gunicorn and uvicorn accept', () => {
  it('reads attached, separate and = values, and "-" as a value', () => {
    const parsed = parseArgv(['-w4', '-b0.0.0.0:80', '--bind=[::]:80', '-t', '90', '--access-logfile', '-', 'app:app', '--preload']);
    expect(parsed.positionals).toEqual(['app:app']);
    expect(parsed.options.map((option) => [option.setting.name, option.value])).toEqual([
      ['workers', '4'],
      ['bind', '0.0.0.0:80'],
      ['bind', '[::]:80'],
      ['timeout', '90'],
      ['accesslog', '-'],
      ['preload_app', true],
    ]);
  });

  it('names an unknown option and the one meant', () => {
    expect(usageError(() => parseArgv(['--wrokers', '2']))).toBe('command line: unknown option --wrokers (did you mean --workers?); see corral --help');
  });

  it('refuses a value on a flag and a missing value', () => {
    expect(usageError(() => parseArgv(['--preload=yes']))).toContain('--preload takes no value');
    expect(usageError(() => parseArgv(['app:app', '--workers']))).toBe('command line: --workers needs a value');
  });
});
