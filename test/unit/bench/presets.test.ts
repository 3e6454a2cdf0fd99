import { describe, expect, it } from 'vitest';
import { PRESETS } from '../../../bench/presets.js';
import { SCENARIO_IDS } from '../../../bench/report.js';
import { FULL, appsFor, type Ctx } from '../../../bench/scenarios/common.js';
import { hupBoundText, replaceTimeoutMs } from '../../../bench/scenarios/hup.js';
import { SERVER_NAMES } from '../../../bench/servers.js';

const ctx = (scenarioApps: Ctx['settings']['scenarioApps'], logs: string[] = []): Ctx => ({
  quick: false,
  settings: { ...FULL, scenarioApps },
  servers: ['corral'],
  apps: [
    { name: 'hello', dir: '/h' },
    { name: 'fastapi', dir: '/f' },
  ],
  workDir: '/tmp',
  rows: [],
  log: (m) => logs.push(m),
});

describe('apps per scenario', () => {
  it('runs a scenario on its own apps, or on every app of the run when it names none', () => {
    expect(appsFor(ctx({ hup: ['fastapi'] }), 'hup').map((a) => a.name)).toEqual(['fastapi']);
    expect(appsFor(ctx({ hup: ['fastapi'] }), 'launch').map((a) => a.name)).toEqual(['hello', 'fastapi']);
    expect(FULL.scenarioApps).toEqual({ 'memory-pss': ['fastapi'] });
  });

  it('says so when none of its apps is in the run', () => {
    const logs: string[] = [];
    const c = ctx({ reload: ['django'] }, logs);
    expect(appsFor(c, 'reload')).toEqual([]);
    expect(logs).toEqual(['reload: skipped: it runs on django, and the run has none of them (--apps)']);
  });
});

describe('the HUP bound', () => {
  it('grows with the workers unless the run fixes it', () => {
    expect(replaceTimeoutMs({}, 32)).toBe(510_000);
    expect(hupBoundText({})).toBe('30 s + 15 s per worker');
    expect(replaceTimeoutMs({ hupBoundS: 60 }, 32)).toBe(60_000);
    expect(hupBoundText({ hupBoundS: 60 })).toBe('60 s');
  });
});

describe('presets', () => {
  it('name only known scenarios, servers and settings', () => {
    for (const p of Object.values(PRESETS)) {
      for (const s of p.only) expect(SCENARIO_IDS).toContain(s);
      for (const s of p.servers) expect(SERVER_NAMES).toContain(s);
      for (const k of Object.keys(p.settings)) expect(k in FULL || k === 'hupBoundS').toBe(true);
    }
  });

  it("fork-server: the rows issue 12 asks for, side by side with corral (spawn) and the three anchors", () => {
    const p = PRESETS['fork-server']!;
    expect(p.only).toEqual(['throughput', 'launch', 'memory-pss', 'kill', 'hup', 'reload']);
    expect(p.servers).toEqual(['uvicorn', 'corral', 'corral-spawn', 'gunicorn', 'granian']);
    expect(p.apps).toEqual(['hello', 'fastapi']);
    expect(p.settings.launchWorkers).toEqual([2, 8, 32]);
    expect(p.settings.pssWorkers).toEqual([4, 8, 32]);
    expect(p.settings.hupWorkers).toEqual([8, 32]);
    expect(p.settings.scenarioApps).toEqual({ 'memory-pss': ['fastapi'], hup: ['fastapi'], reload: ['fastapi'] });
  });
});
