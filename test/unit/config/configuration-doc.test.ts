import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLAGS, SETTINGS } from '../../../src/config/settings-table.js';
import { ROOT } from '../../helpers/corral.js';

describe('docs/configuration.md', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');

  it('lists every setting and every flag corral accepts', () => {
    const missingFlags = [...FLAGS.keys()].filter((flag) => !doc.includes(`\`${flag}\``));
    expect(missingFlags).toEqual([]);
    const missingNames = SETTINGS.filter((setting) => setting.type !== 'hook' && !setting.notInFile).map((s) => s.name).filter((name) => !doc.includes(`\`${name}\``));
    expect(missingNames).toEqual([]);
  });
});
