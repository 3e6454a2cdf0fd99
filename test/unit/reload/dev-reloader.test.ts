import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/exit-codes.js';
import { parseCommandLine, type CorralConfig } from '../../../src/config/resolve.js';
import { applyReloadMode, isCorralModule, RELOAD_DRAIN_SECONDS, watchRulesOf } from '../../../src/reload/dev-reloader.js';

function config(argv: string[]): CorralConfig {
  const parsed = parseCommandLine(argv, {});
  if (parsed.kind !== 'run') throw new Error('expected a run');
  return parsed.config;
}

describe('reload options', () => {
  it('are off by default, with uvicorn’s delay of 0.1 s', () => {
    const c = config(['app:app']);
    expect(c).toMatchObject({ reload: false, reloadDirs: [], reloadIncludes: [], reloadExcludes: [], reloadDelay: 0.1, reloadExtraFiles: [] });
  });

  it('take repeatable dirs, patterns and extra files, without swallowing the APP', () => {
    const c = config([
      '--reload',
      '--reload-dir', 'src',
      '--reload-dir', 'lib',
      '--reload-include', '*.html',
      '--reload-exclude', '*_test.py',
      '--reload-extra-file', '.env',
      '--reload-delay', '0.5',
      'app.main:app',
    ]);
    expect(c).toMatchObject({
      app: 'app.main:app',
      reload: true,
      reloadDirs: ['src', 'lib'],
      reloadIncludes: ['*.html'],
      reloadExcludes: ['*_test.py'],
      reloadExtraFiles: ['.env'],
      reloadDelay: 0.5,
    });
  });

  it('reject a negative delay and empty values with the option named', () => {
    expect(() => config(['--reload-delay', '-1', 'app:app'])).toThrow(UsageError);
    expect(() => config(['--reload-delay', '-1', 'app:app'])).toThrow('--reload-delay "-1": expected a number of 0 or more');
    expect(() => config(['--reload-include', '', 'app:app'])).toThrow('--reload-include "": expected a value that is not empty');
  });

  it('a reload directory that does not exist is a usage error', () => {
    const c = config(['--reload', '--reload-dir', '/nonexistent/corral-test', 'app:app']);
    expect(() => watchRulesOf(c)).toThrow(/--reload-dir "\/nonexistent\/corral-test": not a directory/);
  });

  it('reload mode replaces all workers at once and bounds the drain', () => {
    const c = applyReloadMode(config(['--reload', '-w', '3', 'app:app']));
    expect(c.maxSurge).toBe(3);
    expect(c.gracefulTimeout).toBe(RELOAD_DRAIN_SECONDS);
    expect(applyReloadMode(config(['--reload', '--graceful-timeout', '1', 'app:app'])).gracefulTimeout).toBe(1);
    expect(applyReloadMode(config(['-w', '3', 'app:app'])).maxSurge).toBe(1);
  });

  it('a standby does not preload corral’s own worker modules', () => {
    for (const name of ['corral_worker', 'corral_runtime', 'corral_runtime.main', 'corral_runtime.settings']) expect(isCorralModule(name)).toBe(true);
    for (const name of ['fastapi', 'corral_runtimes', 'app.corral_runtime', 'corral_worker_utils']) expect(isCorralModule(name)).toBe(false);
  });
});
