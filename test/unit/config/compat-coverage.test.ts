import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FILE_NAMES, FLAGS, SETTINGS_BY_NAME } from '../../../src/config/settings-table.js';
import { VENV_PYTHON } from '../../helpers/corral.js';

// Reads the real gunicorn's and uvicorn's option lists from the test virtualenv, so a setting
// added upstream fails here until corral's table says what it does with it.
function python(code: string): unknown {
  return JSON.parse(execFileSync(VENV_PYTHON, ['-c', code], { encoding: 'utf8' }));
}

describe('every gunicorn setting is known', () => {
  const gunicorn = python(
    'import json, gunicorn.config as c; print(json.dumps([{"name": s.name, "cli": s.cli or []} for s in c.KNOWN_SETTINGS]))',
  ) as { name: string; cli: string[] }[];

  it('by its config-file name and by each of its flags', () => {
    expect(gunicorn.length).toBeGreaterThan(80);
    const unknownNames = gunicorn.filter((setting) => !FILE_NAMES.has(setting.name) && setting.name !== 'wsgi_app').map((s) => s.name);
    expect(unknownNames).toEqual([]);
    const unknownFlags = gunicorn.flatMap((setting) => setting.cli).filter((flag) => !FLAGS.has(flag));
    expect(unknownFlags).toEqual([]);
  });

  it('with the same meaning for the flags both name', () => {
    // Each flag names the same setting on both sides (or the setting its config-file name stands for).
    const differing = gunicorn.flatMap((setting) =>
      setting.cli.flatMap((flag) => {
        const meant = FLAGS.get(flag)?.setting.name;
        const same = meant === setting.name || (meant !== undefined && FILE_NAMES.get(setting.name)?.name === meant);
        return same ? [] : [`${flag} means ${setting.name} in gunicorn but ${meant ?? 'nothing'} in corral`];
      }),
    );
    expect(differing).toEqual([]);
  });
});

describe('every uvicorn option is known', () => {
  const uvicorn = python(
    'import json; from uvicorn.main import main; print(json.dumps([{"name": p.name, "opts": p.opts + p.secondary_opts} for p in main.params if p.param_type_name == "option"]))',
  ) as { name: string; opts: string[] }[];

  it('by each of its flags and its UVICORN_ variable', () => {
    expect(uvicorn.length).toBeGreaterThan(50);
    const unknownFlags = uvicorn.flatMap((option) => option.opts).filter((flag) => !FLAGS.has(flag) && flag !== '--version');
    expect(unknownFlags).toEqual([]);
    const params = new Set([...SETTINGS_BY_NAME.values()].map((setting) => setting.uvicornParam).filter(Boolean));
    const unread = uvicorn.map((option) => option.name).filter((name) => !params.has(name) && name !== 'version');
    expect(unread).toEqual([]);
  });
});
