import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/resolve.js';
import { FLAGS, SETTINGS } from '../../../src/config/settings-table.js';

function help(): string {
  const parsed = parseCommandLine(['--help'], {});
  if (parsed.kind !== 'help') throw new Error(`expected help, got ${parsed.kind}`);
  return parsed.text;
}

/** The help's groups: each `Title:` line with the option lines under it (first flag of each). */
function groups(text: string): { title: string; options: string[] }[] {
  const found: { title: string; options: string[] }[] = [];
  for (const line of text.split('\n')) {
    const title = /^(\S.*):$/.exec(line)?.[1];
    if (title !== undefined) found.push({ title, options: [] });
    else if (found.length > 0 && /^ {2}-/.test(line)) found.at(-1)!.options.push(line.trim().split(/[ ,]/)[0]!);
  }
  return found;
}

describe('corral --help', () => {
  it("is grouped as gunicorn documents its settings, most used first", () => {
    const found = groups(help());
    expect(found.map((group) => group.title)).toEqual([
      'Config and app',
      'Server socket',
      'Workers',
      'Restarts and recycling',
      'Logging, metrics and control',
      'Security',
      'Reload (development)',
      'uvicorn',
    ]);
    const first = Object.fromEntries(found.map((group) => [group.title, group.options[0]]));
    expect(first).toMatchObject({
      'Config and app': '-c',
      'Server socket': '-b',
      Workers: '-w',
      'Restarts and recycling': '--max-requests',
      'Logging, metrics and control': '--log-level',
      Security: '-u',
      'Reload (development)': '--reload',
      uvicorn: '--http',
    });
  });

  it('lists every setting corral takes on the command line exactly once, and the unsupported ones on the last line', () => {
    const text = help();
    const listed = groups(text).flatMap((group) => group.options);
    const expected = SETTINGS.filter((setting) => setting.support !== 'unsupported')
      .map((setting) => [...FLAGS].find(([, target]) => target.setting === setting)?.[0])
      .filter((flag): flag is string => flag !== undefined);
    expect([...listed].sort()).toEqual([...expected].sort());
    expect(new Set(listed).size).toBe(listed.length);
    const lastLine = text.split('\n').at(-1)!;
    expect(lastLine).toMatch(/^Accepted but not supported/);
    for (const setting of SETTINGS.filter((s) => s.support === 'unsupported' && s.flags.length > 0)) expect(lastLine).toContain(setting.flags.at(-1));
  });
});
