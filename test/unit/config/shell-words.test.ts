import { describe, expect, it } from 'vitest';
import { shellWords } from '../../../src/config/shell-words.js';
import { usageError } from '../../helpers/errors.js';

describe('shell words of GUNICORN_CMD_ARGS', () => {
  it('splits like shlex.split', () => {
    expect(shellWords(`--workers=3 -b '0.0.0.0:80' --access-logformat "%(h)s \\"%(r)s\\"" a\\ b`, 'x')).toEqual([
      '--workers=3',
      '-b',
      '0.0.0.0:80',
      '--access-logformat',
      '%(h)s "%(r)s"',
      'a b',
    ]);
    expect(usageError(() => shellWords('-b "oops', '$GUNICORN_CMD_ARGS'))).toContain('unclosed " quote');
  });
});
