import { describe, expect, it } from 'vitest';
import { applyReloadMode, isCorralModule, RELOAD_DRAIN_SECONDS, watchRulesOf } from '../../../src/reload/dev-reloader.js';
import { resolveConfig as config } from '../../helpers/config.js';

// The --reload-* options as the configuration reads them are specified in test/unit/config/resolve.test.ts.
describe('reload mode', () => {
  it('a reload directory that does not exist is a usage error', () => {
    const c = config(['--reload', '--reload-dir', '/nonexistent/corral-test', 'app:app']);
    expect(() => watchRulesOf(c)).toThrow(/--reload-dir "\/nonexistent\/corral-test": not a directory/);
  });

  it('reload mode replaces all workers at once and bounds the drain', () => {
    const c = applyReloadMode(config(['--reload', '-w', '3', 'app:app']));
    expect(c.maxSurge).toBe(3);
    expect(c.gracefulTimeout).toBe(RELOAD_DRAIN_SECONDS);
    expect(applyReloadMode(config(['--reload', '--graceful-timeout', '1', 'app:app'])).gracefulTimeout).toBe(1);
    expect(applyReloadMode(config(['-w', '3', '--start-method', 'spawn', 'app:app'])).maxSurge).toBe(1);
  });

  it('a standby does not preload corral’s own worker modules', () => {
    for (const name of ['corral_worker', 'corral_runtime', 'corral_runtime.main', 'corral_runtime.settings']) expect(isCorralModule(name)).toBe(true);
    for (const name of ['fastapi', 'corral_runtimes', 'app.corral_runtime', 'corral_worker_utils']) expect(isCorralModule(name)).toBe(false);
  });
});
